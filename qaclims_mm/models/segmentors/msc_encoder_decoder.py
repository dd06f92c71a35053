"""Multi-scale-input (MSC) encoder-decoder of DeepLab v2, with optional dCRF.

DeepLab v2 (``libs/models/msc.py`` of kazuto1011/deeplab-pytorch, spec §6.7)
runs the network on the input and on copies shrunk by 0.5 and 0.75 (bilinear,
``align_corners=False``, ``scale_factor`` sampling):

* training: the logits of every scale plus their pixel-wise max (the smaller
  logits upsampled bilinearly to the full-scale logits first); a loss is
  computed on **every** output, against the labels resized with PIL's nearest
  sampling to that output's size, and the losses
  are summed;
* testing: the pixel-wise max only, upsampled to the image.

Optionally the prediction is refined with a dense CRF (``test_cfg.crf``):
softmax of the full-resolution logits, :func:`crf_from_probs` on the original
uint8 image read from ``img_path``, argmax.

:class:`DenseCRFSegTTAModel` is MMSeg's ``SegTTAModel`` (mean of the softmax
over the augmented passes) followed by the same CRF once, on the merged
probabilities.
"""
import copy
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from mmengine.logging import print_log
from mmengine.structures import PixelData
from mmseg.models.segmentors import EncoderDecoder, SegTTAModel
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample
from mmseg.utils import add_prefix
from torch import Tensor

from ...structures.crf import crf_from_probs
from ...structures.image_decoding import read_image
from .checkpoint_guard import StrictCheckpointMixin

#: DeepLab's dCRF settings (spec §6.7; ``CRF`` section of the CLIMS configs).
DEFAULT_CRF_CFG = dict(n_iters=10, pos_xy_std=1, pos_w=3, bi_xy_std=67,
                       bi_rgb_std=3, bi_w=4)


def pil_nearest_indices(src: int, dst: int) -> np.ndarray:
    """Source index of each of ``dst`` pixels under PIL's NEAREST resize.

    Pillow samples ``int(x_0 + x * s)`` with ``s = src / dst`` and
    ``x_0 = s / 2``, accumulating ``s`` in double precision pixel after
    pixel (``ImagingScaleAffine``); the cumulative sum reproduces its rounding
    exactly, which matters at the ties ``(x + 0.5) * s`` = integer.
    """
    steps = np.full(dst, src / dst, dtype=np.float64)
    steps[0] *= 0.5
    return np.minimum(np.cumsum(steps).astype(np.int64), src - 1)


def resize_labels_nearest(labels: Tensor, size: Tuple[int, int]) -> Tensor:
    """Resize ``[B, 1, H, W]`` labels to ``size`` like DeepLab v2 does.

    deeplab-pytorch's ``resize_labels`` uses ``PIL.Image.resize(NEAREST)``
    ("other nearest methods result in misaligned labels"): source pixel
    ``floor((i + 0.5) * H / h)``, with Pillow's own rounding at the ties
    (:func:`pil_nearest_indices`). Torch's ``nearest`` samples
    ``floor(i * H / h)`` instead, half a pixel off.
    """
    h, w = labels.shape[-2:]
    if (h, w) == tuple(size):
        return labels
    iy = torch.from_numpy(pil_nearest_indices(h, size[0])).to(labels.device)
    ix = torch.from_numpy(pil_nearest_indices(w, size[1])).to(labels.device)
    return labels.index_select(-2, iy).index_select(-1, ix)


def dense_crf_labels(img_path: str, probs: Tensor,
                     crf_cfg: Optional[dict] = None) -> Tensor:
    """dCRF-refined labels of one image.

    Args:
        img_path (str): The image whose probabilities these are (read as uint8
            RGB; the CRF's colour kernel does not depend on channel order).
        probs (Tensor): ``[C, H, W]`` class probabilities at the image size.
        crf_cfg (dict, optional): Keyword arguments of
            :func:`crf_from_probs`. Defaults to :data:`DEFAULT_CRF_CFG`.

    Returns:
        Tensor: ``[1, H, W]`` int64 labels on the device of ``probs``.
    """
    if not img_path:
        raise ValueError('dense CRF post-processing needs the image path of '
                         'every sample (data_sample.img_path)')
    # decoded as the pipeline does: EXIF orientation ignored
    image = read_image(img_path, channel_order='rgb')
    if image.shape[:2] != tuple(probs.shape[-2:]):
        raise ValueError(
            f'dense CRF: image {img_path} is {image.shape[:2]} but the '
            f'prediction is {tuple(probs.shape[-2:])}; the test pipeline must '
            f'not resize the image without resizing the prediction back')
    cfg = dict(DEFAULT_CRF_CFG, **(crf_cfg or {}))
    refined = crf_from_probs(image, probs.detach().float().cpu().numpy(),
                             **cfg)
    labels = torch.from_numpy(refined.argmax(axis=0).astype(np.int64))
    return labels[None].to(probs.device)


