"""``summary.json`` and the scalars sent to MMEngine's visualizer.

After every stage the runner calls :func:`record_stage`: the stage's record
replaces its old one in ``<work_dir>/summary.json`` (rewritten atomically)
and its scalar metrics go to the pipeline's :class:`~mmengine.visualization.
Visualizer`, whose backends (``vis_backends`` of the pipeline config: Local
by default; Tensorboard, Wandb by adding them) store them.
"""
import copy
import datetime
import json
import math
import os.path as osp
from typing import Any, Dict, List, Optional

from mmengine.dist import is_main_process
from mmengine.logging import print_log
from mmengine.visualization import Visualizer

from ...utils.io import atomic_write_text

#: ``summary.json`` of the pipeline work dir.
SUMMARY_FILE = 'summary.json'
#: Values of a record's ``status``.
STATUSES = ('ran', 'resumed', 'skipped')
#: Keys every record must hold.
RECORD_KEYS = ('stage', 'type', 'status', 'wall_time_s', 'metrics')

#: ``abs work dir -> Visualizer`` built by :func:`build_pipeline_visualizer`.
_PIPELINE_VISUALIZERS: Dict[str, Visualizer] = {}


def summary_path(work_dir: str) -> str:
    """``<work_dir>/summary.json``."""
    return osp.join(work_dir, SUMMARY_FILE)


def to_jsonable(value: Any) -> Any:
    """``value`` with numpy scalars/arrays as Python values, non-finite
    floats as None (strict JSON), tuples as lists."""
    if hasattr(value, 'tolist') and not isinstance(value, (str, bytes)):
        value = value.tolist()  # numpy scalar or array
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def check_record(record: dict) -> dict:
    """A copy of a stage record, checked and made JSON-able.

    Args:
        record (dict): ``stage``, ``type``, ``status`` (one of
            :data:`STATUSES`), ``wall_time_s`` and ``metrics`` (dict);
            optional ``index`` (the stage's position in the pipeline) and
            ``headline`` (the metrics for the stage table).

    Raises:
        ValueError: naming the stage and the bad or missing key.
    """
    if not isinstance(record, dict):
        raise ValueError(f'a stage record must be a dict, got {record!r}')
    name = record.get('stage', '?')
    missing = [k for k in RECORD_KEYS if k not in record]
    if missing:
        raise ValueError(f'record of stage {name!r} lacks {missing}')
    if record['status'] not in STATUSES:
        raise ValueError(f'record of stage {name!r}: status '
                         f'{record["status"]!r} is not one of {STATUSES}')
    if not isinstance(record['metrics'] or {}, dict):
        raise ValueError(f'record of stage {name!r}: metrics must be a dict')
    out = to_jsonable(dict(record))
    out['metrics'] = out['metrics'] or {}
    out['wall_time_s'] = (float(out['wall_time_s'])
                          if out['wall_time_s'] is not None else None)
    return out


def read_summary(work_dir: str) -> Dict[str, Any]:
    """The ``summary.json`` of ``work_dir`` (empty when absent/unreadable)."""
    path = summary_path(work_dir)
    if not osp.isfile(path):
        return dict(stages=[])
    try:
        with open(path, encoding='utf-8') as f:
            summary = json.load(f)
        if not isinstance(summary.get('stages'), list):
            raise ValueError('no "stages" list')
    except (OSError, ValueError, AttributeError) as e:
        print_log(f'{path} is unreadable ({e}); starting a new summary',
                  logger='current', level=30)
        return dict(stages=[])
    return summary


def update_records(records: List[dict], record: dict) -> List[dict]:
    """``records`` with ``record`` in place of its stage's old record.

    A stage seen for the first time is appended; when every record carries an
    ``index``, the list is kept in that (pipeline) order.
    """
    out = [r for r in records if r.get('stage') != record['stage']]
    position = next((i for i, r in enumerate(records)
                     if r.get('stage') == record['stage']), len(out))
    out.insert(position, record)
    if all(isinstance(r.get('index'), int) for r in out):
        out.sort(key=lambda r: r['index'])
    return out


