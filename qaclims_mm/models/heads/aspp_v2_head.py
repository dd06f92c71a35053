"""DeepLab v2 ASPP head: a sum of dilated 3x3 classifiers (spec §6.7).

MMSegmentation's ``ASPPHead`` is the DeepLab v3 module (1x1 + dilated 3x3
convs with BN, image pooling, concatenation, a bottleneck and a 1x1
classifier). DeepLab v2's ASPP is simpler: every branch is a 3x3 dilated
convolution straight to class scores, with bias and without BN or dropout, and
the branches are summed::

    logits = sum_r conv3x3_{dilation=r, padding=r}(x) + b_r,  r in (6, 12, 18, 24)

The branches are initialised N(0, 0.01) with zero bias, as in the caffe model
and kazuto1011/deeplab-pytorch.
"""
from typing import List, Optional, Sequence, Tuple, Union

import torch.nn as nn
from mmseg.models.decode_heads.decode_head import BaseDecodeHead
from mmseg.registry import MODELS
from torch import Tensor


@MODELS.register_module()
class ASPPV2Head(BaseDecodeHead):
    """Sum of dilated 3x3 convolution classifiers (DeepLab v2 ASPP).

    The parameters are ``convs.<i>.weight`` (``[num_classes, in_channels, 3,
    3]``) and ``convs.<i>.bias``, one pair per dilation rate. Unlike other
    mmseg heads there is no ``conv_seg`` (each branch is its own classifier)
    and no dropout.

    Args:
        in_channels (int): Input feature channels (2048 for ResNet-101).
        num_classes (int): Number of classes (21 VOC, 81 COCO).
        dilations (Sequence[int]): Dilation (= padding) of each branch.
            Defaults to (6, 12, 18, 24).
        channels (int, optional): Unused by the computation; passed to
            :class:`BaseDecodeHead`, which requires it. Defaults to
            ``num_classes``.
        init_std (float): Std of the normal weight initialisation. Defaults to
            0.01.
        **kwargs: Passed to :class:`BaseDecodeHead` (``in_index``,
            ``loss_decode``, ``align_corners``, ``ignore_index``, ...).
            ``dropout_ratio`` must be 0.
    """

    def __init__(self,
                 in_channels: int,
                 num_classes: int,
                 dilations: Sequence[int] = (6, 12, 18, 24),
                 channels: Optional[int] = None,
                 init_std: float = 0.01,
                 **kwargs) -> None:
        if kwargs.get('dropout_ratio', 0.):
            raise ValueError('ASPPV2Head has no dropout (DeepLab v2); got '
                             f'dropout_ratio={kwargs["dropout_ratio"]}')
        kwargs['dropout_ratio'] = 0.
        if not dilations:
            raise ValueError('ASPPV2Head needs at least one dilation rate')
        kwargs.setdefault(
            'init_cfg',
            dict(type='Normal', std=init_std, bias=0., layer='Conv2d'))
        super().__init__(
            in_channels,
            channels if channels is not None else num_classes,
            num_classes=num_classes,
            **kwargs)
        # every branch is a classifier: the base class's 1x1 conv_seg is unused
        del self.conv_seg
        self.dilations = tuple(int(d) for d in dilations)
        self.convs = nn.ModuleList(
            nn.Conv2d(self.in_channels, self.out_channels, kernel_size=3,
                      padding=d, dilation=d, bias=True)
            for d in self.dilations)
        for conv in self.convs:
            nn.init.normal_(conv.weight, mean=0., std=init_std)
            nn.init.zeros_(conv.bias)

    def branch_logits(self, inputs: Union[List[Tensor], Tuple[Tensor]]
                      ) -> List[Tensor]:
        """The logits of each branch, ``[B, num_classes, h, w]`` each."""
        x = self._transform_inputs(inputs)
        return [conv(x) for conv in self.convs]

    def forward(self, inputs: Union[List[Tensor], Tuple[Tensor]]) -> Tensor:
        """Sum of the branch logits, ``[B, num_classes, h, w]``."""
        x = self._transform_inputs(inputs)
        logits = self.convs[0](x)
        for conv in self.convs[1:]:
            logits = logits + conv(x)
        return logits

    def cls_seg(self, feat: Tensor) -> Tensor:
        raise NotImplementedError('ASPPV2Head has no separate classifier: '
                                  'its branches are the classifiers')


__all__ = ['ASPPV2Head']
