"""Dataset-level mIoU of pseudo-mask PNGs (spec §6.6, ``eval_sem_seg.py``).

The official rule: label 255 (ignore) in a pseudo mask counts as background
(0); the confusion matrix is restricted to the ``N`` classes (background
included), so GT 255 and any other label ``>= N`` are not scored; IoU, mIoU
(nanmean) and the false-positive / false-negative rates
(``(Pred - TP) / U`` and ``(GT - TP) / U``) are reported.

:class:`PseudoMaskMetric` scores ``<pseudo_dir>/<img_id>.png`` against the
GT of a test run's data samples; :func:`evaluate_pseudo_masks` (used by
``tools/eval_pseudo_masks.py``) scores them against GT PNGs offline. Both
give the same numbers.
"""
import logging
import os.path as osp
from collections.abc import Mapping
from typing import Dict, List, Optional, Sequence, Union

import numpy as np
from mmengine.evaluator import BaseMetric
from mmengine.logging import MMLogger, print_log
from mmseg.registry import METRICS

from ...utils.label_io import read_label_png
from ..confusion import confusion_to_scores
from ..offline import sum_over_gt_images

Settings = Union[None, str, Mapping]


def _to_numpy(value) -> np.ndarray:
    if hasattr(value, 'detach'):
        value = value.detach().cpu().numpy()
    return np.asarray(value)


def _nanmean(values: np.ndarray) -> float:
    """``np.nanmean`` that gives nan without a warning for all-nan input."""
    values = np.asarray(values, dtype=np.float64)
    valid = ~np.isnan(values)
    return float(values[valid].mean()) if valid.any() else float('nan')


