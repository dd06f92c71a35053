"""CAM-to-label conversion and one-pass threshold sweeps (spec §6.2, §6.6).

The official CAM evaluation prepends a constant background plane of value
``threshold`` to the ``high_res`` CAMs, takes the argmax over channels, maps
the channels through ``keys`` and scores the result with a dataset-level
confusion matrix. Its ``--eval_cam_best`` mode repeats all of that, files
included, for every threshold in 0.05..0.59.

:func:`sweep_confusion` gets the confusion matrices of *all* thresholds from
one pass over an image. A pixel whose largest CAM value is ``m`` (reached first
by map ``k``) is labelled ``keys[k] + 1`` at threshold ``t`` iff ``m > t`` and
background otherwise (the background plane wins ties, as ``np.argmax`` returns
the first maximum). So it is enough to know, per pixel, how many thresholds lie
strictly below ``m``: one ``searchsorted`` gives that bucket, one ``bincount``
over ``(bucket, gt, class)`` counts the pixels, and a reversed cumulative sum
over the buckets turns the counts into the ``T`` confusion matrices. The result
is exactly (integer for integer) what :func:`cams_to_label` plus a per-
threshold :func:`confusion_matrix` give.

Thresholds are compared in the dtype of the CAMs (float32 for CAM files), as
the official padding with ``constant_values=threshold`` does, so a pixel whose
value is exactly ``float32(0.15)`` is background at 0.15 on both paths.

Everything here is numpy; no model code is imported.
"""
import os.path as osp
import sys
from typing import Callable, Dict, Optional, Sequence, Union

import numpy as np

from ..utils.cam_file import find_cam_file, load_cam

ArrayLike = Union[np.ndarray, Sequence[float]]


def _as_float_cams(cams: np.ndarray) -> np.ndarray:
    """Return ``cams`` as a floating ``[K, H, W]`` array."""
    cams = np.asarray(cams)
    if cams.ndim != 3:
        raise ValueError(f'CAMs must have shape [K, H, W], got {cams.shape}')
    if not np.issubdtype(cams.dtype, np.floating):
        cams = cams.astype(np.float32)
    return cams


def _as_keys(keys: np.ndarray, num_maps: int,
             num_classes: Optional[int] = None) -> np.ndarray:
    """Return ``keys`` as int64 ``[K]``, checked against maps and classes."""
    keys = np.asarray(keys).astype(np.int64, copy=False).reshape(-1)
    if keys.size != num_maps:
        raise ValueError(f'{keys.size} class keys for {num_maps} CAM maps')
    if num_classes is not None and keys.size and (
            keys.min() < 0 or keys.max() >= num_classes):
        bad = keys[(keys < 0) | (keys >= num_classes)].tolist()
        raise ValueError(f'class keys {bad} are outside [0, {num_classes})')
    return keys


def cams_to_label(cams: np.ndarray, keys: np.ndarray,
                  threshold: float) -> np.ndarray:
    """Turn one image's CAMs into a label map with a background threshold.

    A constant background plane of value ``threshold`` (in the CAM dtype) is
    prepended, the argmax is taken over channels (ties go to the first channel,
    i.e. background) and channel ``k > 0`` becomes label ``keys[k - 1] + 1``.

    Args:
        cams (np.ndarray): ``[K, H, W]`` CAMs (``K`` may be 0).
        keys (np.ndarray): ``[K]`` 0-based class indices of the maps.
        threshold (float): The background score.

    Returns:
        np.ndarray: ``[H, W]`` int64 labels, 0 = background, ``1..C`` classes.
    """
    cams = _as_float_cams(cams)
    keys = _as_keys(keys, cams.shape[0])
    num_maps, height, width = cams.shape
    if num_maps == 0:
        return np.zeros((height, width), dtype=np.int64)
    bg = np.full((1, height, width), threshold, dtype=cams.dtype)
    channel = np.concatenate([bg, cams]).argmax(axis=0)  # [H, W] in 0..K
    lut = np.concatenate([np.zeros(1, dtype=np.int64), keys + 1])
    return lut[channel]


