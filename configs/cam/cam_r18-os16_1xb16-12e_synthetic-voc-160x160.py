# The demo: a small ResNet-18 (OS16, randomly initialised: no weights can be
# downloaded) trained on the bundled synthetic VOC-format dataset in a few
# minutes on CPU. Same model, pipelines and metric as the VOC config.
_base_ = [
    '../_base_/models/cam_r50-os16.py', '../_base_/datasets/synthetic_voc.py',
    '../_base_/schedules/schedule_cam_5e.py', '../_base_/default_runtime.py'
]
model = dict(
    backbone=dict(depth=18, norm_eval=False, init_cfg=None),
    cam_head=dict(in_channels=512))
# From scratch, BN statistics must be learned (norm_eval=False) and real
# momentum helps; the parity settings above are for ImageNet-initialised R50.
optim_wrapper = dict(optimizer=dict(lr=0.05, momentum=0.9))
param_scheduler = [
    dict(type='PolyLR', power=0.9, eta_min=0., begin=0, end=12, by_epoch=True,
         convert_to_iter_based=True)
]
train_cfg = dict(max_epochs=12)
train_dataloader = dict(batch_size=16, persistent_workers=False)
test_dataloader = dict(persistent_workers=False)
default_hooks = dict(
    logger=dict(interval=10),
    checkpoint=dict(interval=12),
    visualization=dict(draw=False))
custom_hooks = [
    dict(type='SaveCAMHook', out_dir='cams/train', vis_dir='cam_vis',
         num_vis=8)
]
randomness = dict(seed=0)
