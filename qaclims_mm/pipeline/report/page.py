"""``report.md``: the page a person reads to judge a pipeline run.

The runner calls :func:`finish_report` once every selected stage is done. The
page holds the stage table, the comparison of the CAM variants, the
threshold-sweep plot and the image grid (PNGs under
``<work_dir>/report-files/``, linked relatively). See ``docs/report.md``.
"""
import datetime
import os.path as osp
import re
from typing import Dict, List, Optional, Sequence

from mmengine.dist import is_main_process
from mmengine.logging import print_log

from ...datasets.class_names import VOC_CLASSES
from ...utils.io import atomic_write_text
from .grid import COLUMN_KINDS, draw_grid, grid_ids
from .plots import plot_sweeps, sweep_curves
from .summary import read_summary
from .tables import (VARIANT_STAGE_TYPES, Table, change_table,
                     comparison_table, report_variants, stage_table)

REPORT_FILE = 'report.md'
#: Folder of the report's pictures (a name no stage can have: stage names
#: are ``[a-z0-9_]+``).
FILES_DIR = 'report-files'
SWEEP_PNG = 'threshold_sweep.png'
GRID_PNG = 'image_grid.png'
REPORT_KEYS = ('variants', 'baseline', 'context_classes', 'num_images',
               'ids', 'split_file', 'columns', 'tile_size', 'classes')


def validate_report_cfg(report_cfg: Optional[dict],
                        stage_types: Dict[str, str]) -> List[str]:
    """Every problem of a config's ``report`` block (empty list: fine).

    The runner may call it with the graph validation, before any stage runs;
    :func:`finish_report` writes the problems at the top of the page and
    draws what it can.

    Args:
        report_cfg (dict, optional): The config's ``report``.
        stage_types (dict): ``stage name -> stage type`` of the pipeline.

    Returns:
        list[str]: One message per problem, naming the ``report`` key.
    """
    report_cfg = report_cfg or {}
    problems = [
        f'report.{k} is not a report setting (known: {", ".join(REPORT_KEYS)})'
        for k in report_cfg if k not in REPORT_KEYS
    ]
    for i, variant in enumerate(report_cfg.get('variants') or []):
        if not isinstance(variant, dict) or 'name' not in variant:
            problems.append(f'report.variants[{i}] must be a dict with a '
                            f'name, got {variant!r}')
            continue
        for key, value in variant.items():
            if key == 'name':
                continue
            if key not in VARIANT_STAGE_TYPES:
                problems.append(
                    f'report.variants[{i}] ({variant["name"]}): unknown key '
                    f'{key!r} (known: {", ".join(VARIANT_STAGE_TYPES)})')
            elif value not in stage_types:
                problems.append(
                    f'report.variants[{i}] ({variant["name"]}): {key}='
                    f'{value!r} is not a stage of the pipeline')
            elif stage_types[value] != VARIANT_STAGE_TYPES[key]:
                problems.append(
                    f'report.variants[{i}] ({variant["name"]}): {key}='
                    f'{value!r} is a {stage_types[value]}, not a '
                    f'{VARIANT_STAGE_TYPES[key]}')
    names = [v.get('name') for v in report_cfg.get('variants') or []
             if isinstance(v, dict)]
    if report_cfg.get('baseline') and names and (report_cfg['baseline']
                                                 not in names):
        problems.append(f'report.baseline={report_cfg["baseline"]!r} is not '
                        f'one of the variants {names}')
    for name, column in (report_cfg.get('columns') or {}).items():
        if not isinstance(column, dict) or column.get(
                'kind') not in COLUMN_KINDS or not column.get('path'):
            problems.append(
                f'report.columns.{name} must be dict(kind=one of '
                f'{COLUMN_KINDS}, path=folder), got {column!r}')
    return problems


def resolve_report_path(path: str, work_dir: str, files=None) -> str:
    """An absolute path: ``{name}`` -> ``files[name].path`` (if the runner
    left any), relative -> relative to ``work_dir``."""

    def sub(match: 're.Match') -> str:
        entry = (files or {}).get(match.group(1))
        if isinstance(entry, dict) and entry.get('path'):
            return osp.abspath(entry['path'])
        return match.group(0)

    path = re.sub(r'\{([A-Za-z0-9_]+)\}', sub, str(path))
    return path if osp.isabs(path) else osp.abspath(osp.join(work_dir, path))


def _resolved_cfg(report_cfg: dict, work_dir: str, files) -> dict:
    out = dict(report_cfg)
    if out.get('split_file'):
        out['split_file'] = resolve_report_path(out['split_file'], work_dir,
                                                files)
    out['columns'] = {
        name: dict(column,
                   path=resolve_report_path(column['path'], work_dir, files))
        for name, column in (report_cfg.get('columns') or {}).items()
        if isinstance(column, dict) and column.get('path')
    }
    return out


def _older_records(work_dir: str, records: Sequence[dict]) -> List[dict]:
    """The records of ``summary.json`` for the stages not in this run (a
    variant may name a stage outside ``run_stages``)."""
    names = {r.get('stage') for r in records}
    return [
        r for r in read_summary(work_dir)['stages']
        if r.get('stage') not in names
    ]


