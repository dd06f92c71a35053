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

Label conversion lives in :mod:`.cam_labels`, confusion matrices and scores
in :mod:`.confusion`, the loops over CAM / GT folders in :mod:`.offline` and
the text report in :mod:`.report`. Everything here is numpy.
"""
from typing import Sequence, Union

import numpy as np

from .cam_labels import _as_float_cams, _as_keys
from .confusion import _check_gt_range, confusion_to_scores

ArrayLike = Union[np.ndarray, Sequence[float]]


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
