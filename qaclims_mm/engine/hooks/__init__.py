from .cam_to_pseudo_label_hook import CAMToPseudoLabelHook
from .save_cam_hook import SaveCAMHook, cam_overlay
from .wsss_visualization_hook import WSSSVisualizationHook

__all__ = [
    'SaveCAMHook', 'cam_overlay', 'CAMToPseudoLabelHook',
    'WSSSVisualizationHook'
]
