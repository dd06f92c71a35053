"""The stage table and the CAM-variant comparison table.

Both are :class:`Table` objects rendered twice: as Markdown for
``report.md`` and as fixed-width text for the terminal (no dependency).

Metric values are shown as the stages report them: mIoU, false-activation
rates and val mIoU in % (the package's metrics return percentages, two
decimals), thresholds as fractions.
"""
import math
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence

#: Classes whose objects sit in a class-specific scene (boats on water,
#: aeroplanes in the sky, ...): their background false activation is what
#: QA-CLIMS should lower.
CONTEXT_CLASSES = ('aeroplane', 'boat', 'cow', 'sheep', 'train', 'sofa')
#: Background threshold of ``mIoU`` in an EvalCAMs record (spec's 0.15).
DEFAULT_CAM_THRESHOLD = 0.15
#: Shown for a value that is absent or not finite.
MISSING = '-'

#: Metrics of the stage table per stage type (others: ``record['headline']``
#: or their first numeric metrics).
HEADLINE_KEYS: Dict[str, Sequence[str]] = {
    'EvalCAMsStage': ('mIoU', 'best_threshold', 'best_mIoU',
                      'fg_false_activation'),
    'EvalPseudoMasksStage': ('mIoU', ),
    'TestStage': ('mIoU', 'mIoU_crf'),
}
#: Headline metrics shown for a stage type without an entry above.
MAX_HEADLINE = 4
#: Stage types a report variant names: ``variant key -> stage type``.
VARIANT_STAGE_TYPES = dict(cams='EvalCAMsStage',
                           pseudo='EvalPseudoMasksStage', test='TestStage')


@dataclass
class Table:
    """A table of strings.

    Args:
        headers (list[str]): Column titles.
        rows (list[list[str]]): Cells (as many per row as headers).
        align (str): ``'l'`` or ``'r'`` per column.
        bold (set): ``(row, column)`` cells shown bold in Markdown.
    """
    headers: List[str]
    rows: List[List[str]] = field(default_factory=list)
    align: str = ''
    bold: set = field(default_factory=set)

    def _align(self, col: int) -> str:
        return self.align[col] if col < len(self.align) else 'l'

    def to_markdown(self) -> str:
        """A GitHub-flavoured Markdown table."""

        def cell(text: str, row: int = -1, col: int = -1) -> str:
            text = str(text).replace('|', '\\|')
            return f'**{text}**' if (row, col) in self.bold else text

        lines = ['| ' + ' | '.join(cell(h) for h in self.headers) + ' |']
        lines.append('|' + '|'.join(
            '---:' if self._align(c) == 'r' else '---'
            for c in range(len(self.headers))) + '|')
        for r, row in enumerate(self.rows):
            lines.append('| ' + ' | '.join(
                cell(v, r, c) for c, v in enumerate(row)) + ' |')
        return '\n'.join(lines)

    def to_text(self) -> str:
        """A fixed-width text table (for the terminal)."""
        widths = [
            max([len(str(h))] + [len(str(row[c])) for row in self.rows])
            for c, h in enumerate(self.headers)
        ]

        def line(cells: Sequence[str]) -> str:
            parts = [
                str(v).rjust(w) if self._align(c) == 'r' else str(v).ljust(w)
                for c, (v, w) in enumerate(zip(cells, widths))
            ]
            return ('| ' + ' | '.join(parts) + ' |')

        rule = '+' + '+'.join('-' * (w + 2) for w in widths) + '+'
        out = [rule, line(self.headers), rule]
        out += [line(row) for row in self.rows]
        out.append(rule)
        return '\n'.join(out)


def is_number(value: Any) -> bool:
    """A finite int or float (not a bool)."""
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(value))


def fmt_value(value: Any, digits: int = 2) -> str:
    """A metric with ``digits`` decimals; :data:`MISSING` if not a number."""
    return f'{value:.{digits}f}' if is_number(value) else MISSING


def fmt_generic(value: Any) -> str:
    """Any headline value: ints as is, floats with 4 significant digits."""
    if isinstance(value, bool) or not is_number(value):
        return MISSING if value is None else str(value)
    return str(value) if isinstance(value, int) else f'{value:.4g}'


def fmt_duration(seconds: Any) -> str:
    """``12.3s``, ``4m 05s`` or ``1h 02m``."""
    if not is_number(seconds):
        return MISSING
    if seconds < 60:
        return f'{seconds:.1f}s'
    minutes, secs = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f'{minutes}m {secs:02d}s'
    hours, minutes = divmod(minutes, 60)
    return f'{hours}h {minutes:02d}m'