def crf_status(test_cfg) -> str:
    """The log line that says whether the dCRF is applied."""
    if test_cfg.get('crf', False):
        cfg = dict(DEFAULT_CRF_CFG, **(test_cfg.get('crf_cfg') or {}))
        return f'dense CRF post-processing: ON ({cfg})'
    return 'dense CRF post-processing: OFF'


@MODELS.register_module()
class MSCEncoderDecoder(StrictCheckpointMixin, EncoderDecoder):
    """Encoder-decoder with DeepLab v2 multi-scale inputs and max fusion.

    Training returns one loss set per output: ``decode_scale1.0.*`` (the
    input), ``decode_scale<s>.*`` for each extra scale and ``decode_max.*``
    (pixel-wise max of all of them); MMEngine sums every ``loss*`` key.
    Auxiliary heads, if any, see the full-scale features only.

    Args:
        scales (Sequence[float]): Extra input scales besides 1.0. Defaults to
            (0.5, 0.75).
        stem_pool_ceil_mode (bool): Set the backbone's stem max-pool to
            ``ceil_mode=True``, as deeplab-pytorch's ResNet (mmseg's is
            False): it changes the feature sizes, e.g. 31 instead of 30 for
            the 0.75 branch of a 321 crop, 48 instead of 47 rows for a
            375-pixel image. Defaults to False.
        allow_missing_keys (Sequence[str]): ``fnmatch`` patterns of model
            keys a loaded checkpoint may lack; any other missing or
            size-mismatched key fails ``load_from``, ``--resume`` and
            ``tools/test.py`` (:class:`StrictCheckpointMixin`). Defaults to
            ().
        allow_mismatched_keys (Sequence[str]): ``fnmatch`` patterns of
            model keys a loaded checkpoint may hold with another shape (e.g.
            a head of another class count): those tensors are not loaded,
            keep their initialisation, and a warning names them. Defaults to
            ().
        **kwargs: Passed to :class:`mmseg.models.EncoderDecoder`. In
            ``test_cfg``: ``crf`` (bool, default False) applies the dense CRF
            to every prediction; ``crf_cfg`` (dict) overrides
            :data:`DEFAULT_CRF_CFG`.
    """

    def __init__(self, scales: Sequence[float] = (0.5, 0.75),
                 stem_pool_ceil_mode: bool = False,
                 allow_missing_keys: Sequence[str] = (),
                 allow_mismatched_keys: Sequence[str] = (), **kwargs):
        super().__init__(**kwargs)
        self.set_checkpoint_allowances(allow_missing_keys,
                                       allow_mismatched_keys)
        if stem_pool_ceil_mode:
            pool = getattr(self.backbone, 'maxpool', None)
            if not isinstance(pool, torch.nn.MaxPool2d):
                raise TypeError('stem_pool_ceil_mode needs a backbone with a '
                                'MaxPool2d `maxpool` (a ResNet)')
            pool.ceil_mode = True
        scales = tuple(float(s) for s in scales)
        if any(s <= 0 or s == 1.0 for s in scales):
            raise ValueError(f'MSC scales must be positive and not 1.0 (the '
                             f'input is always used), got {scales}')
        self.scales = scales
        if self.test_cfg is None:
            self.test_cfg = dict()
        self._crf_status_logged = False

    def multi_scale_logits(self, inputs: Tensor) -> Dict[str, Tensor]:
        """Logits of every scale and their max.

        Returns:
            dict: ``'scale1.0'`` ``[B, K, h, w]``, ``'scale<s>'`` (their own,
            smaller sizes) and ``'max'`` ``[B, K, h, w]``, in this order.
        """
        full = self.decode_head.forward(self.extract_feat(inputs))
        outputs = {'scale1.0': full}
        for s in self.scales:
            x = F.interpolate(inputs, scale_factor=s, mode='bilinear',
                              align_corners=False)
            outputs[f'scale{s}'] = self.decode_head.forward(
                self.extract_feat(x))
        size = full.shape[-2:]
        aligned = [full] + [
            F.interpolate(outputs[f'scale{s}'], size=size, mode='bilinear',
                          align_corners=False) for s in self.scales
        ]
        outputs['max'] = torch.stack(aligned).max(dim=0)[0]
        return outputs

    def fused_logits(self, inputs: Tensor) -> Tensor:
        """Test-time output: pixel-wise max over scales, ``[B, K, h, w]``."""
        if not self.scales:
            return self.decode_head.forward(self.extract_feat(inputs))
        return self.multi_scale_logits(inputs)['max']

    @staticmethod
    def _with_labels_at(data_samples: List[SegDataSample],
                        size: Tuple[int, int]) -> List[SegDataSample]:
        """Copies of ``data_samples`` with the labels resized to ``size``."""
        labels = torch.stack([s.gt_sem_seg.data for s in data_samples])
        labels = resize_labels_nearest(labels, size)
        resized = []
        for sample, label in zip(data_samples, labels):
            new = SegDataSample(metainfo=copy.copy(sample.metainfo))
            new.gt_sem_seg = PixelData(data=label)
            resized.append(new)
        return resized

    def loss(self, inputs: Tensor, data_samples: List[SegDataSample]) -> dict:
        """Losses of every MSC output (labels resized to each output)."""
        outputs = self.multi_scale_logits(inputs)
        losses = dict()
        for name, logits in outputs.items():
            samples = self._with_labels_at(data_samples, logits.shape[-2:])
            # the labels already have the logits' size: mmseg's resize of the
            # logits to the label size inside loss_by_feat is the identity
            losses.update(add_prefix(
                self.decode_head.loss_by_feat(logits, samples),
                f'decode_{name}'))
        if self.with_auxiliary_head:
            losses.update(self._auxiliary_head_forward_train(
                self.extract_feat(inputs), data_samples))
        return losses

    def encode_decode(self, inputs: Tensor,
                      batch_img_metas: List[dict]) -> Tensor:
        """Max-fused logits upsampled (bilinear) to the input size."""
        return self.decode_head.predict_by_feat(
            self.fused_logits(inputs), batch_img_metas)

    def _forward(self, inputs: Tensor,
                 data_samples: Optional[List[SegDataSample]] = None) -> Tensor:
        return self.fused_logits(inputs)

    def predict(self, inputs: Tensor,
                data_samples: Optional[List[SegDataSample]] = None
                ) -> List[SegDataSample]:
        """Max-fused prediction, dCRF-refined when ``test_cfg.crf``.

        ``seg_logits`` stays the network's output; with the CRF on,
        ``pred_sem_seg`` is the argmax of the refined probabilities.
        """
        results = super().predict(inputs, data_samples)
        crf_on = bool(self.test_cfg.get('crf', False))
        if not self._crf_status_logged:
            print_log(f'{type(self).__name__}: {crf_status(self.test_cfg)}',
                      logger='current')
            self._crf_status_logged = True
        for sample in results:
            if crf_on:
                probs = sample.seg_logits.data.softmax(dim=0)
                sample.pred_sem_seg = PixelData(data=dense_crf_labels(
                    sample.get('img_path'), probs,
                    self.test_cfg.get('crf_cfg')))
            sample.set_metainfo(dict(dense_crf=crf_on))
        return results


