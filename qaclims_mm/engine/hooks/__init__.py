from .save_cam_hook import SaveCAMHook, cam_overlay

__all__ = ['SaveCAMHook', 'cam_overlay']
