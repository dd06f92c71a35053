from .cam_to_pseudo_label_hook import CAMToPseudoLabelHook
from .num_classes_check_hook import (NumClassesCheckHook,
                                     add_num_classes_check, check_num_classes)
from .reproducible_resume_hook import (ReproducibleResumeHook,
                                       seed_worker_from_base_seed)
from .save_cam_hook import SaveCAMHook, cam_overlay
from .wsss_visualization_hook import WSSSVisualizationHook

__all__ = [
    'SaveCAMHook', 'cam_overlay', 'CAMToPseudoLabelHook',
    'NumClassesCheckHook', 'add_num_classes_check', 'check_num_classes',
    'ReproducibleResumeHook', 'seed_worker_from_base_seed',
    'WSSSVisualizationHook'
]
