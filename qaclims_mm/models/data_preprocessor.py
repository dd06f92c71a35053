"""Batch assembly and normalisation for the WSSS models."""
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


def fill_outside_box(img: torch.Tensor, box: Sequence[int],
                     value: float) -> torch.Tensor:
    """Set the pixels of a CHW tensor outside ``box`` to ``value``.

    Args:
        img (Tensor): ``[C, H, W]`` image (modified in place and returned).
        box (Sequence[int]): ``(y0, y1, x0, x1)``, the valid region.
        value (float): Fill value.
    """
    y0, y1, x0, x1 = (int(v) for v in box)
    img[:, :y0] = value
    img[:, y1:] = value
    img[:, :, :x0] = value
    img[:, :, x1:] = value
    return img


@MODELS.register_module()
class WSSSDataPreProcessor(BaseDataPreprocessor):
    """Normalise, stack and move a WSSS batch, as mmseg's
    ``SegDataPreProcessor`` does for segmentation batches.

    The pipelines deliver the images as loaded (uint8 BGR); this module owns
    the normalisation ``(img[..., rgb] - mean) / std`` in float32.

    Padding of the official training crop (``RandomCropWithPad``, spec §3.3:
    the crop pads with 0 *after* normalisation) is handed over through the
    ``crop_box`` of each sample's metainfo: after normalising, every pixel
    outside the box is set to ``pad_val`` (without ``mean``, the crop's own
    padding is kept). The result equals the official
    "normalise, flip, crop with 0 padding" bit for bit (the crop and the flip
    only move pixels; ``tests/test_datasets/test_preprocessing_parity.py``).

    * Single-scale batches (``inputs``: a list of CHW tensors) become one
      ``[B, C, H, W]`` tensor (padded bottom/right with ``pad_val`` if sizes
      differ).
    * Multi-scale batches (from :class:`MultiScaleImages`; a list over scales
      of lists over images) stay nested lists, ``inputs[s][b]`` being image
      ``b`` at scale ``s``, each normalised.

    Args:
        mean (Sequence[float], optional): Per-channel mean (0-255 scale, RGB
            order after ``bgr_to_rgb``). None (default): no normalisation,
            for inputs that are already normalised tensors.
        std (Sequence[float], optional): Per-channel std; given with
            ``mean``.
        bgr_to_rgb (bool): Reverse the channel order first (mmcv loads BGR).
            Defaults to False.
        pad_val (float): Value of padded pixels in normalised space: outside
            the ``crop_box`` and for uneven sizes. Defaults to 0 (the mean
            colour).
        non_blocking (bool): Asynchronous host-to-device copies.
    """

    def __init__(self,
                 mean: Optional[Sequence[float]] = None,
                 std: Optional[Sequence[float]] = None,
                 bgr_to_rgb: bool = False,
                 pad_val: float = 0.,
                 non_blocking: bool = False) -> None:
        super().__init__(non_blocking=non_blocking)
        if (mean is None) != (std is None):
            raise ValueError('WSSSDataPreProcessor: give both mean and std, '
                             f'or neither (got mean={mean}, std={std})')
        self._enable_normalize = mean is not None
        if self._enable_normalize:
            if len(mean) != 3 or len(std) != 3:
                raise ValueError('WSSSDataPreProcessor: mean and std need 3 '
                                 f'values, got mean={mean}, std={std}')
            self.register_buffer(
                'mean', torch.tensor(mean, dtype=torch.float32).view(-1, 1, 1),
                False)
            self.register_buffer(
                'std', torch.tensor(std, dtype=torch.float32).view(-1, 1, 1),
                False)
        self.bgr_to_rgb = bgr_to_rgb
        self.pad_val = pad_val

    def _normalize(self, img: torch.Tensor) -> torch.Tensor:
        """float32, channel order, ``(img - mean) / std`` of a CHW image."""
        img = img.float()
        if self.bgr_to_rgb and img.shape[0] == 3:
            img = img.flip(0)
        if self._enable_normalize:
            img = (img - self.mean) / self.std
        return img

    def _check_not_normalized(self, data_samples: Optional[list]) -> None:
        if not self._enable_normalize:
            return
        for sample in data_samples or ():
            if 'img_norm_cfg' in getattr(sample, 'metainfo', {}):
                raise ValueError(
                    f'image {sample.metainfo.get("img_id", "?")} was '
                    'normalised in the pipeline (NormalizeImage) and the '
                    'data_preprocessor normalises again: remove '
                    'NormalizeImage from the pipeline (the model\'s '
                    'data_preprocessor owns mean/std)')

    def _fill_crop_padding(self, img: torch.Tensor, sample) -> torch.Tensor:
        box = getattr(sample, 'metainfo', {}).get('crop_box')
        if box is None or not self._enable_normalize:
            return img
        return fill_outside_box(img, box, self.pad_val)

    def forward(self, data: dict, training: bool = False) -> dict:
        data = self.cast_data(data)
        inputs: Union[torch.Tensor, List[torch.Tensor],
                      List[List[torch.Tensor]]] = data['inputs']
        data_samples: Optional[list] = data.get('data_samples')
        self._check_not_normalized(data_samples)
        samples = data_samples or [None] * len(inputs)
        if isinstance(inputs, torch.Tensor):
            batch = [self._normalize(img) for img in inputs]
            batch = torch.stack([
                self._fill_crop_padding(img, s)
                for img, s in zip(batch, samples)
            ])
        elif inputs and isinstance(inputs[0], (list, tuple)):
            batch = [[self._normalize(img) for img in scale]
                     for scale in inputs]
        else:
            batch = stack_padded([
                self._fill_crop_padding(self._normalize(img), s)
                for img, s in zip(inputs, samples)
            ], self.pad_val)
        return dict(inputs=batch, data_samples=data_samples)
