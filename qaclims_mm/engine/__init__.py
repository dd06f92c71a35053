from .hooks import (CAMToPseudoLabelHook, NumClassesCheckHook, SaveCAMHook,
                    WSSSVisualizationHook)

__all__ = [
    'SaveCAMHook', 'CAMToPseudoLabelHook', 'NumClassesCheckHook',
    'WSSSVisualizationHook'
]
