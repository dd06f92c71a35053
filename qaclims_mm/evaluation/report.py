"""Text reports of CAM threshold sweeps."""
from typing import Sequence

import numpy as np

from .cam_sweep import ArrayLike, _check_thresholds, sweep_summary


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
