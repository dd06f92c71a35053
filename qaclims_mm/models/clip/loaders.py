"""Local-file loaders for the mask-prompted CLIP image encoder (spec §4.2).

QA-CLIMS builds its CLIP in three steps: the OpenAI ViT-L/14 architecture with
a zero mask embedding, the OpenAI weights, then the OV-Seg checkpoint
``ovseg_swinbase_vitL14_ft_mpt.pth`` loaded with ``strict=False`` (so a wrong
file would load silently). Here the OV-Seg load is strict: every visual
tensor and the mask embedding must be present with the right shape, and
anything unknown under ``clip_adapter.clip_model.visual.`` is an error.

Key layout. OpenAI CLIP, OV-Seg's CLIP copy and open_clip's
``VisionTransformer`` share their parameter names (``conv1.weight``,
``class_embedding``, ``positional_embedding``, ``ln_pre.*``,
``transformer.resblocks.N.{ln_1,attn.in_proj_weight,attn.in_proj_bias,
attn.out_proj,ln_2,mlp.c_fc,mlp.c_proj}.*``, ``ln_post.*``, ``proj``), so the
mapping is a prefix change:

=================================================  =========================
checkpoint key                                     :class:`MaskPromptedCLIP`
=================================================  =========================
``visual.<name>`` (OpenAI)                         ``visual.<name>``
``clip_adapter.clip_model.visual.<name>`` (OV-Seg) ``visual.<name>``
``clip_adapter.clip_model.visual.mask_embedding``  ``mask_embedding``
=================================================  =========================

Text-tower keys and the rest of the OV-Seg detector are ignored (counted in
the log). Nothing is downloaded: a missing file is a ``FileNotFoundError``
that says where the file comes from.
"""
import os.path as osp
import pickle
from typing import Dict, Optional

import numpy as np
import torch
import torch.nn as nn
from mmengine.logging import print_log
from mmseg.registry import MODELS
from torch import Tensor

from ...utils.safe_load import load_torch_weights, load_torchscript_tensors

OPENAI_VIT_L14_URL = (
    'https://openaipublic.azureedge.net/clip/models/b8cca3fd41ae0c99ba7e8951'
    'adf17d267cdb84cd88be6f7c2e0eca1737a03836/ViT-L-14.pt')
OVSEG_CHECKPOINT_NAME = 'ovseg_swinbase_vitL14_ft_mpt.pth'
OVSEG_PREFIX = 'clip_adapter.clip_model.'
MASK_EMBEDDING_KEY = 'mask_embedding'

_OPENAI_HINT = (f'It is the OpenAI CLIP ViT-L/14 file (ViT-L-14.pt, the JIT '
                f'archive from {OPENAI_VIT_L14_URL}); download it on a '
                f'machine with internet access and pass its local path as '
                f'weights=...')
_OVSEG_HINT = (f'It is the OV-Seg release {OVSEG_CHECKPOINT_NAME} (Swin-Base '
               f'+ CLIP-ViT-L/14 fine-tuned with mask prompt tuning, from the '
               f'model zoo of github.com/facebookresearch/ov-seg; QA-CLIMS '
               f'keeps it at third_party/CLIP/checkpoints/); download it and '
               f'pass its local path as ovseg_checkpoint=...')


def _require_file(path: str, hint: str) -> str:
    """Return ``path`` or raise a FileNotFoundError that names it."""
    path = osp.expanduser(str(path))
    if not osp.isfile(path):
        raise FileNotFoundError(f'CLIP weights not found: {path!r}. {hint}')
    return path


def _torch_load(path: str) -> object:
    """``torch.load(weights_only=True)`` on CPU, never full unpickling.

    A file that needs more than tensors and plain containers (e.g. a
    detectron2 checkpoint pickling its own metadata classes) could run code
    when unpickled, so it is refused with an error that names it.

    Raises:
        pickle.UnpicklingError: naming ``path``.
    """
    return load_torch_weights(
        path, hint='CLIP / OV-Seg weights are read as tensors only. If you '
        'trust the file, re-save its tensors once as a plain state dict '
        '(torch.save({name: tensor, ...})) and pass that file.')


def _as_tensor(value: object, key: str, path: str) -> Tensor:
    if isinstance(value, Tensor):
        return value
    if isinstance(value, np.ndarray):  # detectron2 .pkl-converted weights
        return torch.from_numpy(value)
    raise TypeError(f'{path}: {key!r} holds a {type(value).__name__}, not a '
                    f'tensor.')


def _target_shapes(model: nn.Module,
                   with_mask_embedding: bool) -> Dict[str, torch.Size]:
    """Shapes of the tensors a checkpoint must provide, in visual naming."""
    shapes = {k: v.shape for k, v in model.visual.state_dict().items()}
    if with_mask_embedding:
        shapes[MASK_EMBEDDING_KEY] = model.mask_embedding.shape
    return shapes


