"""Mask-prompted CLIP image encoder (OV-Seg mask prompt tuning, spec §4.2).

QA-CLIMS scores every foreground / background region with the "mask-adapted"
CLIP ViT-L/14 of OV-Seg. The region mask is *not* an attention mask: patch
tokens outside the region are overwritten by learned per-position vectors
``E[d]`` (the mask prompts) at the first ``mask_prompt_depth`` depths.

With ``E`` of shape ``[depth, N, width]`` (``N`` patches) and a binary region
mask, one forward is::

    keep = ceil(avg_pool(mask, kernel=stride=patch)) > 0          # [K, N]
    P = patch_embed(images)                                    # [K, N, width]
    P = where(keep, P, E[0])                  # before CLS and pos. embedding
    x = ln_pre(cat(CLS, P) + pos_embed)
    for i, block in enumerate(resblocks):
        x = block(x)                                     # no attention mask
        if i + 1 < depth:
            x[:, 1:] = where(keep, x[:, 1:], E[i + 1])  # CLS never replaced
    out = ln_post(x[:, 0]) @ proj                      # [K, D], unnormalised

The encoder reuses the submodules of an open_clip ``VisionTransformer``, so
the architecture is data (an open_clip model name or config dict), and
``masks=None`` is exactly open_clip's own ``visual(images)``.
"""
import copy
import json
import os.path as osp
import warnings
from contextlib import nullcontext
from typing import Optional, Tuple

import open_clip
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmseg.registry import MODELS
from open_clip.transformer import VisionTransformer
from torch import Tensor
from torch.utils.checkpoint import checkpoint

from .loaders import load_openai_weights, load_ovseg_checkpoint

_AUTOCAST_DTYPES = {'bf16': torch.bfloat16, 'fp16': torch.float16}
#: ``model_name`` prefix of an open_clip model folder (open_clip's schema).
LOCAL_DIR_PREFIX = 'local-dir:'


def read_local_dir_config(model_name: str) -> Tuple[dict, str]:
    """The ``model_cfg`` of an open_clip ``local-dir:<folder>`` model.

    Args:
        model_name (str): ``'local-dir:<folder>'``; the folder holds
            ``open_clip_config.json`` (``{"model_cfg": {...}}``, the file
            open_clip's ``local-dir:`` schema reads).

    Returns:
        tuple: ``(model_cfg, path of the json file)``.

    Raises:
        FileNotFoundError: the folder has no ``open_clip_config.json``.
        ValueError: the file is not JSON or has no ``model_cfg`` dict.
    """
    folder = osp.expanduser(model_name[len(LOCAL_DIR_PREFIX):])
    path = osp.join(folder, 'open_clip_config.json')
    if not osp.isfile(path):
        raise FileNotFoundError(
            f'{model_name!r} (model_name): {path} not found; a local-dir: '
            f'model folder needs open_clip_config.json with a model_cfg.')
    try:
        with open(path, encoding='utf-8') as f:
            model_cfg = json.load(f).get('model_cfg')
    except (ValueError, AttributeError) as e:
        raise ValueError(f'{path}: not an open_clip config ({e})') from None
    if not isinstance(model_cfg, dict):
        raise ValueError(f'{path}: no model_cfg dict (open_clip local-dir '
                         f'layout: {{"model_cfg": {{...}}}}).')
    return model_cfg, path


