"""The CAM head: a bias-free 1x1 classifier over backbone features.

Every CAM head follows mmseg's decode-head contract:

* ``loss(inputs, data_samples, train_cfg, images=None)`` → ``loss_by_feat``;
  the image labels are read from the samples (``img_labels``). ``images`` is
  the batch the network saw (``[B, 3, H, W]``); heads that look at image
  regions (:class:`RegionTextHead`) need it, the others ignore it.
* ``predict(inputs, batch_img_metas, test_cfg)`` → ``predict_by_feat``: the
  inference CAMs ``[B, C, h, w]`` at the feature stride. Multi-scale + flip
  aggregation is the segmentor's (:class:`CAMClassifier`).
"""
from typing import Dict, List, Optional, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import BaseModule
from mmseg.registry import MODELS

__all__ = ['CAMHead', 'multi_hot_labels']


def multi_hot_labels(data_samples: Sequence, num_classes: int,
                     device: torch.device) -> torch.Tensor:
    """``[B, C]`` float multi-hot labels from the samples' ``img_labels``.

    Args:
        data_samples (Sequence): Samples whose metainfo holds ``img_labels``
            (class indices, from a WSSS dataset and ``PackWSSSInputs``).
        num_classes (int): C.
        device (torch.device): Device of the result.

    Raises:
        KeyError: naming the image of a sample without ``img_labels``.
        ValueError: naming the image of a label outside ``[0, C)``.
    """
    labels = torch.zeros(len(data_samples), num_classes, device=device)
    for b, sample in enumerate(data_samples):
        idx = sample.metainfo.get('img_labels')
        if idx is None:
            raise KeyError(f'data sample of image '
                           f'{sample.metainfo.get("img_id", "?")!r} has no '
                           f'img_labels; use a WSSS dataset and PackWSSSInputs')
        if len(idx):
            idx_t = torch.as_tensor(idx, device=device, dtype=torch.long)
            if idx_t.min() < 0 or idx_t.max() >= num_classes:
                raise ValueError(
                    f'image {sample.metainfo.get("img_id", "?")!r}: labels '
                    f'{list(idx)} outside [0, {num_classes})')
            labels[b, idx_t] = 1.
    return labels


@MODELS.register_module()
class CAMHead(BaseModule):
    """A 1x1 convolution without bias giving one activation map per class.

    ``forward`` returns the class maps ``[B, C, h, w]`` (the logits of every
    location). Training (spec §3.4) pools the *features* globally and applies
    the classifier; inference takes ``ReLU`` of the class maps (spec §6.1).
    Subclasses (:class:`RegionTextHead`) change the training losses and keep
    ``forward`` / ``predict``, so the inference path stays the same.

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

    def classify(self, feats: Sequence[torch.Tensor]) -> torch.Tensor:
        """Image logits ``[B, C]``: global average pooling, then the 1x1 conv.

        Pooling comes first, as in the official network (the two orders are
        equal up to floating-point rounding).
        """
        pooled = self._select(feats).mean(dim=(2, 3), keepdim=True)
        return self.classifier(pooled).flatten(1)

    # ------------------------------------------------------------- training
    def loss(self,
             inputs: Sequence[torch.Tensor],
             data_samples: Sequence,
             train_cfg: Optional[dict] = None,
             images: Optional[torch.Tensor] = None) -> Dict[str, torch.Tensor]:
        """Losses of a batch.

        Args:
            inputs (Sequence[Tensor]): Backbone (neck) features.
            data_samples (Sequence): Samples with ``img_labels``.
            train_cfg (dict, optional): Unused.
            images (Tensor, optional): The network's input batch; unused by
                the classification head.
        """
        return self.loss_by_feat(self.classify(inputs), data_samples)

    def loss_by_feat(self, logits: torch.Tensor,
                     data_samples: Sequence) -> Dict[str, torch.Tensor]:
        """The classification loss of image logits ``[B, C]``."""
        labels = multi_hot_labels(data_samples, self.num_classes,
                                  logits.device)
        return {self.loss_cls.loss_name: self.loss_cls(logits, labels)}

    # ------------------------------------------------------------ inference
    def predict(self,
                inputs: Sequence[torch.Tensor],
                batch_img_metas: Optional[List[dict]] = None,
                test_cfg: Optional[dict] = None) -> torch.Tensor:
        """Inference CAMs ``[B, C, h, w]`` at the feature stride.

        Args:
            inputs (Sequence[Tensor]): Backbone (neck) features.
            batch_img_metas (list[dict], optional): Unused: the CAMs keep the
                feature stride; :class:`CAMClassifier` resizes and fuses them.
            test_cfg (dict, optional): Unused.
        """
        return self.predict_by_feat(self.forward(inputs), batch_img_metas)

    def predict_by_feat(self, class_maps: torch.Tensor,
                        batch_img_metas: Optional[List[dict]] = None
                        ) -> torch.Tensor:
        """``ReLU`` of the class maps (spec §6.1)."""
        return F.relu(class_maps)

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
