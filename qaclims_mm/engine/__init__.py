from .hooks import SaveCAMHook

__all__ = ['SaveCAMHook']