def build_clip_vision_tower(model_name: str = 'ViT-L-14',
                            model_cfg: Optional[dict] = None,
                            quick_gelu: Optional[bool] = True) -> nn.Module:
    """Build the (randomly initialised) image tower of an open_clip model.

    Only the vision tower is built, so no memory is spent on the text tower.

    Args:
        model_name (str): An open_clip architecture name (a key of
            ``open_clip.list_models()``) or ``'local-dir:<folder>'`` (the
            ``model_cfg`` of ``<folder>/open_clip_config.json``, e.g. a
            custom architecture saved next to its weights), used when
            ``model_cfg`` is None. Defaults to ``'ViT-L-14'``.
        model_cfg (dict, optional): An open_clip model config, i.e. a dict
            with ``embed_dim`` and ``vision_cfg`` (the format of open_clip's
            ``model_configs/*.json``). Takes precedence over ``model_name``.
            Defaults to None.
        quick_gelu (bool, optional): Use QuickGELU in the MLPs. OpenAI CLIP
            and OV-Seg's fine-tuned CLIP were trained with QuickGELU, so this
            must be True for their weights. None takes the config's
            ``quick_gelu`` entry (False when absent). Defaults to True.

    Returns:
        nn.Module: An open_clip ``VisionTransformer``.

    Raises:
        KeyError: an unknown architecture name or a config without
            ``embed_dim`` / ``vision_cfg``.
        FileNotFoundError: a ``local-dir:`` folder without
            ``open_clip_config.json``.
        ValueError: a ``local-dir:`` config whose ``quick_gelu`` differs
            from a given ``quick_gelu``.
    """
    # private in open_clip, but the one builder that skips the text tower
    from open_clip.model import _build_vision_tower
    if model_cfg is None and model_name.startswith(LOCAL_DIR_PREFIX):
        model_cfg, source = read_local_dir_config(model_name)
        if quick_gelu is not None and 'quick_gelu' in model_cfg and \
                bool(model_cfg['quick_gelu']) != bool(quick_gelu):
            raise ValueError(
                f'{source} says quick_gelu={model_cfg["quick_gelu"]} but '
                f'quick_gelu={quick_gelu} was passed; pass quick_gelu=None '
                f'to follow the config.')
    elif model_cfg is None:
        model_cfg = open_clip.get_model_config(model_name)
        if model_cfg is None:
            raise KeyError(
                f'Unknown open_clip architecture {model_name!r} (model_name); '
                f'use one of open_clip.list_models() or pass model_cfg=dict('
                f'embed_dim=..., vision_cfg=dict(...)).')
        source = f'open_clip config {model_name!r}'
    else:
        source = 'model_cfg'
    cfg = copy.deepcopy(dict(model_cfg))
    missing = [k for k in ('embed_dim', 'vision_cfg') if k not in cfg]
    if missing:
        raise KeyError(f'{source} lacks {missing}; an open_clip model config '
                       f'needs embed_dim and vision_cfg.')
    if quick_gelu is None:
        quick_gelu = bool(cfg.get('quick_gelu', False))
    return _build_vision_tower(
        cfg['embed_dim'], cfg['vision_cfg'], quick_gelu=quick_gelu)


