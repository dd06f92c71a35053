"""The threshold-sweep plot of the CAM variants (matplotlib, Agg backend)."""
import io
from typing import List, Optional, Sequence, Tuple

from ...utils.io import atomic_write_bytes
from .tables import DEFAULT_CAM_THRESHOLD, is_number

#: One curve: ``(label, thresholds, mIoU, eval threshold, best threshold,
#: best mIoU)``.
Curve = Tuple[str, List[float], List[float], float, Optional[float],
              Optional[float]]


def sweep_curves(records: Sequence[dict],
                 labels: Optional[dict] = None) -> List[Curve]:
    """The sweep of every EvalCAMsStage record that holds one.

    Args:
        records (Sequence[dict]): Stage records.
        labels (dict, optional): ``stage name -> curve label`` (e.g. the
            variant names); defaults to the stage names.
    """
    curves = []
    for record in records:
        if record.get('type') != 'EvalCAMsStage':
            continue
        m = record.get('metrics') or {}
        sweep = m.get('sweep') or {}
        thr, miou = sweep.get('thresholds') or [], sweep.get('mIoU') or []
        points = [(t, v) for t, v in zip(thr, miou)
                  if is_number(t) and is_number(v)]
        if not points or len(thr) != len(miou):
            continue
        label = (labels or {}).get(record['stage'], record['stage'])
        best_t, best_v = m.get('best_threshold'), m.get('best_mIoU')
        if not (is_number(best_t) and is_number(best_v)):
            best_t, best_v = max(points, key=lambda p: p[1])
        curves.append((label, [p[0] for p in points], [p[1] for p in points],
                       m.get('threshold', DEFAULT_CAM_THRESHOLD), best_t,
                       best_v))
    return curves


def plot_sweeps(curves: Sequence[Curve],
                path: str,
                size: Tuple[float, float] = (6.4, 4.0),
                dpi: int = 100) -> None:
    """Draw mIoU against the background threshold, one curve per variant.

    A dashed vertical line marks each evaluation threshold (0.15), a filled
    marker with its value each curve's best threshold. Written atomically.

    Args:
        curves (Sequence[Curve]): From :func:`sweep_curves`.
        path (str): The PNG to write.
        size (tuple[float]): Figure size in inches. Defaults to (6.4, 4.0).
        dpi (int): Dots per inch. Defaults to 100.
    """
    from matplotlib.figure import Figure  # no pyplot: no global state, Agg

    fig = Figure(figsize=size, dpi=dpi)
    ax = fig.add_subplot(1, 1, 1)
    for thr in sorted({c[3] for c in curves if is_number(c[3])}):
        ax.axvline(thr, color='grey', linestyle='--', linewidth=1,
                   label=f'eval threshold {thr:g}')
    for label, xs, ys, _, best_t, best_v in curves:
        (line, ) = ax.plot(xs, ys, marker='.', markersize=3, label=label)
        ax.plot([best_t], [best_v], marker='o', markersize=7,
                color=line.get_color())
        ax.annotate(f'{best_v:.2f}@{best_t:g}', (best_t, best_v),
                    textcoords='offset points', xytext=(4, 6), fontsize=8,
                    color=line.get_color())
    ax.set_xlabel('background threshold')
    ax.set_ylabel('CAM mIoU')
    ax.set_title('CAM mIoU vs background threshold (o: best)')
    ax.margins(y=0.12)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc='best')
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format='png', backend='agg')
    atomic_write_bytes(path, buf.getvalue())
