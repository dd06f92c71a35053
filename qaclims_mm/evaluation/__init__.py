from .cam_sweep import (cams_to_label, confusion_matrix, confusion_to_scores,
                        default_thresholds, sweep_confusion)
from .metrics import CAMIoUMetric

__all__ = [
    'cams_to_label', 'confusion_matrix', 'confusion_to_scores',
    'default_thresholds', 'sweep_confusion', 'CAMIoUMetric'
]
