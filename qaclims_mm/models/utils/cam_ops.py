"""CAM arithmetic shared by every CAM-producing model (pure torch).

Nothing here imports ``mmseg.models``, so RITC, refinement and benchmarks can
use it on machines where only the light OpenMMLab packages are installed.
"""
import math
from typing import Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F

#: The background score of the CAM evaluation and of threshold pseudo labels
#: (``cam_eval_thres`` of the official code, spec §6.2).
DEFAULT_CAM_THRESHOLD = 0.15


def flip_fused_cams(maps: torch.Tensor) -> torch.Tensor:
    """Fuse the CAMs of an image and of its horizontal flip.

    Args:
        maps (torch.Tensor): ``[2, C, h, w]``: the image's maps, then the
            flipped image's maps.

    Returns:
        torch.Tensor: ``[C, h, w]`` = ``maps[0] + flip(maps[1])``.
    """
    return maps[0] + maps[1].flip(-1)


def strided_size(hw: Tuple[int, int], stride: int) -> Tuple[int, int]:
    """``(ceil(h / stride), ceil(w / stride))``."""
    return math.ceil(hw[0] / stride), math.ceil(hw[1] / stride)


def strided_up_size(hw: Tuple[int, int], stride: int) -> Tuple[int, int]:
    """``hw`` rounded up to a multiple of ``stride``."""
    h, w = strided_size(hw, stride)
    return h * stride, w * stride


def max_normalize(cams: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """Divide each map of ``[K, H, W]`` by its own spatial max plus ``eps``."""
    return cams / (cams.flatten(1).amax(dim=1)[:, None, None] + eps)


def aggregate_multiscale_cams(
        scale_maps: Sequence[torch.Tensor],
        image_hw: Tuple[int, int],
        keys: torch.Tensor,
        cam_stride: int = 4,
        up_stride: int = 16) -> Tuple[torch.Tensor, torch.Tensor]:
    """Sum per-scale CAMs into the two outputs of the official inference.

    For each scale's flip-fused map ``[C, h_s, w_s]`` (spec §6.1):

    * ``cam``: resized bilinearly (``align_corners=False``) to
      ``ceil(H / cam_stride), ceil(W / cam_stride)`` and summed over scales;
    * ``high_res``: resized to ``H, W`` rounded up to a multiple of
      ``up_stride``, summed, then cropped to ``H, W``.

    Both keep only the classes in ``keys`` and are max-normalised per map.
    An image without labels (``K = 0``) gets empty ``[0, h, w]`` and
    ``[0, H, W]`` maps, as the official code saves for it (it resizes every
    map, then selects none); every consumer of a CAM file reads such an
    image as all background.

    Args:
        scale_maps (Sequence[torch.Tensor]): One ``[C, h_s, w_s]`` per scale.
        image_hw (tuple[int, int]): The original image size ``(H, W)``.
        keys (torch.Tensor): ``[K]`` class indices to keep.
        cam_stride (int): Stride of ``cam``. Defaults to 4.
        up_stride (int): Rounding of the ``high_res`` resize. Defaults to 16.

    Returns:
        tuple[torch.Tensor, torch.Tensor]: ``cam`` ``[K, h, w]`` and
        ``high_res`` ``[K, H, W]``.
    """
    small = strided_size(image_hw, cam_stride)
    up = strided_up_size(image_hw, up_stride)
    keys = keys.to(scale_maps[0].device).long().reshape(-1)
    if keys.numel() == 0:
        # F.interpolate refuses zero channels; nothing to resize anyway
        ref = scale_maps[0]
        return (ref.new_zeros((0, ) + small),
                ref.new_zeros((0, int(image_hw[0]), int(image_hw[1]))))
    # select the labelled classes first: resizing is per channel, so this is
    # exact and saves the work on the other C - K maps
    picked = [m.index_select(0, keys)[None] for m in scale_maps]
    cam = sum(F.interpolate(m, small, mode='bilinear', align_corners=False)
              for m in picked)[0]
    high = sum(F.interpolate(m, up, mode='bilinear', align_corners=False)
               for m in picked)[0, :, :image_hw[0], :image_hw[1]]
    return max_normalize(cam), max_normalize(high)


def cams_to_seg(cams: torch.Tensor, keys: torch.Tensor,
                threshold: float) -> torch.Tensor:
    """Label map from ``[K, H, W]`` CAMs: a background plane at ``threshold``.

    The one home of the background-threshold argmax: a constant plane of
    value ``threshold`` (in the CAM dtype) is prepended, the argmax is taken
    over channels and ties go to the first channel, i.e. background, as the
    official ``np.pad`` + ``np.argmax``; ``K = 0`` gives all background.
    :func:`cams_to_label` is its numpy entry point.

    Args:
        cams (torch.Tensor): ``[K, H, W]`` CAMs.
        keys (torch.Tensor): ``[K]`` 0-based class indices of the maps.
        threshold (float): The background score.

    Returns:
        torch.Tensor: ``[H, W]`` int64 labels, 0 = background,
        ``keys[k] + 1`` for class map ``k``.
    """
    bg = cams.new_full((1, ) + tuple(cams.shape[1:]), threshold)
    idx = torch.cat([bg, cams], dim=0).argmax(dim=0)
    lut = torch.cat([keys.new_zeros(1), keys.long() + 1]).to(idx.device)
    return lut[idx]


def cams_to_label(cams: np.ndarray, keys: np.ndarray,
                  threshold: float) -> np.ndarray:
    """Numpy entry point of :func:`cams_to_seg` (same labels, bit for bit).

    Args:
        cams (np.ndarray): ``[K, H, W]`` CAMs (``K`` may be 0); integer maps
            are compared as float32.
        keys (np.ndarray): ``[K]`` 0-based class indices of the maps.
        threshold (float): The background score.

    Returns:
        np.ndarray: ``[H, W]`` int64 labels, 0 = background, ``1..C`` classes.

    Raises:
        ValueError: for maps that are not ``[K, H, W]`` or a key count that
            differs from ``K``.
    """
    cams = np.asarray(cams)
    if cams.ndim != 3:
        raise ValueError(f'CAMs must have shape [K, H, W], got {cams.shape}')
    if not np.issubdtype(cams.dtype, np.floating):
        cams = cams.astype(np.float32)
    keys = np.asarray(keys).astype(np.int64, copy=False).reshape(-1)
    if keys.size != cams.shape[0]:
        raise ValueError(f'{keys.size} class keys for {cams.shape[0]} CAM '
                         f'maps')
    labels = cams_to_seg(torch.from_numpy(np.ascontiguousarray(cams)),
                         torch.from_numpy(np.ascontiguousarray(keys)),
                         threshold)
    return labels.numpy()
