from .hooks import (CAMToPseudoLabelHook, NumClassesCheckHook,
                    ReproducibleResumeHook, SaveCAMHook,
                    WSSSVisualizationHook)

__all__ = [
    'SaveCAMHook', 'CAMToPseudoLabelHook', 'NumClassesCheckHook',
    'ReproducibleResumeHook', 'WSSSVisualizationHook'
]
