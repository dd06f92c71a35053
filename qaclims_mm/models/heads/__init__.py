from .cam_head import CAMHead, multi_hot_labels
from .irn_heads import (IRNDisplacementHead, IRNEdgeHead, MeanShift,
                        irn_affinity_displacement_loss)
from .ritc_head import RegionTextHead
from .text_sources import PromptTextSource, QACorpusTextSource

__all__ = [
    'CAMHead', 'RegionTextHead', 'QACorpusTextSource', 'PromptTextSource',
    'multi_hot_labels', 'IRNEdgeHead',
    'IRNDisplacementHead', 'MeanShift', 'irn_affinity_displacement_loss'
]
