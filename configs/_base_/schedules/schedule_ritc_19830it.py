# RITC schedule (spec §3.2, §3.3): SGD lr 3.5e-4, classifier 10x, weight decay
# 1e-4, poly 0.9 per iteration, 19,830 iterations per GPU (2 GPUs x batch 4 =
# floor(floor(10582 / 4) / 2) x 15 epochs).
# momentum=1e-4 REPRODUCES THE OFFICIAL OPTIMISER: PolyOptimizer passes the
# weight decay as SGD's positional `momentum` (spec §3.2, PSA issue #28). The
# momentum-0.9 variant is a separate config.
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=3.5e-4, momentum=1e-4, weight_decay=1e-4),
    paramwise_cfg=dict(
        custom_keys={
            'cam_head': dict(lr_mult=10.),
            # the stem conv1/bn1 parameters stay fixed (official
            # _freeze_layers: requires_grad=False) while bn1 itself stays in
            # train mode, so its statistics update: with frozen_stages=-1 in
            # the model, lr and decay 0 do exactly that
            'backbone.conv1': dict(lr_mult=0., decay_mult=0.),
            'backbone.bn1': dict(lr_mult=0., decay_mult=0.),
        }))
max_iters = 19830
param_scheduler = [
    dict(type='PolyLR', power=0.9, eta_min=0., begin=0, end=max_iters,
         by_epoch=False)
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters,
                 val_interval=max_iters + 1)
test_cfg = dict(type='TestLoop')
# iteration-based logging and checkpoints
log_processor = dict(by_epoch=False)
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=2000,
                    max_keep_ckpts=2),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    # random state from (seed, epoch / batch), so --resume is exact
    reproducible_resume=dict(type='ReproducibleResumeHook'),
    # mmseg's SegVisualizationHook reading images as stored (EXIF
    # orientation ignored, as every stage): tools/test.py --show/--show-dir
    visualization=dict(type='WSSSVisualizationHook'))
