"""The WSSS pipeline runner: one config runs every stage (see docs/pipeline.md)."""
from .base import (PIPELINE_STAGES, BaseStage, StageContext, StageInputError,
                   require_files)

__all__ = ['PIPELINE_STAGES', 'BaseStage', 'StageContext', 'StageInputError',
           'require_files']