def pseudo_mask_confusion(pred: np.ndarray,
                          gt: np.ndarray,
                          num_classes: int,
                          ignore_index: int = 255) -> np.ndarray:
    """Confusion matrix of one pseudo mask by the official rule.

    Args:
        pred (np.ndarray): ``[H, W]`` pseudo labels; ``ignore_index`` counts
            as background (0).
        gt (np.ndarray): ``[H, W]`` GT labels (``[1, H, W]`` accepted).
        num_classes (int): ``N``, background included; pixels whose GT or
            prediction is ``>= N`` (or GT ``ignore_index``) are not counted.
        ignore_index (int): The ignore label. Defaults to 255.

    Returns:
        np.ndarray: ``[N, N]`` int64, rows = GT, columns = prediction.

    Raises:
        ValueError: when the shapes differ (both are named).
    """
    gt = np.asarray(gt)
    if gt.ndim == 3 and gt.shape[0] == 1:
        gt = gt[0]
    pred = np.asarray(pred)
    if pred.shape != gt.shape:
        raise ValueError(f'pseudo mask shape {tuple(pred.shape)} != GT shape '
                         f'{tuple(gt.shape)}')
    gt = gt.astype(np.int64).reshape(-1)
    pred = pred.astype(np.int64).reshape(-1)
    pred = np.where(pred == ignore_index, 0, pred)
    valid = (gt >= 0) & (gt < num_classes) & (pred >= 0) & (
        pred < num_classes)
    return np.bincount(
        num_classes * gt[valid] + pred[valid],
        minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def _load_pseudo_mask(pseudo_dir: str, img_id: str, suffix: str) -> np.ndarray:
    path = osp.join(pseudo_dir, img_id + suffix)
    if not osp.isfile(path):
        raise FileNotFoundError(f'no pseudo mask for image {img_id!r}: {path}')
    return read_label_png(path)


def settings_text(settings: Settings) -> str:
    """``'k=v k=v'`` for a dict, the string itself, ``''`` for None."""
    if settings is None:
        return ''
    if isinstance(settings, Mapping):
        return ' '.join(f'{k}={v}' for k, v in settings.items())
    return str(settings)


def format_pseudo_mask_report(conf: np.ndarray,
                              class_names: Sequence[str],
                              settings: Settings = None,
                              split: str = 'unknown',
                              num_images: Optional[int] = None) -> str:
    """A header stating the settings, the summary and a per-class table.

    Args:
        conf (np.ndarray): ``[N, N]`` dataset confusion matrix.
        class_names (Sequence[str]): ``N`` names, background first.
        settings (str | dict, optional): How the masks were made, e.g.
            ``'random walk beta=10 exp=8 bg=0.20'``. Defaults to None.
        split (str): Split name. Defaults to ``'unknown'``.
        num_images (int, optional): Images scored. Defaults to None.

    Returns:
        str: The report (several lines).
    """
    from prettytable import PrettyTable
    if len(class_names) != conf.shape[-1]:
        raise ValueError(f'{len(class_names)} class names for a '
                         f'{conf.shape[-1]}-class confusion matrix')
    scores = confusion_to_scores(conf)
    table = PrettyTable()
    table.add_column('Class', list(class_names))
    for name, key in (('IoU', 'IoU'), ('FP rate', 'fp_rate'),
                      ('FN rate', 'fn_rate')):
        table.add_column(name, [f'{v * 100:.2f}' for v in scores[key]])
    text = settings_text(settings)
    count = '' if num_images is None else f', {num_images} images'
    fg = slice(1, None)
    lines = [
        f'Pseudo-mask evaluation ({text or "settings not given"}) on split '
        f'{split!r}{count}:',
        f'  mIoU {scores["mIoU"] * 100:.2f}; background FP/FN rate '
        f'{scores["fp_rate"][0] * 100:.2f}/{scores["fn_rate"][0] * 100:.2f}; '
        f'foreground mean FP/FN rate '
        f'{_nanmean(scores["fp_rate"][fg]) * 100:.2f}/'
        f'{_nanmean(scores["fn_rate"][fg]) * 100:.2f}',
        table.get_string(),
    ]
    return '\n'.join(lines)


def summarize_pseudo_masks(conf: np.ndarray) -> Dict[str, float]:
    """The returned metrics (%, 2 decimals) of a confusion matrix."""
    scores = confusion_to_scores(conf)

    def pct(value) -> float:
        return float(np.round(float(value) * 100, 2))

    fg_fp = _nanmean(scores['fp_rate'][1:])
    fg_fn = _nanmean(scores['fn_rate'][1:])
    return dict(
        mIoU=pct(scores['mIoU']),
        bg_fp_rate=pct(scores['fp_rate'][0]),
        bg_fn_rate=pct(scores['fn_rate'][0]),
        fg_fp_rate=pct(fg_fp),
        fg_fn_rate=pct(fg_fn))


def evaluate_pseudo_masks(pseudo_dir: str,
                          gt_dir: str,
                          img_ids: Sequence[str],
                          num_classes: int = 20,
                          ignore_index: int = 255,
                          suffix: str = '.png',
                          gt_suffix: str = '.png',
                          progress: bool = False) -> np.ndarray:
    """Score pseudo-mask PNGs against GT PNGs (the offline path).

    Args:
        pseudo_dir (str): Folder of ``<id><suffix>`` pseudo masks.
        gt_dir (str): Folder of GT labels (``SegmentationClass``).
        img_ids (Sequence[str]): The image ids to score.
        num_classes (int): Object classes (no background). Defaults to 20.
        ignore_index (int): Ignore label. Defaults to 255.
        suffix (str): Pseudo-mask suffix. Defaults to ``'.png'``.
        gt_suffix (str): GT suffix. Defaults to ``'.png'``.
        progress (bool): Show a progress bar. Defaults to False.

    Returns:
        np.ndarray: ``[N, N]`` int64 dataset confusion, ``N = C + 1``.

    Raises:
        FileNotFoundError, ValueError: naming the image id.
    """
    n = num_classes + 1

    def score(img_id: str, gt: np.ndarray) -> np.ndarray:
        pred = _load_pseudo_mask(pseudo_dir, img_id, suffix)
        return pseudo_mask_confusion(pred, gt, n, ignore_index)

    total = sum_over_gt_images(img_ids, gt_dir, score, gt_suffix, progress)
    return np.zeros((n, n), dtype=np.int64) if total is None else total


@METRICS.register_module()
class PseudoMaskMetric(BaseMetric):
    """mIoU of pseudo-mask PNGs against the GT of the evaluated dataset.

    For every data sample, ``<pseudo_dir>/<img_id>.png`` is read and compared
    with ``data_sample['gt_sem_seg']['data']`` by the official rule (see the
    module docstring; :func:`pseudo_mask_confusion`). Each rank keeps one
    summed ``[N, N]`` confusion matrix; :meth:`compute_metrics` sums the
    ranks' matrices, so the scores are dataset-level and distributed-safe.
    The model's predictions are not used: run it in the test loop of any
    model on a dataset with masks (e.g. VOC train, 1,464 images), or use
    ``tools/eval_pseudo_masks.py`` offline. The masks must exist before the
    run (a :class:`CAMToPseudoLabelHook` in the same run writes them after
    the metric has read them).

    Args:
        pseudo_dir (str): Folder of the pseudo masks.
        settings (str | dict, optional): The refinement settings stated in
            the table header, e.g. ``'random walk beta=10 exp=8 bg=0.20'`` or
            ``dict(beta=10, exp_times=8, sem_seg_bg_thres=0.2)``. Defaults to
            None.
        ignore_index (int): Ignore label of GT and pseudo masks (255 in a
            pseudo mask counts as background). Defaults to 255.
        suffix (str): Pseudo-mask file suffix. Defaults to ``'.png'``.
        split (str, optional): Split name printed with the results. Defaults
            to ``dataset_meta['split']`` when set, else ``'unknown'``.
        collect_device (str): ``'cpu'`` or ``'gpu'``. Defaults to ``'cpu'``.
        prefix (str, optional): Prefix of the metric names. Defaults to None.

    Returned metrics (%): ``mIoU``, ``bg_fp_rate``, ``bg_fn_rate``,
    ``fg_fp_rate`` and ``fg_fn_rate`` (means over the object classes), as the
    official script prints them. The per-class table is logged.
    """

    def __init__(self,
                 pseudo_dir: str,
                 settings: Settings = None,
                 ignore_index: int = 255,
                 suffix: str = '.png',
                 split: Optional[str] = None,
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        if not osp.isdir(pseudo_dir):
            raise FileNotFoundError(f'pseudo_dir {pseudo_dir} is not a '
                                    f'folder')
        self.pseudo_dir = pseudo_dir
        self.settings = settings
        self.ignore_index = ignore_index
        self.suffix = suffix
        self.split = split

    @property
    def num_classes(self) -> int:
        """``N``: background plus the object classes of ``dataset_meta``."""
        if not self.dataset_meta or 'classes' not in self.dataset_meta:
            raise RuntimeError(
                'PseudoMaskMetric needs dataset_meta["classes"] (background '
                'first); the runner sets it from the dataset metainfo')
        return len(self.dataset_meta['classes'])

    @staticmethod
    def _img_id(data_sample: dict) -> str:
        if data_sample.get('img_id') is not None:
            return str(data_sample['img_id'])
        if data_sample.get('img_path'):
            return osp.splitext(osp.basename(data_sample['img_path']))[0]
        raise KeyError('data sample has neither img_id nor img_path; the '
                       'pseudo-mask metric needs one to find the mask')

    def process(self, data_batch: dict, data_samples: Sequence[dict]) -> None:
        """Add the images' confusion matrices to this rank's running sum.

        Args:
            data_batch (dict): A batch from the dataloader (unused).
            data_samples (Sequence[dict]): The batch's outputs (dicts, or
                data elements) with ``gt_sem_seg``.
        """
        n = self.num_classes
        for data_sample in data_samples:
            if hasattr(data_sample, 'to_dict'):
                data_sample = data_sample.to_dict()
            img_id = self._img_id(data_sample)
            if 'gt_sem_seg' not in data_sample:
                raise KeyError(f'image {img_id!r}: no gt_sem_seg in the data '
                               f'sample; PseudoMaskMetric needs a split with '
                               f'masks (with_seg_map=True)')
            gt = data_sample['gt_sem_seg']
            gt = _to_numpy(gt['data'] if isinstance(gt, Mapping) else gt.data)
            pred = _load_pseudo_mask(self.pseudo_dir, img_id, self.suffix)
            try:
                conf = pseudo_mask_confusion(pred, gt, n, self.ignore_index)
            except ValueError as e:
                raise ValueError(f'image {img_id!r}: {e}') from e
            if self.results:
                self.results[0]['conf'] += conf
                self.results[0]['num_images'] += 1
            else:
                self.results.append(dict(conf=conf, num_images=1))

    def compute_metrics(self, results: List[dict]) -> Dict[str, float]:
        """Sum the ranks' confusion matrices and score them.

        Args:
            results (list[dict]): ``conf`` ``[N, N]`` and ``num_images``, one
                entry per rank (or more; they are summed).

        Returns:
            dict[str, float]: ``mIoU`` and the fp/fn rates, in %.
        """
        logger: MMLogger = MMLogger.get_current_instance()
        class_names = list(self.dataset_meta['classes'])
        n = len(class_names)
        if not results:
            print_log('PseudoMaskMetric: no image was scored', logger,
                      level=logging.WARNING)
            total = np.zeros((n, n), dtype=np.int64)
            num_images = 0
        else:
            total = np.sum([r['conf'] for r in results], axis=0)
            num_images = int(sum(r['num_images'] for r in results))
        split = self.split or (self.dataset_meta or {}).get(
            'split') or 'unknown'
        print_log(
            '\n' + format_pseudo_mask_report(total, class_names,
                                             self.settings, split,
                                             num_images), logger=logger)
        return summarize_pseudo_masks(total)
