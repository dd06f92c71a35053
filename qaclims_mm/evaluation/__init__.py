from .cam_sweep import (cams_to_label, confusion_matrix, confusion_to_scores,
                        default_thresholds, sweep_confusion)
from .metrics import (CAMIoUMetric, PseudoMaskMetric, evaluate_pseudo_masks,
                      pseudo_mask_confusion)

__all__ = [
    'cams_to_label', 'confusion_matrix', 'confusion_to_scores',
    'default_thresholds', 'sweep_confusion', 'CAMIoUMetric',
    'PseudoMaskMetric', 'evaluate_pseudo_masks', 'pseudo_mask_confusion'
]
