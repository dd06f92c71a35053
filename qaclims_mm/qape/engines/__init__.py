"""VQA engines (core: transformers is imported lazily inside them)."""
from .base import VQA_ENGINES, VQAEngine, build_vqa_engine, resolve_dtype
from .blip import BlipVQAEngine, load_blip_vqa, pil_to_blip_tensor
from .vlm import ImageTextToTextVQAEngine, normalize_answer

__all__ = [
    'VQA_ENGINES', 'VQAEngine', 'build_vqa_engine', 'resolve_dtype',
    'BlipVQAEngine', 'load_blip_vqa',
    'pil_to_blip_tensor', 'ImageTextToTextVQAEngine', 'normalize_answer'
]
