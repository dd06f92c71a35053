"""A minimal stand-in for :mod:`qaclims_mm.pipeline.report`.

Used by the runner only while the report module is absent: it keeps
``<work_dir>/summary.json`` and returns a plain table.
"""
import json
import os.path as osp
from typing import Any, List

from qaclims_mm.utils.io import atomic_write_text


def record_stage(work_dir: str, record: dict) -> None:
    """Put ``record`` into ``<work_dir>/summary.json`` (atomically)."""
    path = osp.join(work_dir, 'summary.json')
    stages = []
    if osp.isfile(path):
        with open(path, encoding='utf-8') as f:
            stages = json.load(f).get('stages', [])
    stages = [s for s in stages if s.get('stage') != record['stage']]
    stages.append(record)
    atomic_write_text(path, json.dumps(dict(stages=stages), indent=2,
                                       default=str) + '\n')


def finish_report(work_dir: str, cfg: Any, records: List[dict]) -> str:
    """The summary table of ``records`` (plain text)."""
    lines = ['stage | type | status | wall time (s) | metrics']
    for r in records:
        metrics = ', '.join(f'{k}={v}' for k, v in r['metrics'].items()
                            if isinstance(v, (int, float, str)))
        lines.append(f"{r['stage']} | {r['type']} | {r['status']} | "
                     f"{r['wall_time_s']:.1f} | {metrics}")
    return '\n'.join(lines)
