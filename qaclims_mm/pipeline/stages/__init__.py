"""The registered stage types of the pipeline runner (:data:`PIPELINE_STAGES`)."""
from .world import WorldModelsStage

__all__ = ['WorldModelsStage']
