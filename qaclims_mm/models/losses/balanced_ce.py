"""Background/foreground-balanced cross-entropy (CLIMS ``criterion_balance``).

CLIMS trains DeepLab v2 on pseudo masks with (spec §6.7)::

    ce      = cross_entropy(logits, labels, reduction='none', ignore_index=255)
    loss_bg = mean of ce over pixels with label == 0
    loss_fg = mean of ce over pixels with label not in {0, 255}
    loss    = (loss_bg + loss_fg) / 2

over the whole batch (not per image). The official code divides by the pixel
counts directly, so a batch without foreground (or without background) pixels
gives 0/0 = NaN, which would poison the weights. Here a group with no pixels
is left out of the mean: such a batch is trained on the other group alone, and
a batch with only ignored pixels has a zero loss. Whenever the official loss is
finite the two agree.
"""
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmseg.registry import MODELS
from torch import Tensor


def balanced_cross_entropy(logits: Tensor,
                           labels: Tensor,
                           ignore_index: int = 255,
                           background_index: int = 0,
                           weight: Optional[Tensor] = None) -> Tensor:
    """Mean of the background-pixel CE and the foreground-pixel CE.

    Args:
        logits (Tensor): ``[B, C, H, W]`` class scores.
        labels (Tensor): ``[B, H, W]`` integer labels; ``ignore_index`` pixels
            count in neither group.
        ignore_index (int): Ignored label. Defaults to 255.
        background_index (int): The background label. Defaults to 0.
        weight (Tensor, optional): ``[B, H, W]`` per-pixel weights (e.g. from
            a pixel sampler) applied to the CE before averaging.

    Returns:
        Tensor: Scalar loss. A group without pixels is left out of the mean
        (0 if both are empty).
    """
    labels = labels.long()
    ce = F.cross_entropy(logits, labels, reduction='none',
                         ignore_index=ignore_index)  # [B, H, W]
    if weight is not None:
        ce = ce * weight.to(ce)
    bg = labels == background_index
    fg = (labels != background_index) & (labels != ignore_index)
    group_means = []
    for mask in (bg, fg):
        count = mask.sum()
        if count > 0:
            group_means.append((ce * mask).sum() / count)
    if not group_means:
        return ce.sum() * 0.  # keep the graph: zero loss, zero gradient
    return torch.stack(group_means).mean()


@MODELS.register_module()
class BalancedCrossEntropyLoss(nn.Module):
    """Background/foreground-balanced cross-entropy (mmseg loss interface).

    Args:
        loss_weight (float): Multiplier of the loss. Defaults to 1.0.
        background_index (int): Background label. Defaults to 0.
        ignore_index (int): Ignored label when the caller passes none.
            Defaults to 255.
        loss_name (str): Key in the loss dict; must start with ``loss_``.
            Defaults to 'loss_balanced_ce'.
    """

    def __init__(self,
                 loss_weight: float = 1.0,
                 background_index: int = 0,
                 ignore_index: int = 255,
                 loss_name: str = 'loss_balanced_ce') -> None:
        super().__init__()
        if not loss_name.startswith('loss_'):
            raise ValueError(f'loss_name must start with "loss_" so that '
                             f'MMEngine backpropagates it, got {loss_name!r}')
        self.loss_weight = loss_weight
        self.background_index = background_index
        self.ignore_index = ignore_index
        self._loss_name = loss_name

    def forward(self,
                cls_score: Tensor,
                label: Tensor,
                weight: Optional[Tensor] = None,
                ignore_index: Optional[int] = None,
                **kwargs) -> Tensor:
        """Args:
            cls_score (Tensor): ``[B, C, H, W]`` logits.
            label (Tensor): ``[B, H, W]`` labels.
            weight (Tensor, optional): ``[B, H, W]`` pixel weights.
            ignore_index (int, optional): Overrides ``self.ignore_index``
                (mmseg heads pass theirs).

        Returns:
            Tensor: The weighted scalar loss.
        """
        ignore = self.ignore_index if ignore_index is None else ignore_index
        return self.loss_weight * balanced_cross_entropy(
            cls_score, label, ignore_index=ignore,
            background_index=self.background_index, weight=weight)

    @property
    def loss_name(self) -> str:
        return self._loss_name

    def extra_repr(self) -> str:
        return (f'loss_weight={self.loss_weight}, '
                f'background_index={self.background_index}, '
                f'ignore_index={self.ignore_index}')
