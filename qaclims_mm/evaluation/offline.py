"""Offline evaluation over folders: CAM files and label PNGs against GT PNGs.

The stage APIs :func:`evaluate_cams` (CAM files, one threshold and a sweep)
and the loops that the pseudo-mask evaluation shares
(:func:`sum_over_gt_images`); the tools ``eval_cam.py`` /
``eval_pseudo_masks.py`` are argument parsing over these.
"""
import os.path as osp
import sys
from typing import Callable, Optional, Sequence

import numpy as np

from ..utils.cam_file import find_cam_file, load_cam
from ..utils.label_io import read_label_png
from .cam_labels import upsample_strided_cams
from .cam_labels import DEFAULT_CAM_THRESHOLD
from .cam_sweep import (ArrayLike, _check_thresholds, default_thresholds,
                        sweep_confusion, sweep_summary)
from .report import format_sweep_report


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


def sweep_thresholds(threshold: float = DEFAULT_CAM_THRESHOLD,
                     sweep: Optional[Sequence[float]] = (0.05, 0.59, 0.01)
                     ) -> np.ndarray:
    """The thresholds of a CAM evaluation: the sweep plus ``threshold``.

    Args:
        threshold (float): The reported threshold. Defaults to
            :data:`DEFAULT_CAM_THRESHOLD`.
        sweep (Sequence[float], optional): ``(start, stop, step)`` of
            :func:`default_thresholds`; None scores ``threshold`` only.
            Defaults to the official ``0.05..0.59`` grid.

    Returns:
        np.ndarray: Sorted unique thresholds (rounded to 10 decimals).
    """
    if sweep is None:
        return np.array([float(threshold)])
    return np.unique(np.round(np.append(default_thresholds(*sweep),
                                        threshold), 10))


def evaluate_cams(cam_dir: str,
                  gt_dir: str,
                  img_ids: Sequence[str],
                  class_names: Sequence[str],
                  threshold: float = DEFAULT_CAM_THRESHOLD,
                  sweep: Optional[Sequence[float]] = (0.05, 0.59, 0.01),
                  cam_type: str = 'high_res',
                  ignore_index: int = 255,
                  split: str = 'unknown',
                  progress: bool = False) -> dict:
    """Score a folder of CAM files at ``threshold`` and over a sweep.

    Every CAM file and GT label is read once (:func:`evaluate_cam_dir`).

    Args:
        cam_dir (str): Folder of ``<id>.npz`` (or official ``<id>.npy``).
        gt_dir (str): Folder of ``<id>.png`` GT labels.
        img_ids (Sequence[str]): The images (at least one).
        class_names (Sequence[str]): The dataset's ``metainfo['classes']``,
            background first.
        threshold (float): The reported threshold. Defaults to 0.15.
        sweep (Sequence[float], optional): ``(start, stop, step)``; None
            scores ``threshold`` only. Defaults to ``(0.05, 0.59, 0.01)``.
        cam_type (str): ``'high_res'`` or ``'cam'``. Defaults to
            ``'high_res'``.
        ignore_index (int): GT label not scored. Defaults to 255.
        split (str): Split name for the report. Defaults to ``'unknown'``.
        progress (bool): Show a progress bar. Defaults to False.

    Returns:
        dict: ``conf`` (``[T, N, N]``), ``thresholds`` (``[T]``),
        ``summary`` (:func:`sweep_summary`), ``report`` (text),
        ``mIoU`` at ``threshold``, ``best_threshold`` and ``best_mIoU``.

    Raises:
        ValueError: for an empty id list or an out-of-range threshold.
    """
    from .cam_labels import check_threshold
    img_ids = list(img_ids)
    if not img_ids:
        raise ValueError('no image id given; nothing to evaluate')
    check_threshold(threshold)
    thresholds = sweep_thresholds(threshold, sweep)
    conf = evaluate_cam_dir(cam_dir, gt_dir, img_ids, thresholds,
                            num_classes=len(class_names) - 1,
                            cam_type=cam_type, ignore_index=ignore_index,
                            progress=progress)
    summary = sweep_summary(conf, thresholds, threshold)
    report = format_sweep_report(conf, thresholds, threshold, class_names,
                                 split=split, cam_type=cam_type)
    return dict(conf=conf, thresholds=thresholds, summary=summary,
                report=report,
                mIoU=summary['scores_at_threshold']['mIoU'],
                best_threshold=summary['best_threshold'],
                best_mIoU=summary['scores_at_best']['mIoU'])
