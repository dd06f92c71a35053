"""The registered stage types of the pipeline runner (:data:`PIPELINE_STAGES`).

Function-based stages (thin wrappers over the stage APIs of ``refine``,
``qape``, ``evaluation`` and ``synthetic``; see docs/stages.md):
"""
from .data import SyntheticDataStage
from .evaluate import EvalCAMsStage, EvalPseudoMasksStage
from .labels import IRLabelsStage, PseudoLabelStage, RandomWalkStage
from .qape import QAPEStage
from .text import PromptCacheStage, TextCacheStage

__all__ = [
    'SyntheticDataStage', 'QAPEStage', 'TextCacheStage', 'PromptCacheStage',
    'EvalCAMsStage', 'EvalPseudoMasksStage', 'PseudoLabelStage',
    'IRLabelsStage', 'RandomWalkStage'
]
