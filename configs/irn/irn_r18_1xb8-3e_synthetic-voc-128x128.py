# IRNet on the synthetic VOC-format dataset, for the synthetic pipeline on
# CPU: the VOC IRN config with a ResNet-18 backbone (random init: no weights
# can be downloaded; the pipeline loads the CAM stage's checkpoint through
# `load_from`, whose backbone.* weights match), 128 px crops, batch 8 and
# the 3-epoch schedule (a few seconds per epoch on the 'demo' preset).
# The IR labels folder is filled in by the pipeline:
#   train_dataloader.dataset.data_prefix.seg_map_path=<ir label dir>
#   train_dataloader.dataset.data_root=<synthetic VOC2012>
_base_ = ['./irn_r50_1xb32-3e_voc12aug-512x512.py']
data_root = 'data/synthetic_voc/VOC2012'
crop_size = 128
# IRN trains its edge and displacement heads on a frozen backbone (spec §6.4;
# ImageNet-initialised ResNet-50 in the paper). No ImageNet weights here: the
# pipeline loads the baseline CAM network through load_from, whose backbone
# stands in for the pre-trained one; the heads start from their init.
model = dict(
    allow_missing_keys=['edge_head.*', 'displacement_head.*'],
    backbone=dict(depth=18, init_cfg=None),
    edge_head=dict(in_channels=(64, 64, 128, 256, 512)),
    displacement_head=dict(in_channels=(64, 64, 128, 256, 512)))
train_pipeline = [
    dict(type='LoadImageFromFile', color_type='color_ignore_orientation'),
    dict(type='LoadAnnotations'),
    dict(type='RandomRescale', scale_range=(0.5, 1.5)),
    dict(type='RandomFlip', prob=0.5),
    dict(type='RandomCropWithPad', crop_size=crop_size, seg_pad_val=255),
    dict(type='AffinityLabels', radius=10, downsample=4,
         num_classes=_base_.num_classes),
    dict(type='PackWSSSInputs', extra_fields=('aff_labels', )),
]
train_dataloader = dict(
    batch_size=8,
    num_workers=2,
    persistent_workers=False,
    dataset=dict(data_root=data_root, pipeline=train_pipeline))
default_hooks = dict(logger=dict(interval=10))
randomness = dict(seed=0)
