"""The WSSS pipeline runner: one config runs every stage (see docs/pipeline.md)."""
from .base import (PIPELINE_STAGES, BaseStage, StageContext, StageInputError,
                   require_files)
from .graph import PipelineConfigError, PipelineGraph, build_graph
from .runner import WSSSPipelineRunner, select_stages

__all__ = ['PIPELINE_STAGES', 'BaseStage', 'StageContext', 'StageInputError',
           'require_files', 'PipelineConfigError', 'PipelineGraph',
           'build_graph', 'WSSSPipelineRunner', 'select_stages']
