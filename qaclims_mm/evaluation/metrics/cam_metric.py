"""Dataset-level CAM mIoU with a one-pass background-threshold sweep (§6.2)."""
import logging
import os.path as osp
from collections.abc import Mapping
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from mmengine.evaluator import BaseMetric
from mmengine.logging import MMLogger, print_log
from mmseg.registry import METRICS

from ...utils.cam_file import find_cam_file, load_cam
from ..cam_labels import (DEFAULT_CAM_THRESHOLD, check_threshold,
                          upsample_strided_cams)
from ..cam_sweep import default_thresholds, sweep_confusion, sweep_summary
from ..report import format_sweep_report

CAM_TYPES = ('high_res', 'cam')


def _to_numpy(value) -> np.ndarray:
    if hasattr(value, 'detach'):
        value = value.detach().cpu().numpy()
    return np.asarray(value)


def _get(container, name: str):
    """``container[name]`` for a dict, ``container.name`` for a data element.
    """
    if isinstance(container, Mapping):
        return container[name]
    if not hasattr(container, name):
        raise KeyError(name)
    return getattr(container, name)


def cam_metrics_from_summary(summary: dict) -> Dict[str, float]:
    """The numbers :class:`CAMIoUMetric` reports, from a sweep summary.

    Args:
        summary (dict): A :func:`~qaclims_mm.evaluation.cam_sweep.
            sweep_summary` result.

    Returns:
        dict: ``mIoU``, ``best_mIoU``, ``fg_false_act`` (%, two decimals)
        and ``best_threshold``.
    """
    at = summary['scores_at_threshold']
    best = summary['scores_at_best']
    return dict(
        mIoU=float(np.round(at['mIoU'] * 100, 2)),
        best_mIoU=float(np.round(best['mIoU'] * 100, 2)),
        best_threshold=float(np.round(summary['best_threshold'], 10)),
        fg_false_act=float(np.round(at['fg_false_activation'] * 100, 2)))


