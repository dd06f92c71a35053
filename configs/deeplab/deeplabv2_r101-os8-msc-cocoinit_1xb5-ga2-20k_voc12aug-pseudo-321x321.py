# DeepLab v2 (ResNet-101, MSC) on VOC 2012 train_aug pseudo masks, the
# COCO-pretrained setting (spec §6.7; CL:segmentation/deeplabv2/configs/
# voc12_coco_pretrained.yaml + main.py): init from the DeepLab v1 ResNet-101
# trained on MS COCO, plain cross-entropy, batch 5 x accumulation 2, 20k
# optimiser steps, training scales 0.5-1.5. Everything else as the
# ImageNet-pretrained config.
#
# Init: deeplabv1_resnet101-coco.pth (deeplab-pytorch `convert.py --dataset
# coco`), converted with
#   python tools/model_converters/deeplabv1_resnet101_to_mmseg.py \
#     deeplabv1_resnet101-coco.pth data/pretrained/deeplabv1_resnet101-coco_mmseg.pth
# Its 91-class classifier (fc.*) is dropped; the ASPP head starts from scratch.
# Note: this init has seen COCO segmentation masks (the usual DeepLab v2
# protocol, but stronger supervision than ImageNet).
_base_ = ['./deeplabv2_r101-os8-msc_1xb10-ga2-30k_voc12aug-pseudo-321x321.py']
model = dict(
    backbone=dict(
        init_cfg=dict(
            type='Pretrained',
            checkpoint='data/pretrained/deeplabv1_resnet101-coco_mmseg.pth',
            prefix='backbone.')),
    decode_head=dict(
        loss_decode=dict(
            _delete_=True, type='CrossEntropyLoss', use_sigmoid=False,
            loss_weight=1.0, avg_non_ignore=True)))
train_scales = (0.5, 0.75, 1.0, 1.25, 1.5)
crop_size = (321, 321)
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
train_dataloader = dict(batch_size=5, dataset=dict(pipeline=train_pipeline))
max_iters = 40000  # 20k optimiser steps x accumulation 2
param_scheduler = [
    dict(type='PolyLR', power=0.9, eta_min=0., begin=0, end=max_iters,
         by_epoch=False)
]
train_cfg = dict(max_iters=max_iters)
