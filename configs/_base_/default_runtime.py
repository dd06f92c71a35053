# Runtime shared by every qaclims-mm config. The hooks and log_processor,
# which depend on epoch- vs iteration-based training, live in the schedules
# (configs/_base_/schedules/), as in MMSegmentation.
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
log_level = 'INFO'
load_from = None
resume = False
tta_model = dict(type='SegTTAModel')
