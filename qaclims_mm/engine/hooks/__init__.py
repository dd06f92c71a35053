from .cam_to_pseudo_label_hook import CAMToPseudoLabelHook
from .reproducible_resume_hook import (ReproducibleResumeHook,
                                       seed_worker_from_base_seed)
from .save_cam_hook import SaveCAMHook, cam_overlay

__all__ = ['SaveCAMHook', 'cam_overlay', 'CAMToPseudoLabelHook',
           'ReproducibleResumeHook', 'seed_worker_from_base_seed']
