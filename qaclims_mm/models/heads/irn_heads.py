"""IRNet's two branches and its loss (spec §6.4; IRN ``net/resnet50_irn.py``).

Both branches read the five feature maps of a frozen ResNet-50 at output
stride 16: the stem (64 channels, stride 4) and the four stages (256, 512,
1024, 2048 channels at strides 4, 8, 16, 16).

* :class:`IRNEdgeHead`: a 1x1 conv + GroupNorm (+ upsampling to stride 4) +
  ReLU per stage, concatenated (5 x 32 channels) and fused by a 1x1 conv into
  one boundary logit at stride 4.
* :class:`IRNDisplacementHead`: the displacement-field branch, two channels at
  stride 4 ending in :class:`MeanShift`.

:func:`irn_affinity_displacement_loss` is the official training loss. These
modules need torch, mmengine and the mmseg registry only.
"""
from typing import Dict, List, Sequence

import torch
import torch.nn as nn
from mmengine.model import BaseModule
from mmseg.registry import MODELS


def _branch(in_channels: int, out_channels: int, num_groups: int,
            up_scale: int = 1) -> nn.Sequential:
    """1x1 conv (no bias), GroupNorm, [bilinear upsampling], ReLU (IRN)."""
    layers = [
        nn.Conv2d(in_channels, out_channels, 1, bias=False),
        nn.GroupNorm(num_groups, out_channels)
    ]
    if up_scale > 1:
        layers.append(nn.Upsample(scale_factor=up_scale, mode='bilinear',
                                  align_corners=False))
    layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


