"""Data transforms reproducing the official QA-CLIMS / IRN pipelines.

Training (spec §3.3), in this order::

    LoadImageFromFile -> RandomLongSideResize(320, 640) -> RandomFlip(0.5)
    -> RandomCropWithPad(512) -> PackWSSSInputs

then the model's ``WSSSDataPreProcessor`` normalises with the ImageNet
mean/std (:mod:`qaclims_mm.structures.normalization`). The official code
normalises *before* the crop, so that padded pixels are 0 in normalised space
(the mean colour); here the crop records the valid region (``crop_box``) and
the pre-processor sets every pixel outside it to 0 after normalising, which
gives the same tensor bit for bit (the flip and the crop only move pixels).
Resizing uses Pillow's bicubic filter, as the official ``pil_resize`` does.

CAM inference (spec §6.1)::

    LoadImageFromFile -> MultiScaleImages((1.0, 0.5, 1.5, 2.0))
    -> PackWSSSInputs

The horizontal flip of each scale is done by the model on the tensor (exact).

``LoadImageFromFile`` takes ``color_type='color_ignore_orientation'`` in every
config: the official code (imageio / PIL) ignores the EXIF orientation, mmcv's
default applies it (:mod:`qaclims_mm.structures.image_decoding`).
"""
from typing import Dict, Optional, Sequence, Tuple, Union

import mmcv
import numpy as np
import torch
from mmcv.transforms import BaseTransform
from mmcv.transforms.utils import cache_randomness
from mmseg.datasets.transforms import LoadAnnotations, PackSegInputs
from mmseg.registry import TRANSFORMS

from ...structures.normalization import IMAGENET_MEAN, IMAGENET_STD


def rescale_size(hw: Tuple[int, int], scale: float) -> Tuple[int, int]:
    """``(round(h*s), round(w*s))`` with numpy's rounding (official parity)."""
    return int(np.round(hw[0] * scale)), int(np.round(hw[1] * scale))


def resize_image(img: np.ndarray, hw: Tuple[int, int],
                 interpolation: str = 'bicubic',
                 backend: str = 'pillow') -> np.ndarray:
    """Resize ``img`` to ``(h, w)`` (mmcv takes ``(w, h)``)."""
    return mmcv.imresize(img, (hw[1], hw[0]), interpolation=interpolation,
                         backend=backend)


def resize_results(results: dict, new_hw: Tuple[int, int],
                   interpolation: str = 'bicubic',
                   backend: str = 'pillow') -> dict:
    """Resize ``img`` (``interpolation``) and the ``seg_fields`` (nearest)
    to ``new_hw``; update ``img_shape`` and ``scale_factor``."""
    h, w = results['img'].shape[:2]
    results['img'] = resize_image(results['img'], new_hw, interpolation,
                                  backend)
    for key in results.get('seg_fields', []):
        results[key] = resize_image(results[key], new_hw, 'nearest', backend)
    results['img_shape'] = new_hw
    results['scale_factor'] = (new_hw[1] / w, new_hw[0] / h)
    return results


@TRANSFORMS.register_module()
class RandomLongSideResize(BaseTransform):
    """Resize so that the long side is a random integer in ``long_range``.

    The aspect ratio is kept; the target is drawn uniformly from the inclusive
    range (``random.randint`` semantics), the new size is ``round(h * s)``,
    ``round(w * s)`` with ``s = target / max(h, w)``. Segmentation maps in
    ``seg_fields`` are resized with nearest neighbours.

    Required keys: ``img``. Modified keys: ``img``, ``img_shape``, the seg
    fields. Added keys: ``scale_factor``.

    Args:
        long_range (tuple[int, int]): Inclusive range of the long side.
            Defaults to (320, 640).
        interpolation (str): Image interpolation. Defaults to 'bicubic'.
        backend (str): ``'pillow'`` (official parity) or ``'cv2'``.
    """

    def __init__(self,
                 long_range: Tuple[int, int] = (320, 640),
                 interpolation: str = 'bicubic',
                 backend: str = 'pillow') -> None:
        lo, hi = long_range
        if not 0 < lo <= hi:
            raise ValueError(f'long_range must satisfy 0 < lo <= hi, got '
                             f'{long_range}')
        self.long_range = (int(lo), int(hi))
        self.interpolation = interpolation
        self.backend = backend

    @cache_randomness
    def _draw_long_side(self) -> int:
        return int(np.random.randint(self.long_range[0],
                                     self.long_range[1] + 1))

    def transform(self, results: dict) -> dict:
        h, w = results['img'].shape[:2]
        scale = self._draw_long_side() / max(h, w)
        return resize_results(results, rescale_size((h, w), scale),
                              self.interpolation, self.backend)

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(long_range={self.long_range}, '
                f'interpolation={self.interpolation!r}, '
                f'backend={self.backend!r})')


