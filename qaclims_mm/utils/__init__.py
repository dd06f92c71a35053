from .cam_file import CAM_FORMAT_VERSION, find_cam_file, load_cam, save_cam
from .env import setup_env
from .io import atomic_open, atomic_write_bytes, atomic_write_text, read_split

__all__ = [
    'setup_env', 'atomic_open', 'atomic_write_bytes', 'atomic_write_text',
    'read_split', 'CAM_FORMAT_VERSION', 'save_cam', 'load_cam', 'find_cam_file'
]
