from .hooks import CAMToPseudoLabelHook, SaveCAMHook, WSSSVisualizationHook

__all__ = ['SaveCAMHook', 'CAMToPseudoLabelHook', 'WSSSVisualizationHook']
