from .cam_metric import CAMIoUMetric
from .pseudo_mask_metric import (PseudoMaskMetric, evaluate_pseudo_masks,
                                 pseudo_mask_confusion)

__all__ = [
    'CAMIoUMetric', 'PseudoMaskMetric', 'evaluate_pseudo_masks',
    'pseudo_mask_confusion'
]