def headline(record: dict) -> Dict[str, Any]:
    """The metrics of a record shown in the stage table."""
    metrics = record.get('metrics') or {}
    if isinstance(record.get('headline'), dict):
        return dict(record['headline'])
    keys = HEADLINE_KEYS.get(record.get('type'))
    if keys is not None:
        return {k: metrics[k] for k in keys if k in metrics}
    scalars = {
        k: v
        for k, v in metrics.items()
        if is_number(v) or isinstance(v, str)
    }
    return dict(list(scalars.items())[:MAX_HEADLINE])


def fmt_headline(record: dict) -> str:
    """``key=value`` pairs of :func:`headline` (thresholds as fractions,
    ``mIoU``-like metrics with two decimals)."""
    parts = []
    for key, value in headline(record).items():
        if key in ('best_threshold', 'threshold'):
            text = fmt_value(value)
        elif key in HEADLINE_KEYS.get(record.get('type'), ()):
            text = fmt_value(value)
        else:
            text = fmt_generic(value)
        parts.append(f'{key}={text}')
    return ', '.join(parts)


def stage_table(records: Sequence[dict]) -> Table:
    """One row per stage: stage, type, status, wall time, headline metrics;
    then a total row (wall time of all stages, count per status)."""
    table = Table(['stage', 'type', 'status', 'wall time', 'metrics'],
                  align='lllrl')
    for record in records:
        table.rows.append([
            str(record.get('stage')),
            str(record.get('type')),
            str(record.get('status')),
            fmt_duration(record.get('wall_time_s')),
            fmt_headline(record)
        ])
    times = [r.get('wall_time_s') for r in records]
    total = sum(t for t in times if is_number(t))
    counts = [(s, sum(r.get('status') == s for r in records))
              for s in ('ran', 'resumed', 'skipped')]
    table.rows.append([
        'total', '', ', '.join(f'{n} {s}' for s, n in counts if n),
        fmt_duration(total), ''
    ])
    return table


@dataclass
class Variant:
    """One row of the comparison table.

    Args:
        name (str): Row title.
        cams (str, optional): Name of its EvalCAMsStage.
        pseudo (str, optional): Name of its EvalPseudoMasksStage.
        test (str, optional): Name of its TestStage.
    """
    name: str
    cams: Optional[str] = None
    pseudo: Optional[str] = None
    test: Optional[str] = None


def report_variants(report_cfg: dict,
                    records: Sequence[dict]) -> List[Variant]:
    """The rows of the comparison table.

    ``report_cfg['variants']`` (a list of ``dict(name, cams, pseudo, test)``
    naming stages) when given, else one row per EvalCAMsStage record.
    """
    variants = (report_cfg or {}).get('variants')
    if variants:
        return [
            Variant(name=str(v.get('name', v.get('cams'))), cams=v.get('cams'),
                    pseudo=v.get('pseudo'), test=v.get('test'))
            for v in variants
        ]
    return [
        Variant(name=r['stage'], cams=r['stage']) for r in records
        if r.get('type') == 'EvalCAMsStage'
    ]


def _metrics_of(records: Dict[str, dict], stage: Optional[str]) -> dict:
    record = records.get(stage) if stage else None
    return (record or {}).get('metrics') or {}


@dataclass
class Comparison:
    """The numbers of the CAM-variant comparison.

    Args:
        names (list[str]): Variant names (rows).
        headers (list[str]): Column titles (without the name column).
        numbers (list[list]): Raw values, one row per variant (None where
            absent).
        notes (list[str]): Per row, a suffix of the first cell (the
            threshold when the variants were scored at different ones).
        lower_better (set[int]): Columns where lower is better.
        no_best (set[int]): Columns without a best value (thresholds).
    """
    names: List[str]
    headers: List[str]
    numbers: List[List[Any]]
    notes: List[str]
    lower_better: set
    no_best: set


