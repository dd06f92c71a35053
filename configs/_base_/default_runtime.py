# Runtime shared by every qaclims-mm config.
default_scope = 'mmseg'
# Registers all qaclims-mm components in the mmseg scope, so that the stock
# MMSegmentation tools/train.py and tools/test.py run these configs unchanged.
custom_imports = dict(imports=['qaclims_mm'], allow_failed_imports=False)
env_cfg = dict(
    cudnn_benchmark=False,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    dist_cfg=dict(backend='nccl'),
)
vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(
    type='SegLocalVisualizer', vis_backends=vis_backends, name='visualizer')
log_processor = dict(by_epoch=True)
log_level = 'INFO'
load_from = None
resume = False
tta_model = dict(type='SegTTAModel')
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=True),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', by_epoch=True, interval=1,
                    max_keep_ckpts=2),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    # random state from (seed, epoch / batch), so --resume is exact
    reproducible_resume=dict(type='ReproducibleResumeHook'),
    visualization=dict(type='SegVisualizationHook'))