def _check_and_load(model: nn.Module, tensors: Dict[str, Tensor],
                    with_mask_embedding: bool, path: str,
                    key_prefix: str) -> int:
    """Strictly load visual-named ``tensors`` into ``model``.

    Args:
        model (nn.Module): A :class:`MaskPromptedCLIP`.
        tensors (dict): ``{visual name: tensor}``, ``mask_embedding``
            included when ``with_mask_embedding``.
        with_mask_embedding (bool): Whether the mask embedding is required.
        path (str): Checkpoint path, for messages.
        key_prefix (str): Prefix of the keys in the file, for messages.

    Returns:
        int: Number of tensors loaded.
    """
    expected = _target_shapes(model, with_mask_embedding)
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    wrong_shape = sorted(
        f'{key_prefix}{k}: checkpoint {tuple(tensors[k].shape)} vs model '
        f'{tuple(expected[k])}' for k in set(expected) & set(tensors)
        if tensors[k].shape != expected[k])
    if missing or unexpected or wrong_shape:
        lines = [
            f'{path}: the visual tower does not match the checkpoint '
            f'(keys under {key_prefix!r}).'
        ]
        if missing:
            lines.append(f'missing ({len(missing)}): ' +
                         ', '.join(key_prefix + k for k in missing))
        if unexpected:
            lines.append(f'unexpected ({len(unexpected)}): ' +
                         ', '.join(key_prefix + k for k in unexpected))
        if wrong_shape:
            lines.append(f'wrong shape ({len(wrong_shape)}): ' +
                         '; '.join(wrong_shape))
        lines.append('Check model_name / model_cfg and mask_prompt_depth '
                     'against the checkpoint.')
        raise RuntimeError('\n'.join(lines))
    visual_sd = {k: v for k, v in tensors.items() if k != MASK_EMBEDDING_KEY}
    model.visual.load_state_dict(visual_sd, strict=True)
    if MASK_EMBEDDING_KEY in tensors:
        with torch.no_grad():
            model.mask_embedding.copy_(tensors[MASK_EMBEDDING_KEY])
    return len(tensors)


def load_openai_weights(model: nn.Module, path: str) -> int:
    """Load OpenAI CLIP weights into the visual tower of ``model``.

    Accepts the OpenAI JIT archive (``ViT-L-14.pt``, whose tensors are read
    without running its TorchScript) or a plain state dict in
    the same naming (optionally under ``'state_dict'`` with a ``module.``
    prefix, as open_clip training writes it). Every visual tensor must be
    present; a ``visual.mask_embedding`` entry, if any, is loaded too.

    Args:
        model (nn.Module): A :class:`MaskPromptedCLIP`.
        path (str): Local path of the weights file.

    Returns:
        int: Number of tensors loaded.

    Raises:
        FileNotFoundError: the file does not exist.
        RuntimeError: visual keys missing, unexpected or of the wrong shape.
    """
    path = _require_file(path, _OPENAI_HINT)
    try:  # the official release is a TorchScript archive: tensors only
        state_dict = load_torchscript_tensors(path)
    except ValueError:  # not TorchScript: a torch.save state dict
        state_dict = _torch_load(path)
    except pickle.UnpicklingError as e:
        raise pickle.UnpicklingError(
            f'{e}\nIf you trust the file, re-save its weights once as a '
            "plain state dict: torch.save(torch.jit.load(path).state_dict(), "
            "'ViT-L-14_state_dict.pth'), and pass that file.") from e
    if not isinstance(state_dict, dict):
        raise TypeError(f'{path}: expected a state dict, got '
                        f'{type(state_dict).__name__}.')
    if isinstance(state_dict.get('state_dict'), dict):
        state_dict = state_dict['state_dict']
    state_dict = {
        (k[len('module.'):] if k.startswith('module.') else k): v
        for k, v in state_dict.items()
    }
    prefix = 'visual.'
    tensors = {
        k[len(prefix):]: _as_tensor(v, k, path)
        for k, v in state_dict.items() if k.startswith(prefix)
    }
    if not tensors:
        raise KeyError(f'{path}: no {prefix!r} keys; not a CLIP checkpoint '
                       f'(first keys: {list(state_dict)[:5]}).')
    with_mask = MASK_EMBEDDING_KEY in tensors
    n = _check_and_load(model, tensors, with_mask, path, prefix)
    print_log(
        f'MaskPromptedCLIP: loaded {n} visual tensors of OpenAI CLIP '
        f'from {path}.',
        logger='current')
    return n


