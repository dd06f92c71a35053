"""Pick the checkpoint that ``--resume`` continues from.

MMEngine's automatic resume reads ``<work_dir>/last_checkpoint`` and loads the
file it names; a truncated or missing file (a full disk, an interrupted copy)
then stops the run with a bare unpickling error. Here the named checkpoint is
checked first and, when it is unreadable, the newest complete checkpoint of
the same kind (``epoch_*`` or ``iter_*``) saved before it is used instead,
with a warning.
"""
import os
import os.path as osp
import re
import warnings
import zipfile
from typing import List, Optional

from mmengine.logging import print_log

_STEP = re.compile(r'^(epoch|iter)_(\d+)\.pth$')


def checkpoint_is_complete(path: str) -> bool:
    """Whether ``path`` is a complete ``torch.save`` file.

    ``torch.save`` writes a zip archive (stored, with a CRC per member): a
    truncated file has no central directory and a damaged one fails the CRC
    check. Nothing is unpickled.

    Args:
        path (str): Checkpoint file.

    Returns:
        bool: False for a missing, truncated or corrupted file.
    """
    if not osp.isfile(path):
        return False
    try:
        with zipfile.ZipFile(path) as archive:
            return archive.testzip() is None
    except (zipfile.BadZipFile, OSError, EOFError, ValueError):
        return False


def _older_checkpoints(work_dir: str, newest: str) -> List[str]:
    """Checkpoints of ``newest``'s kind in ``work_dir``, older first out."""
    match = _STEP.match(osp.basename(newest))
    if match is None or not osp.isdir(work_dir):
        return []
    kind, step = match.group(1), int(match.group(2))
    found = []
    for name in os.listdir(work_dir):
        m = _STEP.match(name)
        if m and m.group(1) == kind and int(m.group(2)) < step:
            found.append((int(m.group(2)), osp.join(work_dir, name)))
    return [path for _, path in sorted(found, reverse=True)]


def find_resumable_checkpoint(work_dir: str) -> Optional[str]:
    """The checkpoint to resume from in ``work_dir``.

    Args:
        work_dir (str): The run's work dir.

    Returns:
        str | None: The checkpoint named in ``last_checkpoint`` if it is
        complete, else the newest complete older one of the same kind (with
        a warning); None when ``work_dir`` has no ``last_checkpoint``.

    Raises:
        RuntimeError: ``last_checkpoint`` exists but neither it nor any older
            checkpoint is readable (the files are named).
    """
    pointer = osp.join(work_dir, 'last_checkpoint')
    if not osp.isfile(pointer):
        return None
    with open(pointer) as f:
        last = f.read().strip()
    if not osp.isabs(last) and not osp.isfile(last):
        # a relative path is relative to where training ran; try work_dir
        candidate = osp.join(work_dir, osp.basename(last))
        last = candidate if osp.isfile(candidate) else last
    if checkpoint_is_complete(last):
        return last
    older = _older_checkpoints(work_dir, last)
    for path in older:
        if checkpoint_is_complete(path):
            warnings.warn(
                f'The last checkpoint {last} (named in {pointer}) is missing '
                f'or truncated; resuming from the previous one, {path}.')
            return path
    tried = ', '.join([last] + older)
    raise RuntimeError(f'cannot resume from {work_dir}: no complete '
                       f'checkpoint (tried {tried}); the files are missing '
                       f'or truncated. Remove {pointer} to train from the '
                       f'start.')


def set_resume_checkpoint(cfg) -> None:
    """Point ``cfg`` at the checkpoint a resumed run continues from.

    MMEngine resumes from ``load_from`` when it is set, which in the QA-CLIMS
    and CLIMS configs is the *initial* CAM checkpoint; resuming means the
    work dir's latest complete checkpoint instead
    (:func:`find_resumable_checkpoint`). Without one, training starts from
    the start (loading ``load_from`` as usual). Used by ``tools/train.py
    --resume`` and the pipeline's training stages.

    Args:
        cfg (mmengine.Config): The training config (``work_dir`` set),
            changed in place: ``resume`` and, when resuming, ``load_from``.
    """
    ckpt = find_resumable_checkpoint(cfg.work_dir)
    if ckpt is None:
        print_log(f'resume: no last_checkpoint in {cfg.work_dir}; training '
                  'from the start.', logger='current')
        cfg.resume = False
    else:
        cfg.load_from = ckpt
        cfg.resume = True