@MODELS.register_module()
class MaskPromptedCLIP(nn.Module):
    """CLIP ViT image encoder with OV-Seg mask prompt tuning (spec §4.2).

    ``forward(images, masks)`` encodes each image with the patches outside its
    binary region mask replaced by the mask prompts ``mask_embedding[d]``
    (right after the patch embedding for ``d = 0``, after residual block
    ``d`` for ``0 < d < mask_prompt_depth``). There is no attention mask and
    the CLS token is never replaced. ``masks=None`` gives plain CLIP (the
    ``use_mask_clip=False`` ablation), identical to open_clip's
    ``visual(images)``; a mask of all ones gives the same result.

    The input is used as given: no CLIP re-normalisation is applied (QA-CLIMS
    feeds ImageNet-normalised CAM-weighted images, spec §3.5).

    Args:
        visual (nn.Module, optional): An open_clip ``VisionTransformer`` to
            wrap, e.g. ``open_clip.create_model(name).visual``. If None, one is
            built from ``model_name`` / ``model_cfg``. Defaults to None.
        model_name (str): open_clip architecture name, or
            ``'local-dir:<folder>'`` (the architecture of its
            ``open_clip_config.json``), used when ``visual`` and
            ``model_cfg`` are None. Defaults to ``'ViT-L-14'``.
        model_cfg (dict, optional): open_clip model config dict (with
            ``embed_dim`` and ``vision_cfg``). Defaults to None.
        quick_gelu (bool, optional): QuickGELU activations (needed for
            OpenAI / OV-Seg weights); None follows the config. Ignored when
            ``visual`` is given. Defaults to True.
        mask_prompt_depth (int): Number of mask prompts ``E[0..depth-1]``, at
            most the number of residual blocks. Defaults to 3 (OV-Seg).
        weights (str, optional): Local path of the OpenAI CLIP weights (the
            JIT archive such as ``ViT-L-14.pt`` or a state dict in the same
            naming), loaded into the visual tower. Defaults to None.
        ovseg_checkpoint (str, optional): Local path of the OV-Seg checkpoint
            (``ovseg_swinbase_vitL14_ft_mpt.pth``), loaded strictly after
            ``weights``: every visual tensor and the mask embedding. Defaults
            to None.
        frozen (bool): Freeze every parameter (``requires_grad=False``) and
            keep the module in eval mode even when a parent calls
            ``.train()``. Input gradients still flow. Defaults to True.
        checkpointing (bool): Activation checkpointing of the residual blocks
            when gradients are enabled; trades compute for memory and leaves
            the result unchanged. Defaults to False.
        autocast_dtype (str, optional): ``'bf16'`` or ``'fp16'`` to run the
            forward under CUDA autocast (the output is cast back to float32).
            On CPU it is a no-op (a warning is issued once) and the forward
            runs in the weights' dtype. None runs in the weights' dtype.
            Defaults to None.
    """

    def __init__(self,
                 visual: Optional[nn.Module] = None,
                 model_name: str = 'ViT-L-14',
                 model_cfg: Optional[dict] = None,
                 quick_gelu: Optional[bool] = True,
                 mask_prompt_depth: int = 3,
                 weights: Optional[str] = None,
                 ovseg_checkpoint: Optional[str] = None,
                 frozen: bool = True,
                 checkpointing: bool = False,
                 autocast_dtype: Optional[str] = None) -> None:
        super().__init__()
        if visual is None:
            visual = build_clip_vision_tower(model_name, model_cfg, quick_gelu)
        self._check_visual(visual)
        num_layers = len(visual.transformer.resblocks)
        if not 1 <= mask_prompt_depth <= num_layers:
            raise ValueError(
                f'mask_prompt_depth must be in [1, {num_layers}] (the number '
                f'of residual blocks), got {mask_prompt_depth}.')
        if autocast_dtype is not None and \
                autocast_dtype not in _AUTOCAST_DTYPES:
            raise ValueError(f"autocast_dtype must be None, 'bf16' or "
                             f"'fp16', got {autocast_dtype!r}.")
        self.visual = visual
        self.mask_prompt_depth = mask_prompt_depth
        self.patch_size = tuple(visual.patch_size)
        self.grid_size = tuple(visual.grid_size)
        self.image_size = tuple(visual.image_size)
        self.num_patches = self.grid_size[0] * self.grid_size[1]
        self.width = visual.conv1.out_channels
        self.output_dim = visual.proj.shape[1]
        # E[d]: the mask prompt written into dropped patches at depth d
        self.mask_embedding = nn.Parameter(
            torch.zeros(mask_prompt_depth, self.num_patches, self.width))
        self.checkpointing = checkpointing
        self.autocast_dtype = autocast_dtype
        self._warned_autocast = False

        if weights is not None:
            load_openai_weights(self, weights)
        if ovseg_checkpoint is not None:
            load_ovseg_checkpoint(self, ovseg_checkpoint)
        if weights is None and ovseg_checkpoint is None:
            warnings.warn('MaskPromptedCLIP: neither weights nor '
                          'ovseg_checkpoint given; the encoder is randomly '
                          'initialised.')

        self.frozen = frozen
        if frozen:
            self.requires_grad_(False)
        self.train(self.training)

    @staticmethod
    def _check_visual(visual: nn.Module) -> None:
        """Reject towers whose forward the mask prompts cannot follow."""
        if not isinstance(visual, VisionTransformer):
            raise TypeError(
                f'MaskPromptedCLIP needs an open_clip VisionTransformer, got '
                f'{type(visual).__name__} (ResNet and timm towers have no '
                f'patch tokens to replace).')
        if visual.attn_pool is not None or visual.pool_type != 'tok':
            raise ValueError(
                'MaskPromptedCLIP reads the CLS token: the vision config must '
                "use pool_type='tok' without attentional_pool.")
        if not isinstance(visual.patch_dropout, nn.Identity):
            raise ValueError(
                'MaskPromptedCLIP needs every patch token: set the vision '
                'config patch_dropout to 0.')
        if not getattr(visual.transformer, 'batch_first', True):
            raise ValueError('MaskPromptedCLIP expects a batch-first '
                             'open_clip Transformer.')
        if visual.proj is None:
            raise ValueError('MaskPromptedCLIP needs the output projection '
                             '(visual.proj is None).')

    def train(self, mode: bool = True) -> 'MaskPromptedCLIP':
        """Set the training mode; a frozen encoder always stays in eval.

        Args:
            mode (bool): Requested mode. Defaults to True.

        Returns:
            MaskPromptedCLIP: self.
        """
        return super().train(mode and not getattr(self, 'frozen', False))

    def patch_keep_mask(self, masks: Tensor) -> Tensor:
        """Which patches of each image lie (partly) inside its region mask.

        The mask is average-pooled with kernel = stride = patch size and
        rounded up (ceil): a patch is kept when any of its pixels is inside.
        No gradient flows through the result.

        Args:
            masks (Tensor): Region masks in [0, 1], ``[K, 1, H, W]`` or
                ``[K, H, W]``, with ``(H, W)`` the encoder's input size.

        Returns:
            Tensor: Bool ``[K, N]``, ``N`` = number of patches, row-major.
        """
        if masks.dim() == 4:
            if masks.shape[1] != 1:
                raise ValueError(f'masks must be [K, 1, H, W] or [K, H, W], '
                                 f'got {tuple(masks.shape)}.')
            masks = masks[:, 0]
        if masks.dim() != 3 or tuple(masks.shape[-2:]) != self.image_size:
            raise ValueError(
                f'masks must be [K, 1, H, W] or [K, H, W] with (H, W) = '
                f'{self.image_size}, got {tuple(masks.shape)}.')
        pooled = F.avg_pool2d(
            masks.detach().float().unsqueeze(1),
            kernel_size=self.patch_size,
            stride=self.patch_size)  # [K, 1, gh, gw]
        return torch.ceil(pooled.flatten(1)) > 0  # [K, N]

    def _replace(self, tokens: Tensor, keep: Tensor, depth: int) -> Tensor:
        """Overwrite the dropped patch tokens ``[K, N, C]`` with E[depth]."""
        prompt = self.mask_embedding[depth].to(tokens.dtype)  # [N, C]
        return torch.where(keep, tokens, prompt)

    def _block(self, block: nn.Module, x: Tensor) -> Tensor:
        if self.checkpointing and torch.is_grad_enabled():
            return checkpoint(block, x, use_reentrant=False)
        return block(x)

    def _autocast(self, device: torch.device):
        if self.autocast_dtype is None:
            return nullcontext()
        if device.type != 'cuda':
            if not self._warned_autocast:
                warnings.warn(f'MaskPromptedCLIP: autocast_dtype='
                              f'{self.autocast_dtype!r} is ignored on '
                              f'{device.type}; running in the weights dtype.')
                self._warned_autocast = True
            return nullcontext()
        return torch.autocast(
            'cuda', dtype=_AUTOCAST_DTYPES[self.autocast_dtype])

    def forward(self,
                images: Tensor,
                masks: Optional[Tensor] = None) -> Tensor:
        """Encode images, optionally restricted to binary region masks.

        Args:
            images (Tensor): ``[K, 3, H, W]`` at the encoder's input size
                (224 for ViT-L/14). Gradients flow back to it.
            masks (Tensor, optional): Region masks ``[K, 1, H, W]`` (or
                ``[K, H, W]``), 1 inside the region. None encodes the whole
                image (plain CLIP). Defaults to None.

        Returns:
            Tensor: Image embeddings ``[K, D]`` (``ln_post(CLS) @ proj``), not
            normalised.
        """
        if images.dim() != 4 or tuple(images.shape[-2:]) != self.image_size:
            raise ValueError(f'images must be [K, 3, H, W] with (H, W) = '
                             f'{self.image_size}, got {tuple(images.shape)}.')
        keep = None
        if masks is not None:
            if masks.shape[0] != images.shape[0]:
                raise ValueError(f'masks ({masks.shape[0]}) and images '
                                 f'({images.shape[0]}) differ in batch size.')
            keep = self.patch_keep_mask(masks).unsqueeze(-1)  # [K, N, 1]
        with self._autocast(images.device):
            out = self._encode(images, keep)
        return out.float() if self.autocast_dtype is not None else out

    def _encode(self, images: Tensor, keep: Optional[Tensor]) -> Tensor:
        """The open_clip ViT forward with mask-prompt replacement."""
        v = self.visual
        x = v.conv1(images.to(v.conv1.weight.dtype))  # [K, C, gh, gw]
        x = x.reshape(x.shape[0], x.shape[1], -1).permute(0, 2, 1)  # [K,N,C]
        if keep is not None:
            x = self._replace(x, keep, 0)
        cls = v.class_embedding.to(x.dtype).view(1, 1, -1)
        x = torch.cat([cls.expand(x.shape[0], -1, -1), x], dim=1)
        x = x + v.positional_embedding.to(x.dtype)  # [K, 1 + N, C]
        x = v.ln_pre(x)
        for i, block in enumerate(v.transformer.resblocks):
            x = self._block(block, x)
            if keep is not None and i + 1 < self.mask_prompt_depth:
                x = torch.cat(
                    [x[:, :1], self._replace(x[:, 1:], keep, i + 1)], dim=1)
        return v.ln_post(x[:, 0]) @ v.proj  # [K, D]

    def extra_repr(self) -> str:
        return (f'mask_prompt_depth={self.mask_prompt_depth}, '
                f'grid_size={self.grid_size}, frozen={self.frozen}, '
                f'checkpointing={self.checkpointing}, '
                f'autocast_dtype={self.autocast_dtype!r}')
