"""Foreground Adaptive Thresholding (FAT, spec §4.1).

Each CAM map is binarised at a fraction of its own peak:
``M = [A >= alpha * max(A)]``, with ``alpha = 0.1`` in QA-CLIMS. The
background mask is ``1 - M``. The official code loops over the maps in
Python; here one broadcast comparison handles all of them. The masks are hard
thresholds and carry no gradient (spec §3.5). A map that is zero everywhere
gives an all-foreground mask (``0 >= 0``), as in the official code.
"""
from typing import Tuple

import torch
import torch.nn as nn
from mmseg.registry import MODELS
from torch import Tensor


def fat_masks(cams: Tensor,
              alpha: float = 0.1,
              as_bool: bool = False) -> Tensor:
    """FAT foreground masks for a stack of CAM maps.

    Args:
        cams (Tensor): CAM maps ``[N, 1, H, W]`` or ``[N, H, W]``; each map
            (the last two dimensions) is thresholded independently.
        alpha (float): Threshold as a fraction of each map's maximum.
            Defaults to 0.1.
        as_bool (bool): Return a bool tensor instead of ``cams.dtype``
            (floating) zeros and ones. Defaults to False.

    Returns:
        Tensor: Masks with the shape of ``cams``; 1 where
        ``cam >= alpha * max(cam)`` (ties count as foreground). Detached.
    """
    if cams.dim() not in (3, 4) or (cams.dim() == 4 and cams.shape[1] != 1):
        raise ValueError(f'cams must be [N, 1, H, W] or [N, H, W], got '
                         f'{tuple(cams.shape)}.')
    cams = cams.detach()
    peak = cams.amax(dim=(-2, -1), keepdim=True)  # [N, (1,) 1, 1]
    masks = cams >= peak * alpha
    if as_bool:
        return masks
    dtype = cams.dtype if cams.is_floating_point() else torch.float32
    return masks.to(dtype)


def fat_fg_bg_masks(cams: Tensor, alpha: float = 0.1) -> Tuple[Tensor, Tensor]:
    """FAT foreground masks and their complements (background masks).

    Args:
        cams (Tensor): CAM maps ``[N, 1, H, W]`` or ``[N, H, W]``.
        alpha (float): Threshold fraction of each map's maximum.
            Defaults to 0.1.

    Returns:
        tuple[Tensor, Tensor]: ``(fg, bg)`` float masks shaped like ``cams``
        with ``bg = 1 - fg``. Detached.
    """
    fg = fat_masks(cams, alpha)
    return fg, 1 - fg


@MODELS.register_module()
class FATMask(nn.Module):
    """Foreground Adaptive Thresholding as a module (spec §4.1).

    Args:
        alpha (float): Threshold as a fraction of each map's maximum.
            Defaults to 0.1.
    """

    def __init__(self, alpha: float = 0.1) -> None:
        super().__init__()
        if not 0 <= alpha <= 1:
            raise ValueError(f'alpha must be in [0, 1], got {alpha}.')
        self.alpha = alpha

    def forward(self, cams: Tensor) -> Tuple[Tensor, Tensor]:
        """Foreground and background masks.

        Args:
            cams (Tensor): CAM maps ``[N, 1, H, W]`` or ``[N, H, W]``.

        Returns:
            tuple[Tensor, Tensor]: ``(fg, bg)`` float masks, ``bg = 1 - fg``.
        """
        return fat_fg_bg_masks(cams, self.alpha)

    def extra_repr(self) -> str:
        return f'alpha={self.alpha}'
