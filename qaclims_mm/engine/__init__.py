from .hooks import (CAMToPseudoLabelHook, ReproducibleResumeHook,
                    SaveCAMHook)

__all__ = ['SaveCAMHook', 'CAMToPseudoLabelHook', 'ReproducibleResumeHook']