@METRICS.register_module()
class CAMIoUMetric(BaseMetric):
    """mIoU of CAMs turned into labels with a constant background score.

    As the official ``eval_cam.py``: a background plane of value ``threshold``
    is prepended to the CAMs, the argmax over channels is mapped through the
    image's class ``keys``, and a dataset-level confusion matrix gives
    ``IoU = TP / (GT + Pred - TP)`` and mIoU = nanmean over background + the
    object classes. The matrices of every threshold in ``sweep`` come from the
    same pass over each image
    (:func:`~qaclims_mm.evaluation.cam_sweep.sweep_confusion`), so the best
    threshold is found for free.

    Each rank keeps a single ``[T, N, N]`` int64 histogram in ``self.results``
    (memory independent of the dataset size); :meth:`compute_metrics` sums
    the entries collected from all ranks.

    Predictions are read from ``data_sample['pred_cam']``, a dict with
    ``keys`` (``[K]`` 0-based class indices), ``high_res`` (``[K, H, W]``)
    and ``cam`` (``[K, h, w]``); or, with ``cam_dir``, from the CAM file
    ``<cam_dir>/<img_id>.npz`` (or an official ``.npy``) of each image, which
    scores saved CAMs offline. The GT is ``data_sample['gt_sem_seg']['data']``
    (``[1, H, W]``).

    Args:
        threshold (float): The background score whose mIoU is reported as
            ``mIoU``. Defaults to 0.15 (``cam_eval_thres``).
        sweep (tuple[float], optional): ``(start, stop, step)`` of the
            threshold sweep, ``stop`` included; ``None`` scores ``threshold``
            only. ``threshold`` is always evaluated, in the sweep or not.
            Defaults to ``(0.05, 0.59, 0.01)`` (``--eval_cam_best``).
        cam_type (str): The CAM entry scored: ``'high_res'`` (full
            resolution, the official choice) or ``'cam'`` (stride 4,
            upsampled 4x bilinearly and cropped to the GT size as the
            official random-walk step does, see
            :func:`~qaclims_mm.evaluation.cam_labels.upsample_strided_cams`).
            Defaults to ``'high_res'``.
        ignore_index (int): GT label that is not scored. Defaults to 255.
        split (str, optional): Split name printed with the results. Defaults
            to ``dataset_meta['split']`` when set, else ``'unknown'``.
        cam_dir (str, optional): Read CAMs from this folder instead of the
            predictions. Defaults to None.
        collect_device (str): Device used to collect results across ranks,
            ``'cpu'`` or ``'gpu'``. Defaults to ``'cpu'``.
        prefix (str, optional): Prefix of the metric names. Defaults to None.

    Returned metrics (floats): ``mIoU`` (%, at ``threshold``), ``best_mIoU``
    (%), ``best_threshold`` (the global argmax over the evaluated thresholds;
    the official scan stops at the first decrease instead) and
    ``fg_false_act`` (%, the share of predicted-foreground pixels whose GT is
    background, at ``threshold``). The per-class table is logged.
    """

    def __init__(self,
                 threshold: float = DEFAULT_CAM_THRESHOLD,
                 sweep: Optional[Tuple[float, float, float]] = (0.05, 0.59,
                                                                0.01),
                 cam_type: str = 'high_res',
                 ignore_index: int = 255,
                 split: Optional[str] = None,
                 cam_dir: Optional[str] = None,
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        if cam_type not in CAM_TYPES:
            raise ValueError(f'cam_type must be one of {CAM_TYPES}, got '
                             f'{cam_type!r}')
        if cam_dir is not None and not osp.isdir(cam_dir):
            raise FileNotFoundError(f'cam_dir {cam_dir} is not a folder')
        self.threshold = check_threshold(threshold, 'threshold')
        self.sweep = None if sweep is None else tuple(sweep)
        if self.sweep is not None and len(self.sweep) != 3:
            raise ValueError(f'sweep must be (start, stop, step) or None, '
                             f'got {sweep}')
        if self.sweep is not None:
            check_threshold(self.sweep[0], 'sweep start')
            check_threshold(self.sweep[1], 'sweep stop')
        thresholds = [self.threshold]
        if self.sweep is not None:
            thresholds += default_thresholds(*self.sweep).tolist()
        # sorted, without near-duplicates of the reported threshold
        self.thresholds = np.unique(np.round(thresholds, 10))  # [T]
        self.cam_type = cam_type
        self.ignore_index = ignore_index
        self.split = split
        self.cam_dir = cam_dir

    @property
    def num_classes(self) -> int:
        """``N``: background plus the object classes of ``dataset_meta``."""
        if not self.dataset_meta or 'classes' not in self.dataset_meta:
            raise RuntimeError(
                'CAMIoUMetric needs dataset_meta["classes"] (background '
                'first); the runner sets it from the dataset metainfo')
        return len(self.dataset_meta['classes'])

    def _img_id(self, data_sample: dict) -> str:
        if data_sample.get('img_id') is not None:
            return str(data_sample['img_id'])
        if data_sample.get('img_path'):
            return osp.splitext(osp.basename(data_sample['img_path']))[0]
        raise KeyError('data sample has neither img_id nor img_path; the '
                       'CAM metric needs one to name the image')

    def _load_cams(self, data_sample: dict, img_id: str,
                   num_object_classes: int) -> Tuple[np.ndarray, np.ndarray]:
        """Return ``(keys [K], cams [K, H, W])`` of one image."""
        if self.cam_dir is not None:
            cam = load_cam(
                find_cam_file(self.cam_dir, img_id), num_object_classes,
                fields=(self.cam_type, ))
            return cam['keys'], cam[self.cam_type]
        if 'pred_cam' not in data_sample:
            raise KeyError(f'image {img_id!r}: no "pred_cam" in the '
                           f'predictions; set cam_dir to score saved CAM '
                           f'files instead')
        pred = data_sample['pred_cam']
        try:
            keys = _to_numpy(_get(pred, 'keys'))
            cams = _to_numpy(_get(pred, self.cam_type))
        except KeyError as e:
            raise KeyError(f'image {img_id!r}: pred_cam has no '
                           f'{e.args[0]!r} entry') from None
        return keys, cams

    def process(self, data_batch: dict, data_samples: Sequence[dict]) -> None:
        """Add the images' ``[T, N, N]`` confusion matrices to the running sum.

        Args:
            data_batch (dict): A batch from the dataloader (unused).
            data_samples (Sequence[dict]): The batch's outputs (dicts, or
                data elements).
        """
        num_object_classes = self.num_classes - 1
        for data_sample in data_samples:
            if hasattr(data_sample, 'to_dict'):
                data_sample = data_sample.to_dict()
            img_id = self._img_id(data_sample)
            keys, cams = self._load_cams(data_sample, img_id,
                                         num_object_classes)
            if 'gt_sem_seg' not in data_sample:
                # a split without masks (with_seg_map=False, e.g. train_aug):
                # the run only writes CAMs; compute_metrics reports it
                continue
            gt = _to_numpy(_get(data_sample['gt_sem_seg'], 'data'))
            try:
                if self.cam_type == 'cam':
                    cams = upsample_strided_cams(cams, gt.shape[-2:])
                conf = sweep_confusion(cams, keys, gt, self.thresholds,
                                       num_object_classes, self.ignore_index)
            except ValueError as e:
                raise ValueError(f'image {img_id!r}: {e}') from e
            if self.results:
                self.results[0] += conf
            else:
                self.results.append(conf)

    def compute_metrics(self, results: List[np.ndarray]) -> Dict[str, float]:
        """Sum the ranks' histograms and score them.

        Args:
            results (list[np.ndarray]): ``[T, N, N]`` histograms, one per rank
                (or more; they are summed).

        Returns:
            dict[str, float]: ``mIoU``, ``best_mIoU``, ``best_threshold`` and
            ``fg_false_act``.
        """
        logger: MMLogger = MMLogger.get_current_instance()
        class_names = list(self.dataset_meta['classes'])
        if not results:
            print_log('CAMIoUMetric: no image was scored: the split has no '
                      'ground-truth masks (with_seg_map=False); the CAMs '
                      'were only written', logger, level=logging.WARNING)
            nan = float('nan')
            return dict(mIoU=nan, best_mIoU=nan, best_threshold=nan,
                        fg_false_act=nan)
        total = np.sum(np.stack(results), axis=0)  # [T, N, N]
        if total.shape[1] != len(class_names):
            raise ValueError(f'histograms have {total.shape[1]} classes, '
                             f'dataset_meta has {len(class_names)}')
        if str(class_names[0]).lower() not in ('background', 'bg'):
            print_log(f'CAMIoUMetric: dataset_meta classes start with '
                      f'{class_names[0]!r}, expected background first',
                      logger, level=logging.WARNING)
        split = self.split or (self.dataset_meta or {}).get(
            'split') or 'unknown'
        summary = sweep_summary(total, self.thresholds, self.threshold)
        print_log('per class results:', logger)
        print_log(
            '\n' + format_sweep_report(total, self.thresholds, self.threshold,
                                       class_names, split, self.cam_type),
            logger=logger)
        return cam_metrics_from_summary(summary)
