# PASCAL VOC 2012 + SBD for WSSS (prepare with
# tools/dataset_converters/voc12_wsss.py). Training: train_aug with image-level
# labels only. Testing: CAM inference + CAM mIoU on VOC train (1,464 images,
# SegmentationClass), spec §6.2.
dataset_type = 'VOC12WSSSDataset'
data_root = 'data/VOCdevkit/VOC2012'
crop_size = 512
cam_scales = (1.0, 0.5, 1.5, 2.0)

# spec §3.3: random long side in [320, 640] (Pillow bicubic), flip, random
# 512 crop; the model's data preprocessor normalises (ImageNet mean/std) and
# sets the padding to 0 AFTER normalisation, as the official crop.
train_pipeline = [
    dict(type='LoadImageFromFile', color_type='color_ignore_orientation'),
    dict(type='RandomLongSideResize', long_range=(320, 640)),
    dict(type='RandomFlip', prob=0.5),
    dict(type='RandomCropWithPad', crop_size=crop_size),
    dict(type='PackWSSSInputs'),
]
# spec §6.1: scales 1.0/0.5/1.5/2.0 (the model adds the flip of each scale).
cam_pipeline = [
    dict(type='LoadImageFromFile', color_type='color_ignore_orientation'),
    dict(type='MultiScaleImages', scales=cam_scales),
    # no-op for splits without masks (with_seg_map=False: CAMs only)
    dict(type='LoadOptionalAnnotations'),
    dict(type='PackWSSSInputs'),
]
# the name mmseg.apis.inference_model / MMSegInferencer read
test_pipeline = cam_pipeline

train_dataloader = dict(
    batch_size=16,
    num_workers=8,
    persistent_workers=True,
    drop_last=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='ImageSets/Segmentation/train_aug.txt',
        labels_file='cls_labels.json',
        pipeline=train_pipeline))
test_dataloader = dict(
    batch_size=1,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='ImageSets/Segmentation/train.txt',
        labels_file='cls_labels.json',
        with_seg_map=True,
        data_prefix=dict(
            img_path='JPEGImages', seg_map_path='SegmentationClass'),
        pipeline=cam_pipeline,
        test_mode=True))
test_evaluator = dict(type='CAMIoUMetric', threshold=0.15, split='train')
