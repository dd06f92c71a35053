"""Multi-label classification loss of the baseline CAM network."""
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmseg.registry import MODELS


@MODELS.register_module()
class MultiLabelSoftMarginLoss(nn.Module):
    """``torch.nn.functional.multilabel_soft_margin_loss`` with a weight.

    The loss of the official baseline CAM training (spec §3.4): the mean over
    classes of the binary cross-entropy with logits, averaged over the batch.

    Args:
        loss_weight (float): Multiplier. Defaults to 1.0.
        loss_name (str): Key in the loss dict. Defaults to 'loss_cls'.
    """

    def __init__(self, loss_weight: float = 1.0,
                 loss_name: str = 'loss_cls') -> None:
        super().__init__()
        self.loss_weight = loss_weight
        self._loss_name = loss_name

    def forward(self, logits: torch.Tensor,
                labels: torch.Tensor) -> torch.Tensor:
        """``logits`` and multi-hot ``labels``, both ``[B, C]``."""
        return self.loss_weight * F.multilabel_soft_margin_loss(logits, labels)

    @property
    def loss_name(self) -> str:
        return self._loss_name
