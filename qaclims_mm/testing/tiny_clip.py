"""A tiny random open_clip CLIP, saved in the layouts our loaders read.

Tests and benchmarks cannot download CLIP weights; this stands in for them so
that the real loading code runs: the full state dict as a plain weights file
(what ``MaskPromptedCLIP`` / ``build_mask_clip`` load) and an open_clip
``local-dir:`` folder (``open_clip_config.json`` + safetensors: what the
text-cache builders load).
"""
import json
import os
import os.path as osp
from typing import Dict

#: The tiny vision tower (32 px input, 8 px patches, 3 layers).
TINY_CLIP_VISION: Dict = dict(
    embed_dim=16,
    vision_cfg=dict(image_size=32, patch_size=8, width=32, layers=3,
                    head_width=16, mlp_ratio=2.0))
#: The tiny text tower (open_clip's tokenizer vocabulary, 1 layer).
TINY_CLIP_TEXT: Dict = dict(context_length=77, vocab_size=49408, width=32,
                            heads=2, layers=1)


def save_tiny_clip(weights_file: str, text_dir: str, seed: int = 0) -> None:
    """Build a random tiny CLIP (``quick_gelu``) and save it twice.

    Args:
        weights_file (str): Where ``torch.save`` writes the state dict.
        text_dir (str): The ``local-dir:`` folder (created if missing).
        seed (int): ``torch.manual_seed`` before the model is built.
            Defaults to 0.
    """
    import torch
    from open_clip.model import CLIP
    from safetensors.torch import save_file

    torch.manual_seed(seed)
    model = CLIP(**TINY_CLIP_VISION, text_cfg=TINY_CLIP_TEXT,
                 quick_gelu=True)
    state = model.state_dict()
    torch.save(state, weights_file)
    os.makedirs(text_dir, exist_ok=True)
    save_file({k: v.contiguous() for k, v in state.items()},
              osp.join(text_dir, 'open_clip_model.safetensors'))
    with open(osp.join(text_dir, 'open_clip_config.json'), 'w') as f:
        json.dump({'model_cfg': dict(TINY_CLIP_VISION,
                                     text_cfg=TINY_CLIP_TEXT,
                                     quick_gelu=True)}, f)
