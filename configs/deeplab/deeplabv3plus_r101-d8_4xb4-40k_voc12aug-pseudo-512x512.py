# DeepLabV3+ (MMSegmentation's own model: ResNet-101-V1c, output stride 8,
# depthwise-separable ASPP + decoder, FCN auxiliary head) on the same VOC 2012
# train_aug pseudo masks, validated on VOC val. The modern default of the
# segmentation stage; the schedule and pipelines are mmseg's
# deeplabv3plus_r101-d8_4xb4-40k_voc12aug-512x512 (4 GPUs x 4 images, SGD
# 0.01, poly, 40k iterations), only the masks differ.
#
# Init: mmseg's ImageNet ResNet-101-V1c (open-mmlab://resnet101_v1c), saved
# locally as data/pretrained/resnet101_v1c-e67eebb6.pth (nothing is downloaded
# at run time).
_base_ = [
    'mmseg::_base_/models/deeplabv3plus_r50-d8.py',
    '../_base_/datasets/voc12_pseudo_seg.py',
    '../_base_/schedules/schedule_40k.py', '../_base_/default_runtime.py'
]
crop_size = (512, 512)
data_preprocessor = dict(size=crop_size)
# StrictEncoderDecoder: mmseg's EncoderDecoder that refuses a checkpoint with
# missing or mis-shaped keys (load_from, --resume, tools/test.py)
model = dict(
    type='StrictEncoderDecoder',
    data_preprocessor=data_preprocessor,
    pretrained=None,
    backbone=dict(
        depth=101,
        init_cfg=dict(
            type='Pretrained',
            checkpoint='data/pretrained/resnet101_v1c-e67eebb6.pth')),
    decode_head=dict(num_classes=21),
    auxiliary_head=dict(num_classes=21))
# mmseg's pascal_voc12 pipelines
train_pipeline = [
    dict(type='LoadImageFromFile', color_type='color_ignore_orientation'),
    dict(type='LoadAnnotations'),
    dict(
        type='RandomResize',
        scale=(2048, 512),
        ratio_range=(0.5, 2.0),
        keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile', color_type='color_ignore_orientation'),
    dict(type='Resize', scale=(2048, 512), keep_ratio=True),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs')
]
train_dataloader = dict(batch_size=4, dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
