# DeepLab v2 (ResNet-101, MSC, ImageNet init, balanced CE) on MS COCO 2014
# pseudo masks (81 classes), validated on val2014. CLIMS / QA-CLIMS ship no
# COCO DeepLab recipe (spec §7): this is the VOC ImageNet-pretrained recipe
# unchanged apart from the data and the class count. (There is deliberately no
# COCO-init variant for COCO: that init was trained on COCO masks.)
custom_imports = dict(imports=['qaclims_mm'], allow_failed_imports=False)
_base_ = [
    '../_base_/models/deeplabv2_r101-os8.py',
    '../_base_/datasets/coco14_pseudo_seg.py', '../_base_/default_runtime.py'
]
model = dict(
    decode_head=dict(
        num_classes=81,
        loss_decode=dict(
            _delete_=True, type='BalancedCrossEntropyLoss', loss_weight=1.0)))
# schedule: as deeplabv2_r101-os8-msc_1xb10-ga2-30k_voc12aug-pseudo-321x321.py
base_lr = 2.5e-4
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(
        type='SGD', lr=10 * base_lr, momentum=0.9, weight_decay=5e-4),
    accumulative_counts=2,
    paramwise_cfg=dict(
        custom_keys={'backbone': dict(lr_mult=0.1)},
        bias_lr_mult=2.0,
        bias_decay_mult=0.0))
max_iters = 60000  # 30k optimiser steps x accumulation 2
param_scheduler = [
    dict(type='PolyLR', power=0.9, eta_min=0., begin=0, end=max_iters,
         by_epoch=False)
]
train_cfg = dict(
    type='IterBasedTrainLoop', max_iters=max_iters, val_interval=10000)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
log_processor = dict(by_epoch=False)
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=False),
    checkpoint=dict(
        type='CheckpointHook', by_epoch=False, interval=10000,
        max_keep_ckpts=2))
tta_model = dict(type='DenseCRFSegTTAModel')
