# Segmentation stage on PASCAL VOC 2012 (spec §6.7): train on train_aug
# (10,582 ids) with PSEUDO MASKS, validate on VOC val (1,449 ids) with the real
# ground truth (SegmentationClass), mmseg's IoUMetric.
#
# `pseudo_mask_dir` (relative to data_root, or absolute) is the folder of
# <img_id>.png pseudo masks written by the pseudo-label stage; point it at
# yours, e.g. --cfg-options train_dataloader.dataset.data_prefix.seg_map_path=/x
#
# Pipelines: the DeepLab v2 recipe of deeplab-pytorch / CLIMS: a scale drawn
# from {0.5, 0.75, ..., 2.0} of the image size (bilinear image, nearest
# labels), a random 321 crop (padded bottom/right with the mean and 255 by the
# data preprocessor, as deeplab-pytorch pads before cropping), flip. Testing on
# the full-resolution image. Models with another recipe (DeepLabV3+) replace
# the pipelines. Small deviations: mmcv rounds the scaled size
# (int(x * s + 0.5)) where deeplab-pytorch floors it, and resizes labels with
# cv2's nearest rule rather than PIL's.
dataset_type = 'VOC12WSSSDataset'
data_root = 'data/VOCdevkit/VOC2012'
pseudo_mask_dir = 'pseudo_labels/sem_seg'
crop_size = (321, 321)
train_scales = (0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0)
train_pipeline = [
    dict(type='LoadImageFromFile', color_type='color_ignore_orientation'),
    dict(type='LoadAnnotations'),
    dict(
        type='RandomChoice',
        transforms=[[dict(type='Resize', scale_factor=s, keep_ratio=False)]
                    for s in train_scales]),
    dict(type='RandomCrop', crop_size=crop_size),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile', color_type='color_ignore_orientation'),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs'),
]
# --tta: multi-scale + flip, softmax-averaged by the tta_model
tta_ratios = [0.5, 0.75, 1.0, 1.25, 1.5, 1.75]
tta_pipeline = [
    dict(type='LoadImageFromFile', color_type='color_ignore_orientation'),
    dict(
        type='TestTimeAug',
        transforms=[
            [dict(type='Resize', scale_factor=r, keep_ratio=True)
             for r in tta_ratios],
            [
                dict(type='RandomFlip', prob=0., direction='horizontal'),
                dict(type='RandomFlip', prob=1., direction='horizontal')
            ],
            [dict(type='LoadAnnotations')],
            [dict(type='PackSegInputs')],
        ])
]
train_dataloader = dict(
    batch_size=10,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='ImageSets/Segmentation/train_aug.txt',
        labels_file='cls_labels.json',
        with_seg_map=True,
        data_prefix=dict(img_path='JPEGImages', seg_map_path=pseudo_mask_dir),
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='ImageSets/Segmentation/val.txt',
        labels_file='cls_labels.json',
        with_seg_map=True,
        data_prefix=dict(
            img_path='JPEGImages', seg_map_path='SegmentationClass'),
        pipeline=test_pipeline,
        test_mode=True))
test_dataloader = val_dataloader
val_evaluator = dict(type='IoUMetric', iou_metrics=['mIoU'])
test_evaluator = val_evaluator
