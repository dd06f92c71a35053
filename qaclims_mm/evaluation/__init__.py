from .cam_labels import (DEFAULT_CAM_THRESHOLD, cams_to_label,
                         check_threshold, upsample_strided_cams)
from .cam_sweep import default_thresholds, sweep_confusion, sweep_summary
from .confusion import (confusion_matrix, confusion_to_scores,
                        fg_false_activation_per_class)
from .metrics import (CAMIoUMetric, PseudoMaskMetric, evaluate_pseudo_masks,
                      pseudo_mask_confusion)
from .offline import evaluate_cam_dir, evaluate_cams, sweep_thresholds
from .report import format_sweep_report

__all__ = [
    'DEFAULT_CAM_THRESHOLD', 'cams_to_label', 'check_threshold',
    'upsample_strided_cams', 'confusion_matrix', 'confusion_to_scores',
    'fg_false_activation_per_class',
    'default_thresholds', 'sweep_confusion', 'sweep_summary',
    'evaluate_cam_dir', 'evaluate_cams', 'sweep_thresholds',
    'format_sweep_report', 'CAMIoUMetric', 'PseudoMaskMetric',
    'evaluate_pseudo_masks', 'pseudo_mask_confusion'
]
