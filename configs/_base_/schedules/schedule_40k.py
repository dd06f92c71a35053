# MMSegmentation's schedule_40k (SGD 0.01, momentum 0.9, wd 5e-4, poly 0.9 to
# 1e-4, 40k iterations, validation and checkpoints every 4k), keeping the
# last two checkpoints.
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.01, momentum=0.9, weight_decay=0.0005),
    clip_grad=None)
max_iters = 40000
param_scheduler = [
    dict(type='PolyLR', eta_min=1e-4, power=0.9, begin=0, end=max_iters,
         by_epoch=False)
]
train_cfg = dict(
    type='IterBasedTrainLoop', max_iters=max_iters, val_interval=4000)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
# iteration-based logging and checkpoints
log_processor = dict(by_epoch=False)
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(
        type='CheckpointHook', by_epoch=False, interval=4000,
        max_keep_ckpts=2),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    # random state from (seed, epoch / batch), so --resume is exact
    reproducible_resume=dict(type='ReproducibleResumeHook'),
    # mmseg's SegVisualizationHook reading images as stored (EXIF
    # orientation ignored, as every stage): tools/test.py --show/--show-dir
    visualization=dict(type='WSSSVisualizationHook'))
