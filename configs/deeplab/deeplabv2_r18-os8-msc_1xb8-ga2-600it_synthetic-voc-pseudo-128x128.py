# DeepLab v2 on the synthetic VOC-format dataset, for the synthetic pipeline
# on CPU: the VOC DeepLab v2 config (MSC, max fusion, balanced CE, batch x
# gradient accumulation 2, optional dCRF at test time) with a ResNet-18
# backbone from random init (no weights can be downloaded; BN statistics are
# learned, norm_eval=False), 128 px crops, batch 8 and a short schedule:
# 600 iterations = 300 optimiser steps, SGD lr 0.01 everywhere (the caffe lr
# multipliers of the parity config are for an ImageNet backbone).
# The pseudo masks are filled in by the pipeline:
#   train_dataloader.dataset.data_prefix.seg_map_path=<pseudo mask dir>
#   {train,val,test}_dataloader.dataset.data_root=<synthetic VOC2012>
_base_ = ['./deeplabv2_r101-os8-msc_1xb10-ga2-30k_voc12aug-pseudo-321x321.py']
data_root = 'data/synthetic_voc/VOC2012'
crop_size = (128, 128)
max_iters = 600
model = dict(
    data_preprocessor=dict(size=crop_size),
    backbone=dict(
        depth=18, init_cfg=None, norm_eval=False,
        norm_cfg=dict(type='BN', requires_grad=True)),
    decode_head=dict(in_channels=512))
train_pipeline = [
    dict(type='LoadImageFromFile', color_type='color_ignore_orientation'),
    dict(type='LoadAnnotations'),
    dict(
        type='RandomChoice',
        transforms=[[dict(type='Resize', scale_factor=s, keep_ratio=False)]
                    for s in (0.75, 1.0, 1.25, 1.5)]),
    dict(type='RandomCrop', crop_size=crop_size),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs'),
]
train_dataloader = dict(
    batch_size=8,
    num_workers=2,
    persistent_workers=False,
    dataset=dict(data_root=data_root, pipeline=train_pipeline))
val_dataloader = dict(
    num_workers=2, persistent_workers=False,
    dataset=dict(data_root=data_root))
test_dataloader = val_dataloader
optim_wrapper = dict(
    optimizer=dict(lr=0.01),
    paramwise_cfg=dict(custom_keys={'backbone': dict(lr_mult=1.0)}))
param_scheduler = [
    dict(type='PolyLR', power=0.9, eta_min=0., begin=0, end=max_iters,
         by_epoch=False)
]
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
default_hooks = dict(
    logger=dict(interval=20), checkpoint=dict(interval=200))
randomness = dict(seed=0)
