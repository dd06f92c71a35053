from .hooks import CAMToPseudoLabelHook, NumClassesCheckHook, SaveCAMHook

__all__ = ['SaveCAMHook', 'CAMToPseudoLabelHook', 'NumClassesCheckHook']
