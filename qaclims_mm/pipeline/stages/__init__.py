"""Registered stage types of the pipeline (see docs/stages.md)."""
from .config_stage import ConfigStage
from .infer import InferCAMsStage
from .test import TestStage
from .train import TrainStage

__all__ = ['ConfigStage', 'TrainStage', 'InferCAMsStage', 'TestStage']
