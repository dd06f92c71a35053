from .cam_file import CAM_FORMAT_VERSION, find_cam_file, load_cam, save_cam
from .env import setup_env
from .image_jobs import ImageJobWriter, MapResult, map_images
from .io import atomic_open, atomic_write_bytes, atomic_write_text, read_split
from .label_io import (IGNORE_COLOR, IGNORE_INDEX, label_colormap,
                       label_png_palette, label_to_png_bytes, read_label_png,
                       write_label_png)

__all__ = [
    'setup_env', 'atomic_open', 'atomic_write_bytes', 'atomic_write_text',
    'read_split', 'CAM_FORMAT_VERSION', 'save_cam', 'load_cam',
    'find_cam_file', 'ImageJobWriter', 'MapResult', 'map_images',
    'IGNORE_INDEX', 'IGNORE_COLOR', 'label_colormap', 'label_png_palette',
    'label_to_png_bytes', 'write_label_png', 'read_label_png'
]
