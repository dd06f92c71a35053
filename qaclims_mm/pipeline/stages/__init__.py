"""The registered stage types of the pipeline runner (:data:`PIPELINE_STAGES`).

Config-based stages (run one of our MMEngine configs) and function-based
stages (thin wrappers over the stage APIs of ``refine``, ``qape``,
``evaluation`` and ``synthetic``); see docs/stages.md.
"""
from .config_stage import ConfigStage
from .data import SyntheticDataStage
from .evaluate import EvalCAMsStage, EvalPseudoMasksStage
from .infer import InferCAMsStage
from .labels import IRLabelsStage, PseudoLabelStage, RandomWalkStage
from .qape import QAPEStage
from .test import TestStage
from .text import PromptCacheStage, TextCacheStage
from .train import TrainStage
from .world import WorldModelsStage

__all__ = [
    'ConfigStage', 'TrainStage', 'InferCAMsStage', 'TestStage',
    'SyntheticDataStage', 'QAPEStage', 'TextCacheStage', 'PromptCacheStage',
    'EvalCAMsStage', 'EvalPseudoMasksStage', 'PseudoLabelStage',
    'IRLabelsStage', 'RandomWalkStage', 'WorldModelsStage'
]
