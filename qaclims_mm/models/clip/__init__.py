from .loaders import build_mask_clip, load_openai_weights, load_ovseg_checkpoint
from .mask_clip import MaskPromptedCLIP, build_clip_vision_tower

__all__ = [
    'MaskPromptedCLIP', 'build_clip_vision_tower', 'build_mask_clip',
    'load_openai_weights', 'load_ovseg_checkpoint'
]