@TRANSFORMS.register_module()
class NormalizeImage(BaseTransform):
    """Convert to float32 and normalise: ``(img - mean) / std``.

    The shipped configs normalise in the model's ``WSSSDataPreProcessor``
    instead (mmseg's convention); this transform serves pipelines that feed
    models whose pre-processor has no ``mean``. It records ``img_norm_cfg``,
    and a normalising pre-processor refuses such samples (no double
    normalisation).

    Required keys: ``img`` (and ``ms_imgs`` when present). Modified: the same.

    Args:
        mean (Sequence[float]): Per-channel mean (0-255 scale, output order).
            Defaults to the ImageNet mean.
        std (Sequence[float]): Per-channel std. Defaults to the ImageNet std.
        to_rgb (bool): Convert BGR (mmcv's loading order) to RGB first.
            Defaults to True.
    """

    def __init__(self,
                 mean: Sequence[float] = IMAGENET_MEAN,
                 std: Sequence[float] = IMAGENET_STD,
                 to_rgb: bool = True) -> None:
        self.mean = np.asarray(mean, dtype=np.float32)
        self.std = np.asarray(std, dtype=np.float32)
        self.to_rgb = to_rgb

    def _normalize(self, img: np.ndarray) -> np.ndarray:
        img = img.astype(np.float32)
        if self.to_rgb:
            img = img[..., ::-1]
        return np.ascontiguousarray((img - self.mean) / self.std)

    def transform(self, results: dict) -> dict:
        results['img'] = self._normalize(results['img'])
        if 'ms_imgs' in results:
            results['ms_imgs'] = [self._normalize(i) for i in results['ms_imgs']]
        results['img_norm_cfg'] = dict(
            mean=self.mean.tolist(), std=self.std.tolist(), to_rgb=self.to_rgb)
        return results

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(mean={self.mean.tolist()}, '
                f'std={self.std.tolist()}, to_rgb={self.to_rgb})')


@TRANSFORMS.register_module()
class RandomCropWithPad(BaseTransform):
    """Random ``crop_size`` crop that pads small images at a random offset.

    Along each axis independently: if the image is larger than the crop, a
    random window of the image is taken; if it is smaller, the whole image is
    placed at a random offset inside a ``crop_size`` container filled with
    ``img_pad_val`` (segmentation maps with ``seg_pad_val``). This is the
    official ``random_crop`` of IRN/CLIMS/QA-CLIMS.

    On un-normalised images the padding is finished by the model: a
    normalising ``WSSSDataPreProcessor`` sets every pixel outside
    ``crop_box`` to 0 after normalising, as the official crop of the
    normalised image pads with 0.

    Required keys: ``img``. Modified: ``img``, ``img_shape``, the seg fields.
    Added: ``crop_box`` (``(y0, y1, x0, x1)`` of the image inside the output),
    ``pad_shape``.

    Args:
        crop_size (int | tuple[int, int]): Output ``(h, w)``. Defaults to 512.
        img_pad_val (float): Image padding value. Defaults to 0 (the mean
            colour after normalisation).
        seg_pad_val (int): Segmentation padding value. Defaults to 255.
    """

    def __init__(self,
                 crop_size: Union[int, Tuple[int, int]] = 512,
                 img_pad_val: float = 0.,
                 seg_pad_val: int = 255) -> None:
        if isinstance(crop_size, int):
            crop_size = (crop_size, crop_size)
        if min(crop_size) <= 0:
            raise ValueError(f'crop_size must be positive, got {crop_size}')
        self.crop_size = tuple(int(c) for c in crop_size)
        self.img_pad_val = img_pad_val
        self.seg_pad_val = seg_pad_val

    @staticmethod
    def _axis_offsets(size: int, crop: int) -> Tuple[int, int]:
        """(offset in the container, offset in the image) along one axis."""
        space = size - crop
        if space > 0:
            return 0, int(np.random.randint(space + 1))
        return int(np.random.randint(-space + 1)), 0

    @cache_randomness
    def _draw_box(self, h: int, w: int) -> Dict[str, int]:
        cont_top, img_top = self._axis_offsets(h, self.crop_size[0])
        cont_left, img_left = self._axis_offsets(w, self.crop_size[1])
        ch, cw = min(self.crop_size[0], h), min(self.crop_size[1], w)
        return dict(ct=cont_top, cl=cont_left, it=img_top, il=img_left,
                    h=ch, w=cw)

    def _crop(self, arr: np.ndarray, box: Dict[str, int],
              pad_val: float) -> np.ndarray:
        out = np.full(self.crop_size + arr.shape[2:], pad_val, dtype=arr.dtype)
        out[box['ct']:box['ct'] + box['h'], box['cl']:box['cl'] + box['w']] = \
            arr[box['it']:box['it'] + box['h'], box['il']:box['il'] + box['w']]
        return out

    def transform(self, results: dict) -> dict:
        img = results['img']
        box = self._draw_box(*img.shape[:2])
        results['img'] = self._crop(img, box, self.img_pad_val)
        for key in results.get('seg_fields', []):
            results[key] = self._crop(results[key], box, self.seg_pad_val)
        results['img_shape'] = self.crop_size
        results['pad_shape'] = self.crop_size
        results['crop_box'] = (box['ct'], box['ct'] + box['h'], box['cl'],
                               box['cl'] + box['w'])
        return results

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(crop_size={self.crop_size}, '
                f'img_pad_val={self.img_pad_val}, '
                f'seg_pad_val={self.seg_pad_val})')