def upsample_strided_cams(cams: np.ndarray,
                          image_hw: Sequence[int],
                          stride: int = 4) -> np.ndarray:
    """Bring stride-``stride`` CAMs (the ``cam`` entry) to the image size.

    The official pipeline evaluates only ``high_res``; where it brings the
    stride-4 ``cam`` maps to full resolution (the random-walk step, spec
    §6.5) it upsamples them ``stride``x bilinearly (``align_corners=False``)
    and crops to ``H x W``. This does the same, without any other change
    (no renormalisation), so ``cam`` can be scored against full-size GT.

    Args:
        cams (np.ndarray): ``[K, ceil(H / stride), ceil(W / stride)]``.
        image_hw (Sequence[int]): ``(H, W)``.
        stride (int): The CAM stride. Defaults to 4.

    Returns:
        np.ndarray: float32 ``[K, H, W]``.

    Raises:
        ValueError: when the maps are not the stride-``stride`` grid of an
            ``H x W`` image (both shapes named).
    """
    import torch
    import torch.nn.functional as F
    cams = _as_float_cams(cams)
    height, width = int(image_hw[0]), int(image_hw[1])
    grid = (-(-height // stride), -(-width // stride))
    if tuple(cams.shape[1:]) != grid:
        raise ValueError(f'stride-{stride} CAMs of spatial shape '
                         f'{tuple(cams.shape[1:])} do not match an image of '
                         f'{(height, width)} (expected {grid})')
    if cams.shape[0] == 0:
        return np.zeros((0, height, width), dtype=np.float32)
    up = F.interpolate(torch.from_numpy(np.ascontiguousarray(
        cams, dtype=np.float32))[None], scale_factor=stride, mode='bilinear',
        align_corners=False)[0, :, :height, :width]
    return up.numpy()


def confusion_matrix(gt: np.ndarray, pred: np.ndarray, num_classes: int,
                     ignore_index: int = 255) -> np.ndarray:
    """Dataset-style confusion matrix of one label map.

    Args:
        gt (np.ndarray): ``[H, W]`` ground-truth labels.
        pred (np.ndarray): ``[H, W]`` predicted labels in ``[0, N)``.
        num_classes (int): ``N``, background included.
        ignore_index (int): GT label that is not scored. Defaults to 255.

    Returns:
        np.ndarray: ``[N, N]`` int64, rows = GT, columns = prediction.
    """
    gt = np.asarray(gt).astype(np.int64, copy=False)
    pred = np.asarray(pred).astype(np.int64, copy=False)
    if gt.shape != pred.shape:
        raise ValueError(f'GT shape {gt.shape} != prediction shape '
                         f'{pred.shape}')
    valid = gt != ignore_index
    gt, pred = gt[valid], pred[valid]
    _check_gt_range(gt, num_classes, ignore_index)
    if pred.size and (pred.min() < 0 or pred.max() >= num_classes):
        raise ValueError(f'predicted labels outside [0, {num_classes})')
    return np.bincount(
        num_classes * gt + pred,
        minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def _check_gt_range(valid_gt: np.ndarray, num_classes: int,
                    ignore_index: int) -> None:
    if valid_gt.size and (valid_gt.min() < 0 or valid_gt.max() >= num_classes):
        bad = np.unique(valid_gt[(valid_gt < 0) | (valid_gt >= num_classes)])
        raise ValueError(f'GT labels {bad.tolist()[:10]} are outside '
                         f'[0, {num_classes}) and are not the ignore index '
                         f'{ignore_index}')


def check_threshold(value: float, name: str = 'threshold') -> float:
    """Return ``value`` as a float after checking that it lies in [0, 1].

    CAMs are max-normalised to [0, 1), so a background score outside [0, 1]
    makes every pixel foreground (below 0) or background (above 1).

    Args:
        value (float): The threshold.
        name (str): Its option or config name, for the error message.

    Raises:
        ValueError: naming ``name`` when ``value`` is NaN or outside [0, 1].
    """
    value = float(value)
    if not 0.0 <= value <= 1.0:  # also rejects NaN
        raise ValueError(f'{name} must lie in [0, 1] (CAMs are normalised '
                         f'to that range), got {value:g}')
    return value


def _check_thresholds(thresholds: ArrayLike) -> np.ndarray:
    thresholds = np.asarray(thresholds, dtype=np.float64).reshape(-1)
    if thresholds.size == 0:
        raise ValueError('at least one threshold is needed')
    if np.isnan(thresholds).any():
        raise ValueError('thresholds contain NaN')
    if (np.diff(thresholds) < 0).any():
        raise ValueError(f'thresholds must be sorted ascending, got '
                         f'{thresholds.tolist()}')
    return thresholds


def sweep_confusion(cams: np.ndarray,
                    keys: np.ndarray,
                    gt: np.ndarray,
                    thresholds: ArrayLike,
                    num_classes: int,
                    ignore_index: int = 255) -> np.ndarray:
    """Confusion matrices of one image at every threshold, in one pass.

    Equal, integer for integer, to
    ``[confusion_matrix(gt, cams_to_label(cams, keys, t), num_classes + 1)
    for t in thresholds]``.

    Args:
        cams (np.ndarray): ``[K, H, W]`` CAMs (``K`` may be 0).
        keys (np.ndarray): ``[K]`` 0-based class indices in
            ``[0, num_classes)``.
        gt (np.ndarray): ``[H, W]`` GT labels (0 background, ``1..C``
            classes, ``ignore_index`` ignored).
        thresholds (Sequence[float]): ``[T]`` background thresholds, sorted
            ascending.
        num_classes (int): ``C``, the number of object classes (no
            background).
        ignore_index (int): GT label that is not scored. Defaults to 255.

    Returns:
        np.ndarray: ``[T, N, N]`` int64 with ``N = C + 1``; rows = GT,
        columns = prediction.

    Raises:
        ValueError: for a GT whose shape is not the CAM spatial shape (both
            shapes are named; callers add the image id), keys or GT labels out
            of range, or unsorted thresholds.
    """
    cams = _as_float_cams(cams)
    keys = _as_keys(keys, cams.shape[0], num_classes)
    thresholds = _check_thresholds(thresholds)
    gt = np.asarray(gt)
    if gt.ndim == 3 and gt.shape[0] == 1:
        gt = gt[0]
    if gt.shape != cams.shape[1:]:
        raise ValueError(f'GT shape {tuple(gt.shape)} does not match the CAM '
                         f'spatial shape {tuple(cams.shape[1:])} (CAMs '
                         f'{tuple(cams.shape)})')
    n = num_classes + 1
    num_thr = thresholds.size
    num_maps = cams.shape[0]

    # GT rows 0..N-1; ignored pixels go to an extra row N that is dropped
    gt = gt.astype(np.int64).reshape(-1)  # [P]
    ignored = gt == ignore_index
    _check_gt_range(gt[~ignored], n, ignore_index)
    gt[ignored] = n
    gt_total = np.bincount(gt, minlength=n + 1)[:n]  # [N] pixels per GT row

    conf = np.zeros((num_thr, n, n), dtype=np.int64)
    if num_maps > 0 and gt.size:
        # compare in the CAM dtype, exactly like the padded bg plane does
        thr = thresholds.astype(cams.dtype)
        flat = cams.reshape(num_maps, -1)  # [K, P]
        peak = flat.max(axis=0)  # [P]
        # index of the first map reaching the peak (np.argmax's rule), as a
        # running count of the maps before it; much faster than argmax(0)
        first_max = np.zeros(peak.shape, dtype=np.int64)
        before_max = np.ones(peak.shape, dtype=bool)
        for k in range(num_maps - 1):
            before_max &= flat[k] != peak
            first_max += before_max
        # bucket b = number of thresholds strictly below the peak, so the pixel
        # is foreground at thresholds[:b] and background at thresholds[b:]
        bucket = np.searchsorted(thr, peak, side='left')  # [P] in 0..T
        index = (bucket * (n + 1) + gt) * num_maps + first_max
        hist = np.bincount(
            index, minlength=(num_thr + 1) * (n + 1) * num_maps).reshape(
                num_thr + 1, n + 1, num_maps)[:, :n]  # [T+1, N, K]
        # foreground at threshold i: the pixels of every bucket b > i
        fg_by_map = np.cumsum(hist[:0:-1], axis=0)[::-1]  # [T, N, K]
        # map k predicts label keys[k] + 1 (add.at also handles repeated keys)
        np.add.at(conf.transpose(2, 0, 1), keys + 1,
                  fg_by_map.transpose(2, 0, 1))
    conf[:, :, 0] = gt_total[None] - conf[:, :, 1:].sum(axis=2)
    return conf


def default_thresholds(start: float = 0.05,
                       stop: float = 0.59,
                       step: float = 0.01) -> np.ndarray:
    """The official ``--eval_cam_best`` grid, ``start..stop`` inclusive.

    Args:
        start (float): First threshold. Defaults to 0.05.
        stop (float): Last threshold (included). Defaults to 0.59.
        step (float): Spacing. Defaults to 0.01.

    Returns:
        np.ndarray: float64 thresholds rounded to 10 decimals (55 values for
        the defaults).
    """
    if step <= 0:
        raise ValueError(f'step must be positive, got {step}')
    if stop < start:
        raise ValueError(f'stop {stop} is below start {start}')
    count = int(np.floor((stop - start) / step + 1e-9)) + 1
    return np.round(start + step * np.arange(count), 10)


def confusion_to_scores(conf: np.ndarray) -> Dict[str, np.ndarray]:
    """Scores of a confusion matrix (the official ``eval_cam`` /
    ``eval_sem_seg`` numbers).

    With ``TP_c = conf[c, c]``, ``GT_c`` the row sum, ``Pred_c`` the column
    sum and ``U_c = GT_c + Pred_c - TP_c``:

    - ``IoU_c = TP_c / U_c`` (nan where ``U_c = 0``), ``mIoU`` = nanmean;
    - ``fp_rate_c = (Pred_c - TP_c) / U_c`` (wrongly claimed pixels) and
      ``fn_rate_c = (GT_c - TP_c) / U_c`` (missed pixels), so that
      ``IoU + fp_rate + fn_rate = 1``;
    - ``fg_false_activation = conf[0, 1:].sum() / conf[:, 1:].sum()``: the
      fraction of predicted-foreground pixels whose GT is background
      (``among_predfg_bg``).

    Args:
        conf (np.ndarray): ``[..., N, N]`` confusion matrices (rows = GT).
            Leading axes (e.g. thresholds) are kept.

    Returns:
        dict: ``IoU``, ``fp_rate``, ``fn_rate`` (``[..., N]``), ``mIoU`` and
        ``fg_false_activation`` (``[...]``; floats for a single matrix), all
        fractions in [0, 1].
    """
    conf = np.asarray(conf, dtype=np.float64)
    if conf.ndim < 2 or conf.shape[-1] != conf.shape[-2]:
        raise ValueError(f'confusion must be [..., N, N], got {conf.shape}')
    gt_count = conf.sum(axis=-1)
    pred_count = conf.sum(axis=-2)
    tp = np.diagonal(conf, axis1=-2, axis2=-1)
    union = gt_count + pred_count - tp
    with np.errstate(invalid='ignore', divide='ignore'):
        iou = tp / union
        fp_rate = (pred_count - tp) / union
        fn_rate = (gt_count - tp) / union
        pred_fg = conf[..., :, 1:].sum(axis=(-2, -1))
        fg_false = conf[..., 0, 1:].sum(axis=-1) / pred_fg
    valid = ~np.isnan(iou)
    count = valid.sum(axis=-1)
    with np.errstate(invalid='ignore', divide='ignore'):
        miou = np.where(valid, iou, 0.0).sum(axis=-1) / count
    scores = dict(IoU=iou, fp_rate=fp_rate, fn_rate=fn_rate, mIoU=miou,
                  fg_false_activation=fg_false)
    if conf.ndim == 2:
        scores['mIoU'] = float(miou)
        scores['fg_false_activation'] = float(fg_false)
    return scores


def read_label_png(path: str) -> np.ndarray:
    """Read a label PNG as its raw indices ``[H, W]`` (palette kept as is)."""
    from PIL import Image
    with Image.open(path) as img:
        return np.asarray(img)


def sum_over_gt_images(img_ids: Sequence[str],
                       gt_dir: str,
                       score: Callable[[str, np.ndarray], np.ndarray],
                       gt_suffix: str = '.png',
                       progress: bool = False) -> Optional[np.ndarray]:
    """Sum ``score(img_id, gt)`` over images whose GT is a label PNG.

    The loop shared by the offline evaluators: a missing GT file and a
    ``ValueError`` raised by ``score`` are reported with the image id; an
    optional progress bar.

    Returns:
        np.ndarray | None: the sum, None for no image.
    """
    img_ids = list(img_ids)
    bar = None
    if progress and img_ids:
        from mmengine.utils import ProgressBar

        # pass the current stdout: the default is bound at mmengine's import
        bar = ProgressBar(len(img_ids), file=sys.stdout)
    total = None
    for img_id in img_ids:
        gt_path = osp.join(gt_dir, img_id + gt_suffix)
        if not osp.isfile(gt_path):
            raise FileNotFoundError(
                f'no GT label for image {img_id!r}: {gt_path}')
        gt = read_label_png(gt_path)
        try:
            value = score(img_id, gt)
        except ValueError as e:
            raise ValueError(f'image {img_id!r}: {e}') from e
        total = value if total is None else total + value
        if bar is not None:
            bar.update()
    if bar is not None:
        sys.stdout.write('\n')
    return total


def evaluate_cam_dir(cam_dir: str,
                     gt_dir: str,
                     img_ids: Sequence[str],
                     thresholds: ArrayLike,
                     num_classes: int = 20,
                     cam_type: str = 'high_res',
                     ignore_index: int = 255,
                     gt_suffix: str = '.png',
                     progress: bool = False) -> np.ndarray:
    """Sweep saved CAM files against GT label PNGs, reading each file once.

    Args:
        cam_dir (str): Folder of ``<id>.npz`` (or official ``<id>.npy``) files.
        gt_dir (str): Folder of GT label images (``SegmentationClass``).
        img_ids (Sequence[str]): The image ids to score.
        thresholds (Sequence[float]): ``[T]`` sorted thresholds.
        num_classes (int): Object classes (no background). Defaults to 20.
        cam_type (str): ``'high_res'`` (full resolution, the official choice)
            or ``'cam'`` (stride 4, upsampled by
            :func:`upsample_strided_cams`). Defaults to ``'high_res'``.
        ignore_index (int): GT label that is not scored. Defaults to 255.
        gt_suffix (str): GT file suffix. Defaults to ``'.png'``.
        progress (bool): Show a progress bar. Defaults to False.

    Returns:
        np.ndarray: ``[T, N, N]`` int64 dataset confusion matrices.

    Raises:
        FileNotFoundError, ValueError: naming the image id.
    """
    thresholds = _check_thresholds(thresholds)

    def score(img_id: str, gt: np.ndarray) -> np.ndarray:
        cam = load_cam(find_cam_file(cam_dir, img_id), num_classes,
                       fields=(cam_type, ))
        cams = cam[cam_type]
        if cam_type == 'cam':
            cams = upsample_strided_cams(cams, np.shape(gt)[-2:])
        return sweep_confusion(cams, cam['keys'], gt, thresholds,
                               num_classes, ignore_index)

    total = sum_over_gt_images(img_ids, gt_dir, score, gt_suffix, progress)
    if total is None:
        n = num_classes + 1
        total = np.zeros((thresholds.size, n, n), dtype=np.int64)
    return total


def format_sweep_report(conf: np.ndarray,
                        thresholds: ArrayLike,
                        threshold: float,
                        class_names: Sequence[str],
                        split: str = 'unknown',
                        cam_type: str = 'high_res') -> str:
    """A human-readable report of a threshold sweep.

    The header states split, CAM type, the threshold used and the best
    threshold; then a per-class table (IoU, fp and fn rates at ``threshold``
    and IoU at the best threshold, in %) and the mIoU curve.

    Args:
        conf (np.ndarray): ``[T, N, N]`` confusion matrices.
        thresholds (Sequence[float]): ``[T]`` thresholds of ``conf``.
        threshold (float): The reported threshold; must be one of
            ``thresholds``.
        class_names (Sequence[str]): ``N`` names, background first.
        split (str): Split label for the header. Defaults to ``'unknown'``.
        cam_type (str): CAM entry scored. Defaults to ``'high_res'``.

    Returns:
        str: The report (several lines).
    """
    from prettytable import PrettyTable

    thresholds = _check_thresholds(thresholds)
    summary = sweep_summary(conf, thresholds, threshold)
    if len(class_names) != conf.shape[-1]:
        raise ValueError(f'{len(class_names)} class names for a '
                         f'{conf.shape[-1]}-class confusion matrix')
    at = summary['scores_at_threshold']
    best = summary['scores_at_best']
    table = PrettyTable()
    table.add_column('Class', list(class_names))
    table.add_column(f'IoU@{threshold:g}', _percent(at['IoU']))
    table.add_column('FP rate', _percent(at['fp_rate']))
    table.add_column('FN rate', _percent(at['fn_rate']))
    table.add_column(f'IoU@{summary["best_threshold"]:g} (best)',
                     _percent(best['IoU']))
    points = [
        f'{t:g}: {m * 100:.2f}'
        for t, m in zip(thresholds, summary['mIoU_curve'])
    ]
    curve = '\n'.join('  ' + ', '.join(points[i:i + 10])
                      for i in range(0, len(points), 10))
    lines = [
        f'CAM evaluation on split {split!r}, CAM type {cam_type!r}, '
        f'background threshold {threshold:g}:',
        f'  mIoU {at["mIoU"] * 100:.2f}, fg false activation '
        f'{at["fg_false_activation"] * 100:.2f}%',
        f'  best threshold {summary["best_threshold"]:g} over '
        f'{thresholds.size} threshold(s) '
        f'[{thresholds[0]:g}, {thresholds[-1]:g}]: '
        f'mIoU {best["mIoU"] * 100:.2f}',
        table.get_string(),
        'mIoU per threshold:',
        curve,
    ]
    return '\n'.join(lines)


def _percent(values: np.ndarray) -> list:
    return [f'{float(v) * 100:.2f}' for v in values]


def sweep_summary(conf: np.ndarray, thresholds: ArrayLike,
                  threshold: float) -> dict:
    """Pick the reported and the best threshold out of a sweep.

    The best threshold is the global argmax of mIoU over the sweep (the
    smallest such threshold on ties). The official ``--eval_cam_best`` scan
    stops at the first decrease instead, which can miss a later maximum.

    Args:
        conf (np.ndarray): ``[T, N, N]`` confusion matrices.
        thresholds (Sequence[float]): ``[T]`` thresholds of ``conf``.
        threshold (float): The reported threshold; must be in ``thresholds``.

    Returns:
        dict: ``mIoU_curve`` ``[T]``, ``threshold``, ``best_threshold``,
        ``scores_at_threshold`` and ``scores_at_best``
        (:func:`confusion_to_scores` dicts).
    """
    thresholds = _check_thresholds(thresholds)
    conf = np.asarray(conf)
    if conf.ndim != 3 or conf.shape[0] != thresholds.size:
        raise ValueError(f'confusion of shape {conf.shape} does not match '
                         f'{thresholds.size} thresholds')
    hits = np.flatnonzero(np.isclose(thresholds, threshold, rtol=0,
                                     atol=1e-9))
    if hits.size == 0:
        raise ValueError(f'threshold {threshold} is not one of the evaluated '
                         f'thresholds {thresholds.tolist()}')
    curve = confusion_to_scores(conf)['mIoU']
    if np.isnan(curve).all():
        best_index = int(hits[0])
    else:
        best_index = int(np.nanargmax(curve))
    return dict(
        mIoU_curve=curve,
        threshold=float(thresholds[hits[0]]),
        best_threshold=float(thresholds[best_index]),
        scores_at_threshold=confusion_to_scores(conf[hits[0]]),
        scores_at_best=confusion_to_scores(conf[best_index]))
