"""The pipeline's report: ``summary.json``, visualizer scalars, ``report.md``.

The runner calls :func:`build_pipeline_visualizer` once, :func:`record_stage`
after every stage and :func:`finish_report` at the end (see
``docs/report.md``).
"""
from .grid import draw_grid
from .page import finish_report, validate_report_cfg
from .plots import plot_sweeps, sweep_curves
from .summary import build_pipeline_visualizer, read_summary, record_stage
from .tables import (CONTEXT_CLASSES, Table, comparison_table, stage_table)

__all__ = [
    'record_stage', 'finish_report', 'build_pipeline_visualizer',
    'validate_report_cfg', 'read_summary', 'stage_table', 'comparison_table',
    'Table', 'CONTEXT_CLASSES', 'draw_grid', 'plot_sweeps', 'sweep_curves'
]
