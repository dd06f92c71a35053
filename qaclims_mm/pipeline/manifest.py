"""The records a pipeline stage leaves in ``<work_dir>/<stage name>/``.

* ``.started.json`` = ``{"key": ...}``, written before the stage runs: a
  rerun with the same key continues the stage (``ctx.resume``).
* ``manifest.json``, written when the stage has finished and every declared
  output exists: ``key``, ``type``, ``settings``, ``inputs`` (path and
  fingerprint), ``outputs``, ``metrics``, ``num_classes``, ``wall_time_s``,
  ``finished_at``. A rerun with the same key skips the stage.

Both are written atomically (a kill never leaves half a record).
"""
import json
import os
import os.path as osp
from typing import Optional

from qaclims_mm.utils.io import atomic_write_text

MANIFEST = 'manifest.json'
STARTED = '.started.json'


def manifest_path(stage_dir: str) -> str:
    """``<stage_dir>/manifest.json``."""
    return osp.join(stage_dir, MANIFEST)


def started_path(stage_dir: str) -> str:
    """``<stage_dir>/.started.json``."""
    return osp.join(stage_dir, STARTED)


def _read_json(path: str) -> Optional[dict]:
    """The dict in ``path``; None when it is missing or not a JSON dict."""
    try:
        with open(path, encoding='utf-8') as f:
            data = json.load(f)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _write_json(path: str, data: dict) -> None:
    atomic_write_text(
        path, json.dumps(data, indent=2, sort_keys=True, default=str) + '\n')


def read_manifest(stage_dir: str) -> Optional[dict]:
    """The stage's manifest, or None if it has not finished."""
    return _read_json(manifest_path(stage_dir))


def write_manifest(stage_dir: str, manifest: dict) -> None:
    """Write the manifest atomically (the stage is complete)."""
    _write_json(manifest_path(stage_dir), manifest)


def read_started_key(stage_dir: str) -> Optional[str]:
    """The key of the started, unfinished run of the stage, if any."""
    data = _read_json(started_path(stage_dir))
    return None if data is None else data.get('key')


def write_started(stage_dir: str, key: str) -> None:
    """Record that a run of the stage with ``key`` has started."""
    _write_json(started_path(stage_dir), dict(key=key))


def remove_started(stage_dir: str) -> None:
    """Drop the start record (after the manifest is written)."""
    try:
        os.remove(started_path(stage_dir))
    except FileNotFoundError:
        pass
