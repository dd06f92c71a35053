# The hooks every schedule (_base_/schedules/) shares, iteration-based
# (mmseg's default): each schedule inherits this file and sets its
# checkpoint interval; the epoch-based ones switch by_epoch.
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