def record_stage(work_dir: str, record: dict) -> None:
    """Record a finished (or skipped) stage.

    Rewrites ``<work_dir>/summary.json`` atomically as
    ``{"stages": [records in pipeline order], "updated": ISO time}`` (a
    stage that ran before has its record replaced) and logs the record's
    scalar metrics (plus ``wall_time_s``) to the pipeline visualizer as
    ``<stage>/<metric>`` at ``step`` = the stage index (nested dicts of
    scalars as ``<stage>/<metric>/<key>``). Non-finite values are written as
    ``null`` and not logged. Does nothing on a rank other than 0.

    Args:
        work_dir (str): The pipeline work dir.
        record (dict): See :func:`check_record`.
    """
    record = check_record(record)
    if not is_main_process():
        return
    summary = read_summary(work_dir)
    records = update_records(summary['stages'], record)
    summary = dict(stages=records,
                   updated=datetime.datetime.now().astimezone().isoformat(
                       timespec='seconds'))
    atomic_write_text(summary_path(work_dir),
                      json.dumps(summary, indent=2) + '\n')
    step = record.get('index')
    if not isinstance(step, int):
        step = [r['stage'] for r in records].index(record['stage'])
    log_scalars(work_dir, record, step)


def scalar_metrics(record: dict) -> Dict[str, float]:
    """``<stage>/<metric>`` -> value of a record's finite numeric metrics."""
    out: Dict[str, float] = {}

    def add(prefix: str, value: Any) -> None:
        if isinstance(value, dict):
            for key, sub in value.items():
                add(f'{prefix}/{key}', sub)
        elif (isinstance(value, (int, float)) and not isinstance(value, bool)
              and math.isfinite(value)):
            out[prefix] = value

    add(record['stage'], record.get('metrics') or {})
    if isinstance(record.get('wall_time_s'), (int, float)):
        out[f'{record["stage"]}/wall_time_s'] = record['wall_time_s']
    return out


def pipeline_visualizer(work_dir: str) -> Optional[Visualizer]:
    """The visualizer that :func:`record_stage` logs to.

    The one :func:`build_pipeline_visualizer` built for ``work_dir``, else
    MMEngine's current :class:`Visualizer` instance, else None.
    """
    vis = _PIPELINE_VISUALIZERS.get(osp.abspath(work_dir))
    if vis is not None:
        return vis
    if Visualizer._instance_dict:  # get_current_instance raises otherwise
        return Visualizer.get_current_instance()
    return None


def log_scalars(work_dir: str, record: dict, step: int) -> None:
    """Send :func:`scalar_metrics` of ``record`` to the pipeline visualizer."""
    vis = pipeline_visualizer(work_dir)
    scalars = scalar_metrics(record)
    if vis is not None and scalars:
        vis.add_scalars(scalars, step=step)


def build_pipeline_visualizer(cfg, work_dir: str) -> Visualizer:
    """The visualizer of a pipeline run, saving under ``<work_dir>/vis_data``.

    Its backends are the config's top-level ``vis_backends`` (so that a
    pipeline config that sets ``vis_backends = [dict(type='LocalVisBackend'),
    dict(type='TensorboardVisBackend')]`` after its ``_base_`` gets both),
    else ``cfg.visualizer.vis_backends``, else a ``LocalVisBackend``.
    :func:`record_stage` logs to it. Call it on every rank (the backends write
    on rank 0 only).

    Args:
        cfg (Config | dict): The pipeline config.
        work_dir (str): The pipeline work dir.

    Returns:
        Visualizer: A new instance (named after the work dir).
    """
    vis_backends = cfg.get('vis_backends')
    if not vis_backends:
        vis_backends = (cfg.get('visualizer') or {}).get('vis_backends')
    if not vis_backends:
        vis_backends = [dict(type='LocalVisBackend')]
    if isinstance(vis_backends, dict):
        vis_backends = [vis_backends]
    work_dir = osp.abspath(work_dir)
    name = f'wsss_pipeline:{work_dir}:{len(Visualizer._instance_dict)}'
    while Visualizer.check_instance_created(name):
        name += '+'
    vis = Visualizer.get_instance(
        name,
        vis_backends=[copy.deepcopy(dict(b)) for b in vis_backends],
        save_dir=work_dir)
    _PIPELINE_VISUALIZERS[work_dir] = vis
    return vis