@MODELS.register_module()
class DenseCRFSegTTAModel(SegTTAModel):
    """``SegTTAModel`` whose merged prediction gets the module's dense CRF.

    The wrapped segmentor's per-pass CRF is switched off during the
    augmented passes; when its ``test_cfg.crf`` is true, the CRF runs once on
    the mean softmax of all passes (already flipped back and resized to the
    original image by the segmentor). For segmentors without ``test_cfg.crf``
    this is exactly ``SegTTAModel``.
    """

    def _module_test_cfg(self) -> dict:
        cfg = getattr(self.module, 'test_cfg', None)
        return cfg if cfg is not None else {}

    def test_step(self, data):
        test_cfg = self._module_test_cfg()
        self._crf_on = bool(test_cfg.get('crf', False))
        if not getattr(self, '_crf_status_logged', False):
            where = (' (once, on the merged TTA prediction)'
                     if self._crf_on else '')
            print_log(f'{type(self).__name__}: {crf_status(test_cfg)}{where}',
                      logger='current')
            self._crf_status_logged = True
            # the wrapped segmentor's own status line would describe one pass
            if hasattr(self.module, '_crf_status_logged'):
                self.module._crf_status_logged = True
        if not self._crf_on:
            return super().test_step(data)
        test_cfg['crf'] = False
        try:
            return super().test_step(data)
        finally:
            test_cfg['crf'] = True

    def merge_preds(self, data_samples_list: List[List[SegDataSample]]
                    ) -> List[SegDataSample]:
        predictions = super().merge_preds(data_samples_list)
        if not getattr(self, '_crf_on', False):
            return predictions
        crf_cfg = self._module_test_cfg().get('crf_cfg')
        for merged, samples in zip(predictions, data_samples_list):
            probs = torch.stack(
                [s.seg_logits.data.softmax(dim=0) for s in samples]).mean(0)
            merged.pred_sem_seg = PixelData(
                data=dense_crf_labels(samples[0].img_path, probs, crf_cfg))
            merged.set_metainfo(dict(dense_crf=True))
        return predictions