def compare_variants(records: Sequence[dict],
                     report_cfg: Optional[dict] = None,
                     others: Sequence[dict] = ()) -> Optional[Comparison]:
    """The CAM variants side by side (None when there is none).

    Columns: ``mIoU@<thr>``, ``best thr``, ``best mIoU``, ``FA all`` (the
    foreground false activation: share of predicted-foreground pixels whose
    GT is background, at the threshold), ``FA <class>`` for each
    context-bound class (``report_cfg['context_classes']``, default
    :data:`CONTEXT_CLASSES`), then, when a variant names one, ``pseudo mIoU``
    (EvalPseudoMasksStage ``mIoU``), ``val mIoU`` and ``val mIoU+CRF``
    (TestStage ``mIoU`` / ``mIoU_crf``).

    Args:
        records (Sequence[dict]): The stage records of this run.
        report_cfg (dict, optional): The config's ``report``.
        others (Sequence[dict]): Older records (``summary.json``) that a
            variant may name; ``records`` win.
    """
    report_cfg = report_cfg or {}
    variants = report_variants(report_cfg, records)
    if not variants:
        return None
    by_name = {r.get('stage'): r for r in list(others) + list(records)}
    classes = tuple(report_cfg.get('context_classes', CONTEXT_CLASSES))
    cams = [_metrics_of(by_name, v.cams) for v in variants]
    thresholds = {m.get('threshold', DEFAULT_CAM_THRESHOLD) for m in cams}
    thr = thresholds.pop() if len(thresholds) == 1 else None
    headers = [
        f'mIoU@{thr:g}' if is_number(thr) else 'mIoU@thr', 'best thr',
        'best mIoU', 'FA all'
    ] + [f'FA {c}' for c in classes]
    # (column title, variant key, metric key)
    extra = [('pseudo mIoU', 'pseudo', 'mIoU'), ('val mIoU', 'test', 'mIoU'),
             ('val mIoU+CRF', 'test', 'mIoU_crf')]
    extra = [e for e in extra if any(getattr(v, e[1]) for v in variants)]
    headers += [e[0] for e in extra]
    numbers, notes = [], []
    for variant, m in zip(variants, cams):
        per_class = m.get('fg_false_activation_per_class') or {}
        row = [m.get('mIoU'), m.get('best_threshold'), m.get('best_mIoU'),
               m.get('fg_false_activation')]
        row += [per_class.get(c) for c in classes]
        row += [
            _metrics_of(by_name, getattr(variant, key)).get(metric)
            for _, key, metric in extra
        ]
        numbers.append(row)
        notes.append('' if thr is not None or not is_number(m.get('mIoU'))
                     else f' (@{m.get("threshold", DEFAULT_CAM_THRESHOLD):g})')
    return Comparison(names=[v.name for v in variants], headers=headers,
                      numbers=numbers, notes=notes,
                      lower_better=set(range(3, 4 + len(classes))),
                      no_best={1})


def comparison_table(records: Sequence[dict],
                     report_cfg: Optional[dict] = None,
                     others: Sequence[dict] = ()) -> Optional[Table]:
    """:func:`compare_variants` as a table (None when there is no variant).

    In Markdown the best value of each column is bold (highest mIoU, lowest
    false activation). Arguments as for :func:`compare_variants`.
    """
    comp = compare_variants(records, report_cfg, others)
    if comp is None:
        return None
    table = Table(['variant'] + comp.headers,
                  align='l' + 'r' * len(comp.headers))
    for name, row, note in zip(comp.names, comp.numbers, comp.notes):
        cells = [fmt_value(v) for v in row]
        cells[0] += note
        table.rows.append([name] + cells)
    for col in range(len(comp.headers)):
        if col in comp.no_best:
            continue
        values = [(row[col], r) for r, row in enumerate(comp.numbers)
                  if is_number(row[col])]
        if len(values) < 2:
            continue
        best = (min if col in comp.lower_better else max)(v for v, _ in values)
        table.bold |= {(r, col + 1) for v, r in values if v == best}
    return table


def change_table(records: Sequence[dict],
                 report_cfg: Optional[dict] = None,
                 others: Sequence[dict] = ()) -> Optional[Table]:
    """Every other variant minus the baseline variant, column by column.

    The baseline is ``report_cfg['baseline']`` (a variant name), else the
    first variant. Differences are signed (``+1.23``: the variant is higher);
    for false activation, negative is the improvement. None with fewer than
    two variants or an unknown baseline.
    """
    comp = compare_variants(records, report_cfg, others)
    if comp is None or len(comp.names) < 2:
        return None
    baseline = (report_cfg or {}).get('baseline') or comp.names[0]
    if baseline not in comp.names:
        return None
    base = comp.numbers[comp.names.index(baseline)]
    cols = [c for c in range(len(comp.headers)) if c not in comp.no_best]
    table = Table([f'change vs {baseline}'] + [comp.headers[c] for c in cols],
                  align='l' + 'r' * len(cols))
    for name, row in zip(comp.names, comp.numbers):
        if name == baseline:
            continue
        table.rows.append([name] + [
            f'{row[c] - base[c]:+.2f}'
            if is_number(row[c]) and is_number(base[c]) else MISSING
            for c in cols
        ])
    return table
