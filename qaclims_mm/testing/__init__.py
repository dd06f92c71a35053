"""Test-only code: reference implementations and tiny-model builders.

What lives here checks or times the runtime package, or stands in for
weights that tests and benchmarks cannot download; nothing in the runtime
package imports it, and ``import qaclims_mm`` does not load it.

* :func:`dense_random_walk_reference`: IRN's dense random walk, the reference
  of :func:`qaclims_mm.refine.propagate_cams`;
* :func:`reference_ritc_losses`: the RITC losses pair by pair, the reference
  of the vectorised :class:`~qaclims_mm.models.heads.RITCHead`;
* :func:`build_tiny_blip_vqa`: a randomly initialised tiny BLIP VQA model
  (transformers is imported when it is called);
* :func:`save_tiny_clip`: a random tiny open_clip CLIP in the layouts our
  loaders read (open_clip is imported when it is called).
"""
from .random_walk_reference import dense_random_walk_reference
from .ritc_reference import reference_ritc_losses
from .tiny_blip import build_tiny_blip_vqa
from .tiny_clip import TINY_CLIP_TEXT, TINY_CLIP_VISION, save_tiny_clip

__all__ = [
    'dense_random_walk_reference', 'reference_ritc_losses',
    'build_tiny_blip_vqa', 'save_tiny_clip', 'TINY_CLIP_VISION',
    'TINY_CLIP_TEXT'
]
