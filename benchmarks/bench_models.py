"""Randomly initialised networks of the paper's architectures, built from
torchvision alone (no ``mmseg.models``, which needs mmcv's compiled ops).

* :func:`resnet50_os16` — the CAM / RITC backbone of
  ``configs/_base_/models/cam_r50-os16.py``: pytorch-style ResNet-50 with
  strides (1, 2, 2, 1) after the stride-4 stem, no dilation (output stride 16),
  BatchNorm statistics frozen (``norm_eval``), stem frozen.
* :class:`DeepLabV2MSC` — a stand-in for ``configs/_base_/models/
  deeplabv2_r101-os8.py``: ResNet-101 at output stride 8 (dilations 2 / 4 in
  the last two stages, ceil-mode stem pool, frozen BatchNorm), the v2 ASPP (a
  sum of four dilated 3x3 classifiers) and multi-scale inputs 1 / 0.75 / 0.5
  with max fusion, one cross-entropy per output. It differs from the mmseg
  model only where the FLOPs barely change: torchvision's bottlenecks stride
  on the 3x3 convolution (caffe style strides on the 1x1) and dilate the first
  block of a stage by the previous rate.

Timings of these are reference points of the architectures' cost; they carry
random weights.
"""
from typing import List, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor


def _freeze_bn(module: nn.Module) -> None:
    for m in module.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.eval()
            m.weight.requires_grad_(False)
            m.bias.requires_grad_(False)


class _FrozenBNSequential(nn.Sequential):
    """A Sequential whose BatchNorms stay in eval mode (``norm_eval``)."""

    def train(self, mode: bool = True) -> '_FrozenBNSequential':
        super().train(mode)
        for m in self.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.eval()
        return self


def resnet50_os16() -> nn.Module:
    """ResNet-50 at output stride 16 (``[B, 2048, H/16, W/16]`` features).

    BatchNorm statistics are frozen; the affine parameters of every stage
    train, the stem (``conv1``/``bn1``) is frozen (``frozen_stages=0``).
    """
    from torchvision.models import resnet50
    net = resnet50(weights=None)
    block = net.layer4[0]
    block.conv2.stride = (1, 1)
    block.downsample[0].stride = (1, 1)
    backbone = _FrozenBNSequential(net.conv1, net.bn1, net.relu, net.maxpool,
                                   net.layer1, net.layer2, net.layer3,
                                   net.layer4)
    for p in list(net.conv1.parameters()) + list(net.bn1.parameters()):
        p.requires_grad_(False)
    return backbone.train()


class DeepLabV2MSC(nn.Module):
    """DeepLab v2 (ResNet-101, OS 8, ASPP v2) with MSC training losses.

    Args:
        num_classes (int): Classes with background. Defaults to 21.
        dilations (Sequence[int]): ASPP rates. Defaults to (6, 12, 18, 24).
        scales (Sequence[float]): Extra input scales. Defaults to
            (0.5, 0.75).
        depth (int): ResNet depth, 50 or 101 (smoke runs). Defaults to 101.
    """

    def __init__(self,
                 num_classes: int = 21,
                 dilations: Sequence[int] = (6, 12, 18, 24),
                 scales: Sequence[float] = (0.5, 0.75),
                 depth: int = 101) -> None:
        super().__init__()
        from torchvision import models
        net = getattr(models, f'resnet{depth}')(
            weights=None, replace_stride_with_dilation=[False, True, True])
        net.maxpool.ceil_mode = True
        self.backbone = _FrozenBNSequential(net.conv1, net.bn1, net.relu,
                                            net.maxpool, net.layer1,
                                            net.layer2, net.layer3,
                                            net.layer4)
        _freeze_bn(self.backbone)
        self.aspp = nn.ModuleList(
            nn.Conv2d(2048, num_classes, 3, padding=r, dilation=r)
            for r in dilations)
        for conv in self.aspp:
            nn.init.normal_(conv.weight, 0, 0.01)
            nn.init.zeros_(conv.bias)
        self.scales = tuple(scales)

    def logits(self, x: Tensor) -> Tensor:
        """ASPP v2 logits of one scale."""
        feats = self.backbone(x)
        return sum(conv(feats) for conv in self.aspp)

    def msc_logits(self, images: Tensor) -> List[Tensor]:
        """Logits of the input, of every extra scale, and their max."""
        full = self.logits(images)
        outs = [full]
        for s in self.scales:
            x = F.interpolate(images, scale_factor=s, mode='bilinear',
                              align_corners=False)
            outs.append(self.logits(x))
        aligned = [full] + [
            F.interpolate(o, size=full.shape[-2:], mode='bilinear',
                          align_corners=False) for o in outs[1:]
        ]
        outs.append(torch.stack(aligned).max(dim=0)[0])
        return outs

    def loss(self, images: Tensor, labels: Tensor) -> Tensor:
        """Sum of the cross-entropies of every MSC output (labels resized
        nearest to each output, 255 ignored)."""
        total = images.new_zeros(())
        for logits in self.msc_logits(images):
            target = F.interpolate(labels[:, None].float(),
                                   size=logits.shape[-2:],
                                   mode='nearest')[:, 0].long()
            total = total + F.cross_entropy(logits.float(), target,
                                            ignore_index=255)
        return total


def random_segmentation_batch(batch: int, size: int, num_classes: int,
                              device: torch.device,
                              seed: int = 0) -> Tuple[Tensor, Tensor]:
    """Random images ``[B, 3, S, S]`` and labels ``[B, S, S]`` (some 255)."""
    g = torch.Generator().manual_seed(seed)
    images = torch.randn(batch, 3, size, size, generator=g)
    labels = torch.randint(0, num_classes, (batch, size, size), generator=g)
    labels[torch.rand(batch, size, size, generator=g) < 0.1] = 255
    return images.to(device), labels.to(device)