@TRANSFORMS.register_module()
class MultiScaleImages(BaseTransform):
    """Make the rescaled copies of the image for multi-scale CAM inference.

    Scale 1.0 keeps the image untouched; other scales resize to
    ``round(h * s), round(w * s)`` with Pillow bicubic (the official ``MSF``
    dataset). The flip of every scale is taken by the model.

    Required keys: ``img``. Added keys: ``ms_imgs`` (list, one per scale),
    ``ms_scales``.

    Args:
        scales (Sequence[float]): Defaults to (1.0, 0.5, 1.5, 2.0).
        interpolation (str): Defaults to 'bicubic'.
        backend (str): Defaults to 'pillow'.
    """

    def __init__(self,
                 scales: Sequence[float] = (1.0, 0.5, 1.5, 2.0),
                 interpolation: str = 'bicubic',
                 backend: str = 'pillow') -> None:
        if not scales or min(scales) <= 0:
            raise ValueError(f'scales must be positive, got {scales}')
        self.scales = tuple(float(s) for s in scales)
        self.interpolation = interpolation
        self.backend = backend

    def transform(self, results: dict) -> dict:
        img = results['img']
        hw = img.shape[:2]
        results['ms_imgs'] = [
            img if s == 1.0 else resize_image(img, rescale_size(hw, s),
                                              self.interpolation, self.backend)
            for s in self.scales
        ]
        results['ms_scales'] = self.scales
        return results

    def __repr__(self) -> str:
        return f'{type(self).__name__}(scales={self.scales})'


@TRANSFORMS.register_module()
class LoadOptionalAnnotations(LoadAnnotations):
    """mmseg's ``LoadAnnotations`` that skips samples without a mask.

    One CAM-inference pipeline then serves both the evaluation split (masks
    attached with ``with_seg_map=True``) and the training split (no masks:
    CAMs are written for refinement, nothing is scored).
    """

    def transform(self, results: dict) -> dict:
        if results.get('seg_map_path') is None:
            return results
        return super().transform(results)


def _to_chw_tensor(img: np.ndarray) -> torch.Tensor:
    if img.ndim == 2:
        img = img[..., None]
    return torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)))


@TRANSFORMS.register_module()
class PackWSSSInputs(PackSegInputs):
    """Pack an image (or its scales) with its id and image-level labels.

    ``inputs`` is the CHW image tensor, or, when ``ms_imgs`` is present, a list
    with one CHW tensor per scale. The data sample carries ``img_id`` and
    ``img_labels`` (0-based object-class indices) in its metainfo, and
    ``gt_sem_seg`` when a mask was loaded. Keys of ``results`` named in
    ``extra_fields`` (e.g. the ``qa_feats`` tensors of the QA-corpus transform)
    become data fields of the sample, unchanged.

    Args:
        meta_keys (Sequence[str]): Metainfo keys to keep (missing ones are
            skipped).
        extra_fields (Sequence[str]): Results keys packed as data fields when
            present. Defaults to ``('qa_feats', )``.
    """

    def __init__(self,
                 meta_keys: Sequence[str] = (
                     'img_id', 'img_labels', 'img_path', 'seg_map_path',
                     'ori_shape', 'img_shape', 'pad_shape', 'scale_factor',
                     'flip', 'flip_direction', 'reduce_zero_label',
                     'ms_scales', 'crop_box', 'img_norm_cfg'),
                 extra_fields: Sequence[str] = ('qa_feats', )) -> None:
        super().__init__(meta_keys=meta_keys)
        self.extra_fields = tuple(extra_fields)

    def transform(self, results: dict) -> dict:
        ms_imgs: Optional[list] = results.pop('ms_imgs', None)
        packed = super().transform(results)
        if ms_imgs is not None:
            packed['inputs'] = [_to_chw_tensor(i) for i in ms_imgs]
        for key in self.extra_fields:
            if key in results:
                packed['data_samples'].set_field(results[key], key)
        return packed
