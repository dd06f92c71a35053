"""The CAM head: a bias-free 1x1 classifier over backbone features."""
from typing import Dict, Optional, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import BaseModule
from mmseg.registry import MODELS


@MODELS.register_module()
class CAMHead(BaseModule):
    """A 1x1 convolution without bias giving one activation map per class.

    ``forward`` returns the class maps ``[B, C, h, w]`` (the logits of every
    location). Training (spec §3.4) pools the *features* globally and applies
    the classifier (``loss``); inference takes ``ReLU`` of the class maps
    (``predict_cams``, spec §6.1). Subclasses (RITC) override
    ``loss_by_feat`` and reuse ``forward`` / ``predict_cams``, so the
    inference path stays the same.

    Args:
        in_channels (int): Feature channels. Defaults to 2048 (ResNet-50).
        num_classes (int): Object classes (no background). Defaults to 20.
        in_index (int): Which backbone output to use. Defaults to -1.
        loss_cls (dict, optional): Classification loss config. Defaults to
            ``MultiLabelSoftMarginLoss``; None for heads with other losses.
        init_cfg (dict, optional): Initialisation config. Defaults to None
            (PyTorch's default initialisation, as the official code).
    """

    def __init__(self,
                 in_channels: int = 2048,
                 num_classes: int = 20,
                 in_index: int = -1,
                 loss_cls: Optional[dict] = dict(
                     type='MultiLabelSoftMarginLoss'),
                 init_cfg=None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.in_channels = in_channels
        self.num_classes = num_classes
        self.in_index = in_index
        self.classifier = nn.Conv2d(in_channels, num_classes, 1, bias=False)
        self.loss_cls = MODELS.build(loss_cls) if loss_cls else None

    def _select(self, feats: Sequence[torch.Tensor]) -> torch.Tensor:
        if isinstance(feats, torch.Tensor):
            return feats
        return feats[self.in_index]

    def forward(self, feats: Sequence[torch.Tensor]) -> torch.Tensor:
        """Class maps ``[B, C, h, w]`` (logits per location)."""
        return self.classifier(self._select(feats))

    def predict_cams(self, feats: Sequence[torch.Tensor]) -> torch.Tensor:
        """Inference CAMs: ``ReLU`` of the class maps, ``[B, C, h, w]``."""
        return F.relu(self.forward(feats))

    def classify(self, feats: Sequence[torch.Tensor]) -> torch.Tensor:
        """Image logits ``[B, C]``: global average pooling, then the 1x1 conv.

        Pooling comes first, as in the official network (the two orders are
        equal up to floating-point rounding).
        """
        pooled = self._select(feats).mean(dim=(2, 3), keepdim=True)
        return self.classifier(pooled).flatten(1)

    def loss(self, feats: Sequence[torch.Tensor],
             labels: torch.Tensor) -> Dict[str, torch.Tensor]:
        """Losses from backbone features and multi-hot ``labels`` ``[B, C]``."""
        return self.loss_by_feat(self.classify(feats), labels)

    def loss_by_feat(self, logits: torch.Tensor,
                     labels: torch.Tensor) -> Dict[str, torch.Tensor]:
        """The classification loss of image logits ``[B, C]``."""
        return {self.loss_cls.loss_name: self.loss_cls(logits, labels)}

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict,
                              missing_keys, unexpected_keys, error_msgs):
        # A checkpoint for another class count must fail loudly: mmengine's
        # non-strict loading would only warn and leave the classifier random.
        key = prefix + 'classifier.weight'
        if key in state_dict and state_dict[key].shape[0] != self.num_classes:
            raise ValueError(
                f'checkpoint key {key!r} holds {state_dict[key].shape[0]} '
                f'classes but the model has num_classes={self.num_classes} '
                f'(is this a checkpoint for another dataset?)')
        super()._load_from_state_dict(state_dict, prefix, local_metadata,
                                      strict, missing_keys, unexpected_keys,
                                      error_msgs)