def _crop_to(x: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    return x[..., :ref.shape[-2], :ref.shape[-1]]


@MODELS.register_module()
class IRNEdgeHead(BaseModule):
    """The class-boundary branch: one logit per stride-4 location.

    Args:
        in_channels (Sequence[int]): Channels of the five inputs. Defaults to
            ResNet-50's ``(64, 256, 512, 1024, 2048)``.
        channels (int): Channels of each per-stage projection. Defaults to 32.
        num_groups (int): GroupNorm groups. Defaults to 4.
        up_scales (Sequence[int]): Upsampling factor of each input to reach
            the stride of the second input. Defaults to ``(1, 1, 2, 4, 4)``
            (output stride 16).
        init_cfg (dict, optional): Initialisation config. Defaults to None
            (PyTorch's default initialisation, as the official code).
    """

    def __init__(self,
                 in_channels: Sequence[int] = (64, 256, 512, 1024, 2048),
                 channels: int = 32,
                 num_groups: int = 4,
                 up_scales: Sequence[int] = (1, 1, 2, 4, 4),
                 init_cfg=None) -> None:
        super().__init__(init_cfg=init_cfg)
        if len(in_channels) != len(up_scales):
            raise ValueError(f'in_channels {tuple(in_channels)} and up_scales '
                             f'{tuple(up_scales)} must have the same length')
        self.branches = nn.ModuleList([
            _branch(c, channels, num_groups, s)
            for c, s in zip(in_channels, up_scales)
        ])
        self.fuse = nn.Conv2d(channels * len(in_channels), 1, 1, bias=True)

    def forward(self, feats: Sequence[torch.Tensor]) -> torch.Tensor:
        """Boundary logits ``[B, 1, h, w]`` at the stride of ``feats[1]``."""
        outs = [branch(f) for branch, f in zip(self.branches, feats)]
        ref = outs[1]
        return self.fuse(torch.cat([_crop_to(o, ref) for o in outs], dim=1))


class MeanShift(nn.BatchNorm2d):
    """Subtract the running mean of the input (IRN's ``Net.MeanShift``).

    In training mode the input passes unchanged while its batch mean updates
    ``running_mean`` (BatchNorm statistics, ``momentum``); in eval mode the
    running mean is subtracted.

    Args:
        num_features (int): Channels. Defaults to 2.
        momentum (float): Running-mean momentum. Defaults to 0.1.
    """

    def __init__(self, num_features: int = 2, momentum: float = 0.1) -> None:
        super().__init__(num_features, affine=False, momentum=momentum)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            with torch.no_grad():
                super().forward(x)
            return x
        return x - self.running_mean.view(1, -1, 1, 1)


@MODELS.register_module()
class IRNDisplacementHead(BaseModule):
    """The displacement-field branch: two channels at stride 4.

    Stages 3-5 are projected, brought to stride 8 and fused (``fuse_deep``,
    then upsampled to stride 4); the result is concatenated with the stem and
    stage-2 projections and mapped to a 2-channel field followed by
    :class:`MeanShift`.

    Args:
        in_channels (Sequence[int]): Channels of the five inputs. Defaults to
            ResNet-50's ``(64, 256, 512, 1024, 2048)``.
        init_cfg (dict, optional): Initialisation config. Defaults to None.
    """

    def __init__(self,
                 in_channels: Sequence[int] = (64, 256, 512, 1024, 2048),
                 init_cfg=None) -> None:
        super().__init__(init_cfg=init_cfg)
        c1, c2, c3, c4, c5 = in_channels
        self.branches = nn.ModuleList([
            _branch(c1, 64, 8),
            _branch(c2, 128, 16),
            _branch(c3, 256, 16),
            _branch(c4, 256, 16, up_scale=2),
            _branch(c5, 256, 16, up_scale=2),
        ])
        self.fuse_deep = _branch(768, 256, 16, up_scale=2)
        self.out = nn.Sequential(
            nn.Conv2d(448, 256, 1, bias=False), nn.GroupNorm(16, 256),
            nn.ReLU(inplace=True), nn.Conv2d(256, 2, 1, bias=False),
            MeanShift(2))

    def forward(self, feats: Sequence[torch.Tensor]) -> torch.Tensor:
        """Displacements ``[B, 2, h, w]`` at the stride of ``feats[1]``."""
        dp1, dp2, dp3, dp4, dp5 = [b(f) for b, f in zip(self.branches, feats)]
        deep = self.fuse_deep(
            torch.cat([dp3, _crop_to(dp4, dp3), _crop_to(dp5, dp3)], dim=1))
        return self.out(torch.cat([dp1, dp2, _crop_to(deep, dp2)], dim=1))


def irn_affinity_displacement_loss(
        aff: torch.Tensor, disp: torch.Tensor, disp_target: torch.Tensor,
        bg_pos: torch.Tensor, fg_pos: torch.Tensor,
        neg: torch.Tensor) -> Dict[str, torch.Tensor]:
    """IRNet's loss (IRN ``step/train_irn.py``), as masked means.

    With ``eps = 1e-5`` and sums over all pairs of the batch::

        bg_pos_aff = sum(-bg_pos * log(aff + eps)) / (sum(bg_pos) + eps)
        fg_pos_aff = sum(-fg_pos * log(aff + eps)) / (sum(fg_pos) + eps)
        neg_aff    = sum(-neg * log(1 + eps - aff)) / (sum(neg) + eps)
        dp_fg = sum(|disp - target| * fg_pos) / (2 * sum(fg_pos) + eps)
        dp_bg = sum(|disp| * bg_pos) / (2 * sum(bg_pos) + eps)
        total = (bg_pos_aff / 2 + fg_pos_aff / 2 + neg_aff) / 2
                + (dp_fg + dp_bg) / 2

    Args:
        aff (torch.Tensor): ``[B, D, M]`` pair affinities in [0, 1].
        disp (torch.Tensor): ``[B, 2, D, M]`` displacement differences
            ``dp(src) - dp(dst)``.
        disp_target (torch.Tensor): ``[1, 2, D, 1]`` pair offsets.
        bg_pos (torch.Tensor): ``[B, D, M]`` background positive pairs (0/1).
        fg_pos (torch.Tensor): ``[B, D, M]`` foreground positive pairs.
        neg (torch.Tensor): ``[B, D, M]`` negative pairs.

    Returns:
        dict: ``loss_aff`` (``(pos + neg) / 2``) and ``loss_dp``
        (``(dp_fg + dp_bg) / 2``), which sum to the official total, and the
        four detached terms ``pos_aff``, ``neg_aff``, ``dp_fg``, ``dp_bg``
        for logging.
    """
    eps = 1e-5
    bg_pos_aff = (-bg_pos * torch.log(aff + eps)).sum() / (bg_pos.sum() + eps)
    fg_pos_aff = (-fg_pos * torch.log(aff + eps)).sum() / (fg_pos.sum() + eps)
    pos_aff = bg_pos_aff / 2 + fg_pos_aff / 2
    neg_aff = (-neg * torch.log(1. + eps - aff)).sum() / (neg.sum() + eps)
    dp_fg = ((disp - disp_target).abs() * fg_pos.unsqueeze(1)).sum() / (
        2 * fg_pos.sum() + eps)
    dp_bg = (disp.abs() * bg_pos.unsqueeze(1)).sum() / (2 * bg_pos.sum() + eps)
    return dict(
        loss_aff=(pos_aff + neg_aff) / 2,
        loss_dp=(dp_fg + dp_bg) / 2,
        pos_aff=pos_aff.detach(),
        neg_aff=neg_aff.detach(),
        dp_fg=dp_fg.detach(),
        dp_bg=dp_bg.detach())


__all__: List[str] = [
    'IRNEdgeHead', 'IRNDisplacementHead', 'MeanShift',
    'irn_affinity_displacement_loss'
]
