"""Atomic file writes: a crash never leaves a half-written output behind.

Long jobs (converters, CAM dumps, corpus shards) write every output through these
helpers, so a killed run can be restarted and simply skips what exists.
"""
import contextlib
import os
import os.path as osp
import tempfile
from typing import IO, Iterator


def _current_umask() -> int:
    """The process umask.

    Read from ``/proc/self/status`` where available (no change to the
    process state, so safe with threads); else set and restored at once.
    """
    with contextlib.suppress(OSError, ValueError):
        with open('/proc/self/status', encoding='ascii') as f:
            for line in f:
                if line.startswith('Umask:'):
                    return int(line.split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_open(path: str, mode: str = 'wb', fsync: bool = False,
                **kwargs) -> Iterator[IO]:
    """Open a temporary file next to ``path``; move it onto ``path`` on success.

    The rename is atomic, so a killed process never leaves a partial ``path``.
    The file gets the permissions that :func:`open` would give it
    (``0666`` minus the umask), not the ``0600`` of a temporary file.
    ``fsync`` additionally makes the content durable against a power loss; it
    costs a few milliseconds per file, which dominates writers of many small
    files (masks, CAMs), hence off by default.

    Args:
        path (str): The final file path. Its folder is created if missing.
        mode (str): A write mode (``'w'`` or ``'wb'``). Defaults to ``'wb'``.
        fsync (bool): Flush to disk before the rename. Defaults to False.
        **kwargs: Passed to :func:`open` (e.g. ``encoding``).
    """
    folder = osp.dirname(osp.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix='.' + osp.basename(path),
                               suffix='.tmp')
    try:
        with os.fdopen(fd, mode, **kwargs) as f:
            yield f
            if fsync:
                f.flush()
                os.fsync(f.fileno())
        # mkstemp creates 0600; give the file the mode a plain open() would
        os.chmod(tmp, 0o666 & ~_current_umask())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        raise


def atomic_write_text(path: str, text: str) -> None:
    """Write ``text`` to ``path`` atomically (UTF-8)."""
    with atomic_open(path, 'w', encoding='utf-8') as f:
        f.write(text)


def atomic_write_bytes(path: str, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_open(path, 'wb') as f:
        f.write(data)


def read_split(path: str) -> list:
    """Read an image-id list (one id per line; extra columns are ignored).

    Raises:
        FileNotFoundError: naming ``path`` when it does not exist.
    """
    if not osp.isfile(path):
        raise FileNotFoundError(f'split list not found: {path}')
    with open(path, encoding='utf-8') as f:
        # VOC lists hold bare ids; SBD-style lists may hold "id label" pairs
        return [line.split()[0] for line in f if line.strip()]
