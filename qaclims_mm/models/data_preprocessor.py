"""Batch assembly for pipelines that normalise inside the data pipeline."""
from typing import List, Optional, Sequence, Union

import torch
import torch.nn.functional as F
from mmengine.model import BaseDataPreprocessor
from mmseg.registry import MODELS


def stack_padded(images: Sequence[torch.Tensor],
                 pad_val: float = 0.) -> torch.Tensor:
    """Stack CHW tensors, padding bottom/right to the largest size."""
    h = max(i.shape[-2] for i in images)
    w = max(i.shape[-1] for i in images)
    return torch.stack([
        F.pad(i, (0, w - i.shape[-1], 0, h - i.shape[-2]), value=pad_val)
        if i.shape[-2:] != (h, w) else i for i in images
    ])


@MODELS.register_module()
class WSSSDataPreProcessor(BaseDataPreprocessor):
    """Move a collated batch to the device and stack it, without normalising.

    The WSSS pipelines normalise in :class:`NormalizeImage` (before the crop
    padding, for parity with the official code), so this pre-processor only
    casts to float, stacks and moves data.

    * Single-scale batches (``inputs``: a list of CHW tensors) become one
      ``[B, C, H, W]`` tensor (padded with ``pad_val`` if sizes differ).
    * Multi-scale batches (from :class:`MultiScaleImages`; after collation a
      list over scales of lists over images) stay nested lists,
      ``inputs[s][b]`` being image ``b`` at scale ``s``.

    Args:
        pad_val (float): Padding value for uneven sizes. Defaults to 0.
        non_blocking (bool): Asynchronous host-to-device copies.
    """

    def __init__(self, pad_val: float = 0., non_blocking: bool = False) -> None:
        super().__init__(non_blocking=non_blocking)
        self.pad_val = pad_val

    def forward(self, data: dict, training: bool = False) -> dict:
        data = self.cast_data(data)
        inputs: Union[List[torch.Tensor], List[List[torch.Tensor]]] = \
            data['inputs']
        if isinstance(inputs, torch.Tensor):
            batch = inputs.float()
        elif inputs and isinstance(inputs[0], (list, tuple)):
            batch = [[img.float() for img in scale] for scale in inputs]
        else:
            batch = stack_padded([img.float() for img in inputs], self.pad_val)
        data_samples: Optional[list] = data.get('data_samples')
        return dict(inputs=batch, data_samples=data_samples)
