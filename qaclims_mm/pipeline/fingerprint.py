"""Fingerprints of the files and folders a pipeline stage reads.

A stage's key (:func:`stage_key`) is the SHA-256 of its settings and the
fingerprints of its inputs. The runner skips a stage whose manifest holds the
same key and re-runs one whose key changed (see docs/pipeline.md):

* an input produced by an earlier stage is fingerprinted by that stage's key
  (so a change anywhere upstream changes every key downstream, without
  hashing large intermediate outputs);
* a provided file under :data:`CONTENT_HASH_LIMIT` bytes by the SHA-256 of
  its content, a larger one by ``(size, mtime_ns)``;
* a provided folder by the SHA-256 over its sorted
  ``(relative path, size, mtime_ns)`` entries.
"""
import hashlib
import json
import os
import os.path as osp
from typing import Any, Dict

#: Files smaller than this are hashed by content; larger ones by size+mtime.
CONTENT_HASH_LIMIT = 64 * 1024 * 1024

_CHUNK = 1 << 20


def file_fingerprint(path: str) -> str:
    """Fingerprint of one file.

    Args:
        path (str): An existing file.

    Returns:
        str: ``'sha256:<hex>'`` of the content for a file under
        :data:`CONTENT_HASH_LIMIT` bytes, else ``'stat:<size>:<mtime_ns>'``.
    """
    stat = os.stat(path)
    if stat.st_size >= CONTENT_HASH_LIMIT:
        return f'stat:{stat.st_size}:{stat.st_mtime_ns}'
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(_CHUNK), b''):
            digest.update(chunk)
    return 'sha256:' + digest.hexdigest()


def folder_fingerprint(path: str) -> str:
    """Fingerprint of a folder: its file list, sizes and mtimes.

    Args:
        path (str): An existing folder (walked recursively, symlinks
            followed).

    Returns:
        str: ``'tree:<hex>'``, the SHA-256 over the sorted
        ``(relative path, size, mtime_ns)`` of every file.
    """
    entries = []
    for folder, dirs, files in os.walk(path, followlinks=True):
        dirs.sort()
        for name in files:
            full = osp.join(folder, name)
            stat = os.stat(full)
            entries.append((osp.relpath(full, path).replace(os.sep, '/'),
                            stat.st_size, stat.st_mtime_ns))
    entries.sort()
    digest = hashlib.sha256(json.dumps(entries).encode('utf-8'))
    return 'tree:' + digest.hexdigest()


def path_fingerprint(path: str) -> str:
    """:func:`file_fingerprint` or :func:`folder_fingerprint` of ``path``.

    Raises:
        FileNotFoundError: naming ``path`` when it does not exist.
    """
    if osp.isdir(path):
        return folder_fingerprint(path)
    if osp.isfile(path):
        return file_fingerprint(path)
    raise FileNotFoundError(f'cannot fingerprint a missing path: {path}')


def canonical_json(obj: Any) -> str:
    """JSON with sorted keys; values JSON cannot hold are written with str."""
    return json.dumps(obj, sort_keys=True, separators=(',', ':'),
                      default=str)


def stage_key(settings: Dict[str, Any], inputs: Dict[str, str]) -> str:
    """The key of a stage: SHA-256 of its settings and input fingerprints.

    Args:
        settings (dict): :meth:`BaseStage.settings` of the stage.
        inputs (dict): ``input name -> fingerprint``.

    Returns:
        str: A hex digest.
    """
    payload = canonical_json(dict(settings=settings, inputs=inputs))
    return hashlib.sha256(payload.encode('utf-8')).hexdigest()