def load_ovseg_checkpoint(model: nn.Module,
                          path: str,
                          prefix: str = OVSEG_PREFIX) -> int:
    """Strictly load the OV-Seg CLIP visual tower and mask embedding.

    The checkpoint is a dict whose ``'model'`` entry (``'state_dict'`` and a
    bare state dict are accepted too) holds the CLIP under ``prefix``.
    All visual tensors plus ``visual.mask_embedding`` must be there with the
    model's shapes and nothing else may be under ``prefix + 'visual.'``;
    other keys (text tower, detector) are ignored.

    Args:
        model (nn.Module): A :class:`MaskPromptedCLIP`.
        path (str): Local path of ``ovseg_swinbase_vitL14_ft_mpt.pth``.
        prefix (str): Key prefix of the CLIP model in the checkpoint.
            Defaults to ``'clip_adapter.clip_model.'``.

    Returns:
        int: Number of tensors loaded (visual tensors + mask embedding).

    Raises:
        FileNotFoundError: the file does not exist.
        KeyError: no key under ``prefix + 'visual.'``.
        RuntimeError: keys missing, unexpected or of the wrong shape.
    """
    path = _require_file(path, _OVSEG_HINT)
    ckpt = _torch_load(path)
    if not isinstance(ckpt, dict):
        raise TypeError(f'{path}: expected a dict checkpoint, got '
                        f'{type(ckpt).__name__}.')
    state_dict = ckpt
    for key in ('model', 'state_dict'):
        if isinstance(ckpt.get(key), dict):
            state_dict = ckpt[key]
            break
    visual_prefix = prefix + 'visual.'
    tensors = {
        k[len(visual_prefix):]: _as_tensor(v, k, path)
        for k, v in state_dict.items() if k.startswith(visual_prefix)
    }
    if not tensors:
        raise KeyError(f'{path}: no key starts with {visual_prefix!r}; not '
                       f'an OV-Seg checkpoint (first keys: '
                       f'{list(state_dict)[:5]}).')
    n = _check_and_load(model, tensors, True, path, visual_prefix)
    print_log(
        f'MaskPromptedCLIP: loaded {n} tensors ({n - 1} visual + '
        f'mask_embedding) from {path}; ignored '
        f'{len(state_dict) - n} other keys.',
        logger='current')
    return n


@MODELS.register_module()
def build_mask_clip(model_name: str = 'ViT-L-14',
                    weights: Optional[str] = None,
                    ovseg_checkpoint: Optional[str] = None,
                    mask_prompt_depth: int = 3,
                    model_dir: Optional[str] = None,
                    **opts) -> nn.Module:
    """Build the QA-CLIMS mask-prompted CLIP from local files.

    Same as ``MaskPromptedCLIP(model_name=..., weights=...,
    ovseg_checkpoint=..., mask_prompt_depth=...)``: the architecture, then the
    OpenAI weights, then the OV-Seg checkpoint (strict).

    Args:
        model_name (str): open_clip architecture, or ``'local-dir:<folder>'``
            to take a custom architecture from the folder's
            ``open_clip_config.json`` (``model_cfg``). Defaults to
            ``'ViT-L-14'``.
        weights (str, optional): Local OpenAI CLIP weights (``ViT-L-14.pt``).
            Defaults to None.
        ovseg_checkpoint (str, optional): Local OV-Seg checkpoint
            (``ovseg_swinbase_vitL14_ft_mpt.pth``). Defaults to None.
        mask_prompt_depth (int): Number of mask prompts. Defaults to 3.
        model_dir (str, optional): A CLIP model folder in open_clip's
            ``local-dir`` layout (``open_clip_config.json`` next to the
            weights), e.g. the synthetic world's CLIP. It gives the
            architecture (``model_name='local-dir:<model_dir>'``, in place
            of ``model_name``), and
            relative ``weights`` / ``ovseg_checkpoint`` names are files in
            it. One path a pipeline can hand over. Defaults to None.
        **opts: Other :class:`MaskPromptedCLIP` arguments (``model_cfg``,
            ``quick_gelu``, ``frozen``, ``checkpointing``,
            ``autocast_dtype``).

    Returns:
        MaskPromptedCLIP: The encoder (frozen and in eval mode by default).
    """
    from .mask_clip import LOCAL_DIR_PREFIX, MaskPromptedCLIP
    if model_dir is not None:
        model_name = LOCAL_DIR_PREFIX + model_dir
        weights, ovseg_checkpoint = (
            None if name is None else osp.join(model_dir, name)
            for name in (weights, ovseg_checkpoint))
    return MaskPromptedCLIP(
        model_name=model_name,
        weights=weights,
        ovseg_checkpoint=ovseg_checkpoint,
        mask_prompt_depth=mask_prompt_depth,
        **opts)
