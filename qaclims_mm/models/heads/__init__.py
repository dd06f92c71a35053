from .cam_head import CAMHead
from .irn_heads import (IRNDisplacementHead, IRNEdgeHead, MeanShift,
                        irn_affinity_displacement_loss)
from .ritc_head import CLIMSHead, RITCHead

__all__ = [
    'CAMHead', 'RITCHead', 'CLIMSHead', 'IRNEdgeHead', 'IRNDisplacementHead',
    'MeanShift', 'irn_affinity_displacement_loss'
]