def _section(title: str, table: Optional[Table]) -> List[str]:
    return [f'## {title}', '', table.to_markdown(), ''] if table else []


def _sweep_section(work_dir: str, records: Sequence[dict],
                   labels: Dict[str, str]) -> List[str]:
    curves = sweep_curves(records, labels)
    lines = ['## Threshold sweep', '']
    if not curves:
        return lines + ['No EvalCAMs stage recorded a sweep.', '']
    plot_sweeps(curves, osp.join(work_dir, FILES_DIR, SWEEP_PNG))
    return lines + [
        'CAM mIoU against the background threshold, one curve per CAM '
        'variant; dashed: the evaluation threshold, o: the best threshold.',
        '', f'![threshold sweep]({FILES_DIR}/{SWEEP_PNG})', ''
    ]


def _grid_section(work_dir: str, report_cfg: dict) -> List[str]:
    columns = report_cfg.get('columns') or {}
    lines = ['## Images', '']
    if not columns:
        return lines + ['No `report.columns` configured.', '']
    try:
        ids = grid_ids(report_cfg, columns)
    except (OSError, ValueError) as e:
        return lines + [f'No image ids: {e}', '']
    if not ids:
        return lines + ['No image ids found for the grid.', '']
    draw_grid(columns, ids, osp.join(work_dir, FILES_DIR, GRID_PNG),
              class_names=report_cfg.get('classes') or VOC_CLASSES,
              tile=int(report_cfg.get('tile_size', 160)))
    legend = ', '.join(f'{name} ({c["kind"]}: `{c["path"]}`)'
                       for name, c in columns.items())
    return lines + [
        f'Rows: {len(ids)} images ({", ".join(ids)}). Columns: {legend}. '
        'CAMs: maximum over the image\'s classes (jet colours); labels: '
        'PASCAL colours, ignore (255) light grey; "missing": no file.', '',
        f'![image grid]({FILES_DIR}/{GRID_PNG})', ''
    ]


def finish_report(work_dir: str, cfg, records: List[dict]) -> str:
    """Write ``<work_dir>/report.md`` and return the terminal table.

    On a rank other than 0 nothing is written (the text is still returned).

    Args:
        work_dir (str): The pipeline work dir.
        cfg (Config | dict): The pipeline config; its ``report`` block
            (``variants``, ``baseline``, ``context_classes``, ``num_images``,
            ``ids``, ``split_file``, ``columns``, ``tile_size``,
            ``classes``; see ``docs/report.md``) and ``files`` are read.
        records (list[dict]): This run's stage records, in pipeline order
            (as given to :func:`~.summary.record_stage`).

    Returns:
        str: The stage table, the CAM-variant table and the changes against
        the baseline variant, as fixed-width text.
    """
    report_cfg = dict(cfg.get('report') or {})
    older = _older_records(work_dir, records)
    problems = validate_report_cfg(
        report_cfg,
        {r.get('stage'): r.get('type')
         for r in older + list(records)})
    report_cfg = _resolved_cfg(report_cfg, work_dir, cfg.get('files'))
    stages = stage_table(records)
    comparison = comparison_table(records, report_cfg, older)
    change = change_table(records, report_cfg, older)
    text = ['Stages', stages.to_text()]
    if comparison is not None:
        text += ['CAM variants (%)', comparison.to_text()]
    if change is not None:
        text.append(change.to_text())
    text.append(f'Report: {osp.join(osp.abspath(work_dir), REPORT_FILE)}')
    if not is_main_process():
        return '\n'.join(text)
    for problem in problems:
        print_log(problem, logger='current', level=30)
    labels = {
        v.cams: v.name
        for v in report_variants(report_cfg, records) if v.cams
    }
    swept = list(records) + [r for r in older if r.get('stage') in labels]
    name = osp.basename(getattr(cfg, 'filename', None) or '') or osp.basename(
        osp.abspath(work_dir))
    now = datetime.datetime.now().astimezone().isoformat(timespec='seconds')
    lines = [f'# Pipeline report: {name}', '',
             f'Work dir `{osp.abspath(work_dir)}`, written {now}.', '']
    if problems:
        lines += ['**Report config problems:**', '']
        lines += [f'- {p}' for p in problems] + ['']
    lines += _section('Stages', stages)
    if comparison is not None:
        lines += _section('CAM variants', comparison)
        lines += [
            'mIoU, best mIoU, FA (foreground false activation: share of '
            'the pixels predicted as an object whose ground truth is '
            'background, at the evaluation threshold; lower is better) and '
            'val mIoU in %; FA <class>: the same among the pixels predicted '
            'as that class. '
            'Bold: best of the column.', ''
        ]
    if change is not None:
        lines += [change.to_markdown(), '']
    lines += _sweep_section(work_dir, swept, labels)
    lines += _grid_section(work_dir, report_cfg)
    atomic_write_text(osp.join(work_dir, REPORT_FILE), '\n'.join(lines))
    return '\n'.join(text)
