"""The settings of a resumable writer, recorded in its output folder.

Label writers (``make_pseudo_labels``, ``make_ir_labels``, the random-walk
writer, :class:`~qaclims_mm.engine.hooks.CAMToPseudoLabelHook`) skip the
files that exist, so that a killed run resumes. That is only right when the
existing files were made with the same settings. :func:`claim_output_dir`
records the settings in ``<out_dir>/settings.json`` on the first run and
refuses a later run with other settings unless it overwrites; then
:func:`release_output_dir` marks the folder complete.

An overwriting run over other settings first marks the record as
*incomplete*: if it is killed, the folder holds files of both settings, so a
resume must overwrite again, and a run that does not is refused.
"""
import json
import os.path as osp
from typing import Any, Dict, Mapping

from .io import atomic_write_text

SETTINGS_FILE = 'settings.json'
_INCOMPLETE = 'incomplete_overwrite'


def _normalise(settings: Mapping[str, Any]) -> Dict[str, Any]:
    """JSON round trip: tuples become lists, so records compare equal."""
    return json.loads(json.dumps(dict(settings), sort_keys=True))


def _read(path: str) -> Dict[str, Any]:
    try:
        with open(path, encoding='utf-8') as f:
            record = json.load(f)
    except (OSError, ValueError) as e:
        raise ValueError(f'{path}: unreadable settings record ({e}); delete '
                         f'it together with the folder\'s outputs, or pass '
                         f'--overwrite') from e
    if not isinstance(record, dict):
        raise ValueError(f'{path}: the settings record is not a JSON object')
    return record


def _differences(old: Mapping[str, Any], new: Mapping[str, Any]) -> str:
    names = sorted(set(old) | set(new))
    return ', '.join(f'{k}: {old.get(k, "<unset>")!r} there, '
                     f'{new.get(k, "<unset>")!r} now'
                     for k in names if old.get(k) != new.get(k))


def claim_output_dir(out_dir: str,
                     settings: Mapping[str, Any],
                     overwrite: bool = False,
                     suffix: str = '.png') -> None:
    """Record ``settings`` in ``out_dir`` or check that they match its record.

    Args:
        out_dir (str): The output folder (created if missing).
        settings (Mapping[str, Any]): JSON-serialisable settings that decide
            the content of the outputs (thresholds, inputs, mode ...).
        overwrite (bool): The run rewrites every output it makes. A
            mismatching record is then replaced (marked incomplete until
            :func:`release_output_dir`). Defaults to False.
        suffix (str): Suffix of the output files, to detect outputs of
            unknown settings in a folder without a record. Defaults to
            ``'.png'``.

    Raises:
        ValueError: without ``overwrite``, when the record holds other
            settings (naming them), marks an interrupted overwrite, or is
            missing while the folder already holds outputs.
    """
    import os
    os.makedirs(out_dir, exist_ok=True)
    path = osp.join(out_dir, SETTINGS_FILE)
    new = _normalise(settings)
    if osp.isfile(path):
        old = _read(path)
        incomplete = bool(old.pop(_INCOMPLETE, False))
        if old == new and not incomplete:
            return
        if not overwrite:
            if old != new:
                raise ValueError(
                    f'{out_dir} holds outputs of other settings ({path}: '
                    f'{_differences(old, new)}); existing files would be '
                    f'skipped and the folder would mix both. Pass '
                    f'--overwrite (overwrite=True) to rewrite it, or choose '
                    f'another output folder')
            raise ValueError(
                f'{out_dir}: an --overwrite run into it was interrupted '
                f'({path}), so it mixes two settings; rerun with --overwrite '
                f'(overwrite=True)')
    elif not overwrite:
        existing = [n for n in os.listdir(out_dir) if n.endswith(suffix)]
        if existing:
            raise ValueError(
                f'{out_dir} already holds {len(existing)} {suffix} file(s) '
                f'but no {SETTINGS_FILE}, so their settings are unknown; '
                f'pass --overwrite (overwrite=True) to rewrite them, or '
                f'choose another output folder')
        atomic_write_text(path, json.dumps(new, indent=2, sort_keys=True))
        return
    # overwriting over another (or no, or an interrupted) record
    atomic_write_text(
        path, json.dumps(dict(new, **{_INCOMPLETE: True}), indent=2,
                         sort_keys=True))


def release_output_dir(out_dir: str, settings: Mapping[str, Any]) -> None:
    """Mark the record of ``out_dir`` complete after a finished run.

    Args:
        out_dir (str): The output folder given to :func:`claim_output_dir`.
        settings (Mapping[str, Any]): The same settings.
    """
    path = osp.join(out_dir, SETTINGS_FILE)
    new = _normalise(settings)
    if osp.isfile(path) and _read(path) == new:
        return
    atomic_write_text(path, json.dumps(new, indent=2, sort_keys=True))
