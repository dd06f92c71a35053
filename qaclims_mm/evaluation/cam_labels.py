"""CAM maps to label maps, and the checks of CAM thresholds (spec §6.2).

The background-threshold argmax itself has one home,
:func:`qaclims_mm.models.utils.cam_ops.cams_to_seg`;
:func:`cams_to_label` is its numpy entry point, re-exported here for the
offline evaluation. Everything else is numpy (torch for one resize); no
model code is imported.
"""
from typing import Optional, Sequence

import numpy as np

from ..models.utils.cam_ops import DEFAULT_CAM_THRESHOLD, cams_to_label

__all__ = [
    'DEFAULT_CAM_THRESHOLD', 'cams_to_label', 'check_threshold',
    'upsample_strided_cams'
]


def _as_float_cams(cams: np.ndarray) -> np.ndarray:
    """Return ``cams`` as a floating ``[K, H, W]`` array."""
    cams = np.asarray(cams)
    if cams.ndim != 3:
        raise ValueError(f'CAMs must have shape [K, H, W], got {cams.shape}')
    if not np.issubdtype(cams.dtype, np.floating):
        cams = cams.astype(np.float32)
    return cams


def _as_keys(keys: np.ndarray, num_maps: int,
             num_classes: Optional[int] = None) -> np.ndarray:
    """Return ``keys`` as int64 ``[K]``, checked against maps and classes."""
    keys = np.asarray(keys).astype(np.int64, copy=False).reshape(-1)
    if keys.size != num_maps:
        raise ValueError(f'{keys.size} class keys for {num_maps} CAM maps')
    if num_classes is not None and keys.size and (
            keys.min() < 0 or keys.max() >= num_classes):
        bad = keys[(keys < 0) | (keys >= num_classes)].tolist()
        raise ValueError(f'class keys {bad} are outside [0, {num_classes})')
    return keys


def check_threshold(value: float, name: str = 'threshold') -> float:
    """Return ``value`` as a float after checking that it lies in [0, 1].

    CAMs are max-normalised to [0, 1), so a background score outside [0, 1]
    makes every pixel foreground (below 0) or background (above 1).

    Args:
        value (float): The threshold.
        name (str): Its option or config name, for the error message.

    Raises:
        ValueError: naming ``name`` when ``value`` is NaN or outside [0, 1].
    """
    value = float(value)
    if not 0.0 <= value <= 1.0:  # also rejects NaN
        raise ValueError(f'{name} must lie in [0, 1] (CAMs are normalised '
                         f'to that range), got {value:g}')
    return value


def upsample_strided_cams(cams: np.ndarray,
                          image_hw: Sequence[int],
                          stride: int = 4) -> np.ndarray:
    """Bring stride-``stride`` CAMs (the ``cam`` entry) to the image size.

    The official pipeline evaluates only ``high_res``; where it brings the
    stride-4 ``cam`` maps to full resolution (the random-walk step, spec
    §6.5) it upsamples them ``stride``x bilinearly (``align_corners=False``)
    and crops to ``H x W``. This does the same, without any other change
    (no renormalisation), so ``cam`` can be scored against full-size GT.

    Args:
        cams (np.ndarray): ``[K, ceil(H / stride), ceil(W / stride)]``.
        image_hw (Sequence[int]): ``(H, W)``.
        stride (int): The CAM stride. Defaults to 4.

    Returns:
        np.ndarray: float32 ``[K, H, W]``.

    Raises:
        ValueError: when the maps are not the stride-``stride`` grid of an
            ``H x W`` image (both shapes named).
    """
    import torch
    import torch.nn.functional as F
    cams = _as_float_cams(cams)
    height, width = int(image_hw[0]), int(image_hw[1])
    grid = (-(-height // stride), -(-width // stride))
    if tuple(cams.shape[1:]) != grid:
        raise ValueError(f'stride-{stride} CAMs of spatial shape '
                         f'{tuple(cams.shape[1:])} do not match an image of '
                         f'{(height, width)} (expected {grid})')
    if cams.shape[0] == 0:
        return np.zeros((0, height, width), dtype=np.float32)
    up = F.interpolate(torch.from_numpy(np.ascontiguousarray(
        cams, dtype=np.float32))[None], scale_factor=stride, mode='bilinear',
        align_corners=False)[0, :, :height, :width]
    return up.numpy()
