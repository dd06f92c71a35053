"""Confusion matrices of label maps and the scores read from them."""
from typing import Dict

import numpy as np


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


def fg_false_activation_per_class(conf: np.ndarray) -> np.ndarray:
    """Per object class, the share of its predicted pixels that are GT
    background: ``conf[0, c] / conf[:, c].sum()`` for ``c = 1..N-1``.

    The per-class split of ``fg_false_activation``
    (:func:`confusion_to_scores`): how much a class's CAM spills onto the
    background (e.g. a boat's onto the water around it).

    Args:
        conf (np.ndarray): ``[..., N, N]`` confusion matrices (rows = GT).

    Returns:
        np.ndarray: ``[..., N - 1]`` float64 fractions in [0, 1]; nan for a
        class that is never predicted.
    """
    conf = np.asarray(conf, dtype=np.float64)
    if conf.ndim < 2 or conf.shape[-1] != conf.shape[-2]:
        raise ValueError(f'confusion must be [..., N, N], got {conf.shape}')
    with np.errstate(invalid='ignore', divide='ignore'):
        return conf[..., 0, 1:] / conf[..., :, 1:].sum(axis=-2)
