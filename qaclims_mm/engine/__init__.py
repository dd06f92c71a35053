from .hooks import CAMToPseudoLabelHook, SaveCAMHook

__all__ = ['SaveCAMHook', 'CAMToPseudoLabelHook']
