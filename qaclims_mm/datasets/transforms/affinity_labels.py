"""Transforms of IRNet training (spec §6.4; IRN ``voc12/dataloader.py``).

Pipeline, in the official order::

    LoadImageFromFile -> LoadAnnotations (IR labels) -> RandomRescale(0.5, 1.5)
    -> RandomFlip(0.5) -> RandomCropWithPad(512, seg 255)
    -> AffinityLabels(radius=10)
    -> PackWSSSInputs(extra_fields=('aff_labels', ))

(the model's data preprocessor normalises; the official code normalises
before the flip, which gives the same input: see ``wsss_transforms``).
"""
from typing import Tuple

import numpy as np
import torch
from mmcv.transforms import BaseTransform
from mmcv.transforms.utils import cache_randomness
from mmseg.registry import TRANSFORMS

from ...structures.path_index import PathIndex
from .wsss_transforms import rescale_size, resize_image, resize_results


def affinity_labels_from_seg(
        label: np.ndarray, path_index: PathIndex,
        num_classes: int = 21) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pair labels of a (downsampled) label map, IRN's layout ``[D, M]``.

    For every pair (source, destination) of ``path_index.pair_indices``
    whose both labels are valid (``< num_classes``; 255 and any other value
    are ignored):

    * background positive: same label, and it is 0;
    * foreground positive: same label, and it is > 0;
    * negative: different labels.

    Args:
        label (np.ndarray): ``[h, w]`` integer labels.
        path_index (PathIndex): The pair layout (radius 10 for IRN).
        num_classes (int): Valid labels are ``[0, num_classes)``, background
            included. Defaults to 21 (VOC).

    Returns:
        tuple[np.ndarray]: Boolean ``bg_pos``, ``fg_pos``, ``neg``, each
        ``[D, M]``.
    """
    label = np.asarray(label)
    if label.ndim != 2:
        raise ValueError(f'label map must be [h, w], got {label.shape}')
    src, dst = path_index.pair_indices(*label.shape)
    flat = label.reshape(-1).astype(np.int64)
    lab_src = flat[src][None]  # [1, M]
    lab_dst = flat[dst]  # [D, M]
    valid = (lab_src < num_classes) & (lab_dst < num_classes)
    equal = lab_src == lab_dst
    pos = equal & valid
    return pos & (lab_src == 0), pos & (lab_src > 0), ~equal & valid


@TRANSFORMS.register_module()
class AffinityLabels(BaseTransform):
    """Pixel-pair affinity labels from an IR label map (IRN's ``aff_*``).

    The label map (``gt_seg_map``, after cropping) is downsampled by
    ``downsample`` with Pillow nearest neighbours (IRN's ``pil_rescale``), and
    :func:`affinity_labels_from_seg` gives the pair labels, stored as one
    uint8 tensor ``aff_labels`` ``[3, D, M]`` (bg_pos, fg_pos, neg). Pack it
    with ``PackWSSSInputs(extra_fields=('aff_labels', ))``.

    Required keys: ``gt_seg_map``. Added keys: ``aff_labels``.

    Args:
        radius (int): Pair radius on the downsampled grid. Defaults to 10.
        downsample (int): Downsampling factor (the edge-map stride).
            Defaults to 4.
        num_classes (int): Valid labels ``[0, num_classes)`` (background
            included); others (255) are ignored. Defaults to 21 (VOC);
            81 for COCO.
        seg_key (str): The label-map key. Defaults to 'gt_seg_map'.
    """

    def __init__(self,
                 radius: int = 10,
                 downsample: int = 4,
                 num_classes: int = 21,
                 seg_key: str = 'gt_seg_map') -> None:
        self.path_index = PathIndex(radius)
        self.radius = radius
        self.downsample = downsample
        self.num_classes = num_classes
        self.seg_key = seg_key

    def transform(self, results: dict) -> dict:
        if self.seg_key not in results:
            img = results.get('img_id', results.get('img_path'))
            raise KeyError(
                f'AffinityLabels needs {self.seg_key!r} (the IR label map) '
                f'for image {img!r}; load it with LoadAnnotations and a dataset with '
                f'with_seg_map=True')
        label = np.ascontiguousarray(results[self.seg_key], dtype=np.uint8)
        if self.downsample != 1:
            # PIL's nearest (the official pil_rescale, order 0) samples pixel
            # 4i + 2 where OpenCV's samples 4i: a 2-pixel shift of every
            # affinity label relative to the edge map otherwise
            size = rescale_size(label.shape[:2], 1. / self.downsample)
            label = resize_image(label, size, 'nearest', 'pillow')
        bg_pos, fg_pos, neg = affinity_labels_from_seg(
            label, self.path_index, self.num_classes)
        results['aff_labels'] = torch.from_numpy(
            np.stack([bg_pos, fg_pos, neg]).astype(np.uint8))
        return results

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(radius={self.radius}, '
                f'downsample={self.downsample}, '
                f'num_classes={self.num_classes})')


@TRANSFORMS.register_module()
class RandomRescale(BaseTransform):
    """Rescale by a random factor drawn uniformly from ``scale_range``.

    IRN's ``random_scale``: the new size is ``round(h * s)``,
    ``round(w * s)``; the image is resized with ``interpolation`` (Pillow
    bicubic, as the official ``pil_rescale`` with order 3), the maps of
    ``seg_fields`` with nearest neighbours.

    Required keys: ``img``. Modified keys: ``img``, ``img_shape``, the seg
    fields. Added keys: ``scale_factor``.

    Args:
        scale_range (tuple[float, float]): Defaults to (0.5, 1.5).
        interpolation (str): Image interpolation. Defaults to 'bicubic'.
        backend (str): ``'pillow'`` (official parity) or ``'cv2'``.
    """

    def __init__(self,
                 scale_range: Tuple[float, float] = (0.5, 1.5),
                 interpolation: str = 'bicubic',
                 backend: str = 'pillow') -> None:
        lo, hi = scale_range
        if not 0 < lo <= hi:
            raise ValueError(f'scale_range must satisfy 0 < lo <= hi, got '
                             f'{scale_range}')
        self.scale_range = (float(lo), float(hi))
        self.interpolation = interpolation
        self.backend = backend

    @cache_randomness
    def _draw_scale(self) -> float:
        lo, hi = self.scale_range
        return lo + np.random.random() * (hi - lo)

    def transform(self, results: dict) -> dict:
        h, w = results['img'].shape[:2]
        new_hw = rescale_size((h, w), self._draw_scale())
        new_hw = (max(new_hw[0], 1), max(new_hw[1], 1))
        return resize_results(results, new_hw, self.interpolation,
                              self.backend)

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(scale_range={self.scale_range}, '
                f'interpolation={self.interpolation!r})')
