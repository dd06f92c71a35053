"""Run a VQA engine over every (image, labelled class) pair, resumably.

This is the library behind ``tools/qape.py`` (spec §2.2, stage 1a). Layout of
the output folder::

    <out_dir>/settings.json              # what determines the answers
    <out_dir>/shards/rank{r}-{seq:05d}.jsonl   # answers, one pair per line
    <out_dir>/corpus.json                # the merged corpus (rank 0, at end)
    <out_dir>/.qape.lock                 # held while a run writes the folder

* **Resumable.** After every chunk of images, the answers of the chunk are
  written as one new shard, atomically (temporary file + rename). A restarted
  run reads all shards, skips the pairs they hold and continues; nothing is
  lost or asked twice. ``settings.json`` (engine, model, resolution, decoding,
  dtype, questions) must match, or the run is refused.
* **One run at a time.** Rank 0 holds an exclusive lock on
  ``<out_dir>/.qape.lock`` (``fcntl.flock``) from before the first shard until
  ``corpus.json`` is written; a second run into the same folder stops at once
  with an error naming the lock and its holder. The kernel drops the lock when
  the holder exits, also on ``kill -9``, so a killed run never leaves the
  folder locked. On a filesystem without ``flock`` (some NFS / FUSE mounts:
  ``ENOLCK``, ``EOPNOTSUPP``, ``ENOSYS``) the run stops with an error naming
  the lock file and the folder; ``lock=False`` (``tools/qape.py --no-lock``)
  runs unlocked there, and then nothing stops a second run into the folder.
* **Duplicate pairs.** A pair answered in two shards (e.g. by two runs of an
  older version at once) is merged when both records hold the same answers;
  different answers are an error naming both shard files.
* **Multi-GPU.** Under ``torchrun`` the images are split across ranks (image
  ``i`` goes to rank ``i % world_size``); each rank writes its own shards, and
  rank 0 merges all shards into ``corpus.json`` after a barrier.
"""
import contextlib
import errno
import json
import os
import os.path as osp
import re
import socket
import time
from dataclasses import dataclass
from typing import (Any, Callable, Dict, Iterable, Iterator, List, Optional,
                    Sequence, Set, Tuple, Union)

import torch
from PIL import Image

from ..datasets.class_names import get_classes
from ..datasets.labels_file import load_labels_file
from ..utils.io import atomic_open, atomic_write_text, read_split
from .corpus import build_corpus, read_shard_records, save_corpus
from .engines.base import VQAEngine
from .questions import QuestionSet

SHARD_DIR = 'shards'
SETTINGS_FILE = 'settings.json'
CORPUS_FILE = 'corpus.json'
LOCK_FILE = '.qape.lock'
_SHARD_RE = re.compile(r'^rank(\d+)-(\d{5,})\.jsonl$')


@dataclass
class ImageItem:
    """One image and the classes to ask about.

    Args:
        img_id (str): Image id (file stem).
        img_path (str): Image file.
        class_names (list[str]): Names of its labelled classes.
    """
    img_id: str
    img_path: str
    class_names: List[str]


class ImageReadError(RuntimeError):
    """An image of the split could not be read (names the id and path)."""


class OutputDirLockedError(RuntimeError):
    """Another run is writing the output folder (names the lock file)."""


class OutputDirLockUnsupportedError(RuntimeError):
    """The output folder's filesystem cannot lock (names the lock file and
    the folder, and the opt-out)."""


#: ``flock`` errors of a filesystem that does not support locking.
_NO_LOCK_ERRNOS = frozenset(
    getattr(errno, name) for name in ('ENOLCK', 'EOPNOTSUPP', 'ENOTSUP',
                                      'ENOSYS') if hasattr(errno, name))


# ----------------------------------------------------------------------------
# Inputs
# ----------------------------------------------------------------------------
def items_from_data_list(data_list: Iterable[dict],
                         classes: Sequence[str]) -> List[ImageItem]:
    """Data samples (``img_id``, ``img_path``, ``img_labels``) -> items.

    Images without labels are dropped (they have no pair).
    """
    items = []
    for info in data_list:
        missing = [k for k in ('img_id', 'img_path', 'img_labels')
                   if k not in info]
        if missing:
            raise KeyError(f'data sample {info.get("img_path", info)!r} lacks '
                           f'{missing}; use a WSSS dataset (VOC12WSSSDataset, '
                           f'COCO14WSSSDataset)')
        names = [classes[i] for i in info['img_labels']]
        if names:
            items.append(ImageItem(info['img_id'], info['img_path'], names))
    return items


def items_from_dataset_config(config_path: str,
                              dataloader: str = 'train_dataloader',
                              cfg_options: Optional[dict] = None,
                              split_only: bool = False) -> List[ImageItem]:
    """The pairs of the dataset of ``<dataloader>.dataset`` in a config.

    By default every image of the dataset's labels file is asked (its image
    folder, its ``labels_file``), as the official tool does: for VOC that is
    train_aug and val, not only the training split.

    Args:
        config_path (str): An mmseg config using one of our WSSS datasets.
        dataloader (str): Which dataloader's dataset. Defaults to
            ``'train_dataloader'``.
        cfg_options (dict, optional): Overrides merged into the config.
        split_only (bool): Ask only the images of the dataset's split
            (``ann_file``). Defaults to False (every labelled image,
            official).

    Returns:
        list[ImageItem]: One item per labelled image, in split (or labels
        file) order.
    """
    from mmengine.registry import init_default_scope
    from mmseg.registry import DATASETS

    from .. import datasets  # noqa: F401  (registers the WSSS datasets)
    from ..utils.config import load_config
    cfg = load_config(config_path, cfg_options=cfg_options)
    if dataloader not in cfg or 'dataset' not in cfg[dataloader]:
        raise KeyError(f'{config_path}: no "{dataloader}.dataset" in the '
                       f'config')
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    ds_cfg = cfg[dataloader]['dataset'].copy()
    ds_cfg['pipeline'] = []  # images are read by the runner
    dataset = DATASETS.build(ds_cfg)
    classes = getattr(dataset, 'object_classes', None)
    if classes is None:
        raise TypeError(f'{config_path}: {dataloader}.dataset is a '
                        f'{type(dataset).__name__}, not a WSSS dataset with '
                        f'image-level labels')
    if split_only:
        return items_from_data_list(
            (dataset.get_data_info(i) for i in range(len(dataset))), classes)
    # data_prefix is already joined with data_root by the dataset
    return items_from_files(
        None, dataset.data_prefix.get('img_path', ''),
        osp.join(dataset.data_root or '', dataset.labels_file), classes,
        dataset.img_suffix)


def items_from_files(split_file: Optional[str],
                     img_dir: str,
                     labels_file: str,
                     classes: Union[str, Sequence[str]] = 'voc',
                     img_suffix: str = '.jpg') -> List[ImageItem]:
    """The pairs of an image folder + labels file (+ a split list).

    Without a split list every image of the labels file is asked, as the
    official ``get_blip_vqa_results.py`` does (for VOC, ``cls_labels`` covers
    train_aug and val: 12,031 images, 18,605 pairs).

    Args:
        split_file (str, optional): Image ids, one per line: ask only these.
            None = every image in ``labels_file`` (official).
        img_dir (str): Folder of ``<id><img_suffix>``.
        labels_file (str): Our labels JSON (the official ``cls_labels.npy``
            is refused unless converted: tools/convert_official_labels.py).
        classes (str | Sequence[str]): ``'voc'``, ``'coco'`` or the names.
        img_suffix (str): Defaults to ``'.jpg'``.

    Returns:
        list[ImageItem]: One item per labelled image, in split (or labels
        file) order.

    Raises:
        KeyError: an id of the split has no entry in the labels file.
        FileNotFoundError: images of labelled ids are missing from
            ``img_dir`` (the first few named).
    """
    if isinstance(classes, str):
        classes = get_classes(classes)
    labels = load_labels_file(labels_file, classes=classes)
    if split_file is None:
        img_ids, source = list(labels), f'the labels file {labels_file}'
    else:
        img_ids, source = read_split(split_file), split_file
    data_list = []
    for img_id in img_ids:
        if img_id not in labels:
            raise KeyError(f'image {img_id!r} of {split_file} has no entry in '
                           f'the labels file {labels_file}')
        data_list.append(dict(img_id=img_id,
                              img_path=osp.join(img_dir, img_id + img_suffix),
                              img_labels=labels[img_id]))
    items = items_from_data_list(data_list, classes)
    _check_images_exist(items, source)
    return items


def _check_images_exist(items: Sequence[ImageItem], source: str) -> None:
    """Fail before any answer is asked when labelled images are missing."""
    missing = [it for it in items if not osp.isfile(it.img_path)]
    if missing:
        shown = ', '.join(f'{it.img_id!r} ({it.img_path})'
                          for it in missing[:3])
        raise FileNotFoundError(
            f'{len(missing)} of the {len(items)} labelled images of {source} '
            f'are missing, e.g. {shown}')


def read_image(img_id: str, path: str) -> Image.Image:
    """Open an image as RGB, or raise :class:`ImageReadError` naming it."""
    try:
        with Image.open(path) as img:
            return img.convert('RGB')
    except Exception as e:  # missing, truncated, not an image, ...
        raise ImageReadError(f'cannot read image {img_id!r} from {path}: '
                             f'{type(e).__name__}: {e}') from None


class _PendingImages(torch.utils.data.Dataset):
    """Reads and preprocesses the images that still have pending pairs."""

    def __init__(self, items: Sequence[ImageItem],
                 preprocess: Callable[[Image.Image], Any]) -> None:
        self.items = items
        self.preprocess = preprocess

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, idx: int) -> Tuple[int, Any]:
        item = self.items[idx]
        return idx, self.preprocess(read_image(item.img_id, item.img_path))


def _collate(batch: list) -> list:
    return batch


# ----------------------------------------------------------------------------
# Output folder: shards and settings
# ----------------------------------------------------------------------------
def list_shards(out_dir: str) -> List[str]:
    """All shard files of ``out_dir``, sorted by (rank, sequence number)."""
    shard_dir = osp.join(out_dir, SHARD_DIR)
    if not osp.isdir(shard_dir):
        return []
    found = []
    for name in os.listdir(shard_dir):
        m = _SHARD_RE.match(name)
        if m:
            found.append((int(m.group(1)), int(m.group(2)), name))
    return [osp.join(shard_dir, name) for _, _, name in sorted(found)]


def shard_path(out_dir: str, rank: int, seq: int) -> str:
    """``<out_dir>/shards/rank{rank}-{seq:05d}.jsonl``."""
    return osp.join(out_dir, SHARD_DIR, f'rank{rank}-{seq:05d}.jsonl')


def next_shard_seq(out_dir: str, rank: int) -> int:
    """One past the highest sequence number of ``rank``'s shards."""
    seqs = [int(_SHARD_RE.match(osp.basename(p)).group(2))
            for p in list_shards(out_dir)
            if int(_SHARD_RE.match(osp.basename(p)).group(1)) == rank]
    return max(seqs, default=-1) + 1


def finished_pairs(out_dir: str) -> Set[Tuple[str, str]]:
    """The (img_id, class_name) pairs already answered in ``out_dir``."""
    return {(r['img_id'], r['class_name'])
            for r in read_shard_records(list_shards(out_dir))}


def write_shard(path: str, records: Sequence[dict]) -> None:
    """Write JSON-Lines records atomically (a crash leaves no partial file)."""
    with atomic_open(path, 'w', encoding='utf-8') as f:
        for rec in records:
            f.write(json.dumps(rec, ensure_ascii=False) + '\n')


#: Descriptors of the locks this process holds (closed in forked workers).
_HELD_LOCK_FDS: Set[int] = set()


def _close_inherited_locks(worker_id: int = 0) -> None:
    """``worker_init_fn``: a forked data-loader worker drops its copies of
    the lock descriptors, so only the run's own process keeps the lock."""
    for fd in list(_HELD_LOCK_FDS):
        with contextlib.suppress(OSError):
            os.close(fd)
    _HELD_LOCK_FDS.clear()


@contextlib.contextmanager
def lock_out_dir(out_dir: str) -> Iterator[str]:
    """Hold the exclusive lock of an output folder while a run writes it.

    An advisory ``fcntl.flock`` on ``<out_dir>/.qape.lock``, which records
    the holder (pid, host, start time). The lock belongs to the open file, so
    the kernel releases it when the holder exits in any way, ``kill -9``
    included: a stale lock file never blocks a later run.

    Args:
        out_dir (str): The output folder (created if missing).

    Yields:
        str: The lock file path.

    Raises:
        OutputDirLockedError: naming the lock file and its holder, when
            another run holds it.
        OutputDirLockUnsupportedError: naming the lock file and the folder,
            when its filesystem (or the platform) has no ``flock``.
    """
    os.makedirs(out_dir, exist_ok=True)
    path = osp.join(out_dir, LOCK_FILE)
    try:
        import fcntl  # POSIX only
    except ImportError:
        raise _lock_unsupported(out_dir, path, 'no fcntl on this platform')
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)  # not inheritable
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            if e.errno in _NO_LOCK_ERRNOS:
                raise _lock_unsupported(
                    out_dir, path,
                    f'{errno.errorcode.get(e.errno, e.errno)}: '
                    f'{e.strerror}') from e
            if e.errno not in (errno.EAGAIN, errno.EACCES,
                               errno.EWOULDBLOCK):
                raise
            holder = os.pread(fd, 512, 0).decode('utf-8', 'replace').strip()
            raise OutputDirLockedError(
                f'{out_dir} is being written by another QAPE run '
                f'({holder or "holder unknown"}): its lock {path} is held. '
                f'Wait for that run to end (the lock is released when it '
                f'exits, even if killed), or use another --out-dir.'
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, (f'pid {os.getpid()} on {socket.gethostname()} since '
                       f'{time.strftime("%Y-%m-%d %H:%M:%S")}\n').encode(),
                  0)
        _HELD_LOCK_FDS.add(fd)
        try:
            yield path
        finally:
            _HELD_LOCK_FDS.discard(fd)
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)
    finally:
        os.close(fd)  # releases the lock


def _lock_unsupported(out_dir: str, path: str,
                      reason: str) -> OutputDirLockUnsupportedError:
    """The error for a folder that cannot be locked."""
    return OutputDirLockUnsupportedError(
        f'cannot lock the QAPE output folder {out_dir}: flock on {path} '
        f'failed ({reason}); its filesystem does not support locking (e.g. '
        f'some NFS or FUSE mounts). Use an --out-dir on a local filesystem, '
        f'or run without the lock (tools/qape.py --no-lock, '
        f'run_qape(lock=False)) if you make sure that no other run writes '
        f'{out_dir} at the same time.')


def check_settings(out_dir: str, settings: Dict[str, Any],
                   write: bool = True) -> None:
    """Refuse to mix answers produced under different settings.

    Args:
        out_dir (str): The output folder.
        settings (dict): The current run's answer-determining settings
            (JSON-serialisable).
        write (bool): Write ``settings.json`` when it does not exist yet.

    Raises:
        ValueError: naming the differing keys, when ``settings.json`` exists
            with other values.
    """
    path = osp.join(out_dir, SETTINGS_FILE)
    # normalise through JSON (tuples -> lists) before comparing
    current = json.loads(json.dumps(settings, sort_keys=True))
    if osp.isfile(path):
        with open(path, encoding='utf-8') as f:
            stored = json.load(f)
        if stored != current:
            diffs = _diff(stored, current)
            raise ValueError(
                f'{out_dir} holds answers produced with other settings, so '
                f'this run cannot resume there ({path}). Differences '
                f'(stored -> now): ' + '; '.join(diffs[:8])
                + '. Use another --out-dir, or delete the folder to start '
                'over.')
    elif write:
        atomic_write_text(path, json.dumps(current, indent=2, sort_keys=True)
                          + '\n')


def _diff(old: Any, new: Any, prefix: str = '') -> List[str]:
    if isinstance(old, dict) and isinstance(new, dict):
        out = []
        for key in sorted(set(old) | set(new)):
            out += _diff(old.get(key, '<missing>'), new.get(key, '<missing>'),
                         f'{prefix}{key}.')
        return out
    if old != new:
        return [f'{prefix[:-1]}: {old!r} -> {new!r}']
    return []


def run_settings(engine: VQAEngine,
                 question_set: QuestionSet) -> Dict[str, Any]:
    """The settings that determine the answers (stored in settings.json)."""
    return dict(engine=engine.answer_settings(),
                questions=question_set.to_dict())


# ----------------------------------------------------------------------------
# The run
# ----------------------------------------------------------------------------
def _dist_info() -> Tuple[int, int]:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


def _barrier() -> None:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.barrier()


def _library_versions() -> Dict[str, str]:
    import transformers
    return dict(torch=torch.__version__, transformers=transformers.__version__)


def answer_pairs(engine: VQAEngine,
                 items: Sequence[ImageItem],
                 question_set: QuestionSet,
                 out_dir: str,
                 rank: int = 0,
                 chunk_images: int = 32,
                 num_workers: int = 2,
                 progress: bool = True) -> int:
    """Answer this rank's pending pairs, one atomic shard per image chunk.

    Args:
        engine (VQAEngine): The engine.
        items (Sequence[ImageItem]): This rank's images with the classes
            still to ask about (finished pairs already removed).
        question_set (QuestionSet): The questions.
        out_dir (str): The output folder.
        rank (int): Shard-name rank. Defaults to 0.
        chunk_images (int): Images per engine call and per shard. Defaults
            to 32.
        num_workers (int): Image-loading worker processes. Defaults to 2.
        progress (bool): Show a progress bar (pairs/s and ETA). Defaults to
            True.

    Returns:
        int: The number of pairs answered.
    """
    n_fg = len(question_set.fg)
    total = sum(len(it.class_names) for it in items)
    if total == 0:
        return 0
    loader = torch.utils.data.DataLoader(
        _PendingImages(items, engine.preprocess),
        batch_size=chunk_images,
        shuffle=False,
        num_workers=num_workers,
        collate_fn=_collate,
        worker_init_fn=_close_inherited_locks,
        persistent_workers=False)
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=total, unit='pair', desc=f'QAPE rank {rank}',
                   dynamic_ncols=True, smoothing=0.05)
    seq = next_shard_seq(out_dir, rank)
    done = 0
    try:
        for batch in loader:
            chunk = [items[idx] for idx, _ in batch]
            inputs = [x for _, x in batch]
            questions = [[
                q for name in it.class_names
                for q in (question_set.format('fg', name)
                          + question_set.format('bg', name))
            ] for it in chunk]
            answers = engine.answer_preprocessed(inputs, questions)
            records = []
            per_pair = len(question_set.fg) + len(question_set.bg)
            for it, ans in zip(chunk, answers):
                if len(ans) != len(it.class_names) * per_pair:
                    raise RuntimeError(
                        f'{type(engine).__name__} returned {len(ans)} answers '
                        f'for image {it.img_id!r}, expected '
                        f'{len(it.class_names) * per_pair}')
                for k, name in enumerate(it.class_names):
                    block = ans[k * per_pair:(k + 1) * per_pair]
                    records.append(dict(img_id=it.img_id, class_name=name,
                                        fg=block[:n_fg], bg=block[n_fg:]))
            write_shard(shard_path(out_dir, rank, seq), records)
            seq += 1
            done += len(records)
            if bar is not None:
                bar.update(len(records))
    finally:
        if bar is not None:
            bar.close()
    return done


def unique_shard_records(
        out_dir: str,
        wanted: Optional[Set[Tuple[str, str]]] = None) -> List[dict]:
    """The shard records of ``out_dir``, one per (image, class) pair.

    A pair found in several shards with the same answers is kept once (the
    first, in shard order).

    Args:
        out_dir (str): The output folder.
        wanted (set[tuple[str, str]], optional): Keep only these
            ``(img_id, class_name)`` pairs. Defaults to None (all).

    Returns:
        list[dict]: The records, in shard then line order.

    Raises:
        ValueError: naming the pair and both shard files, when two shards
            hold different answers for one pair.
    """
    first: Dict[Tuple[str, str], Tuple[dict, str]] = {}
    for path in list_shards(out_dir):
        for rec in read_shard_records([path]):
            key = (str(rec['img_id']), str(rec['class_name']))
            if wanted is not None and key not in wanted:
                continue
            if key not in first:
                first[key] = (rec, path)
                continue
            kept, kept_path = first[key]
            if kept['fg'] != rec['fg'] or kept['bg'] != rec['bg']:
                raise ValueError(
                    f'duplicate record for image {key[0]!r}, class '
                    f'{key[1]!r} with different answers in {kept_path} and '
                    f'{path}. Delete one of the two shard files and run '
                    f'again: the pairs it held are asked again.')
    return [rec for rec, _ in first.values()]


def merge_shards(out_dir: str,
                 items: Sequence[ImageItem],
                 question_set: QuestionSet,
                 meta: Optional[dict] = None) -> str:
    """Merge every shard into ``<out_dir>/corpus.json``.

    Only the pairs of ``items`` go into the corpus (shards of a previous,
    larger split are kept but not merged); all of them must be present.
    Identical duplicates are merged (:func:`unique_shard_records`).

    Returns:
        str: The corpus path.

    Raises:
        RuntimeError: naming missing pairs.
        ValueError: naming the pair and both shard files, when two shards
            answer one pair differently.
    """
    wanted = {(it.img_id, name) for it in items for name in it.class_names}
    records = unique_shard_records(out_dir, wanted)
    missing = wanted - {(r['img_id'], r['class_name']) for r in records}
    if missing:
        example = sorted(missing)[:5]
        raise RuntimeError(f'{len(missing)} pairs have no answers in '
                           f'{osp.join(out_dir, SHARD_DIR)}, e.g. {example}; '
                           f'run again to complete them')
    corpus = build_corpus(records, question_set, meta)
    path = osp.join(out_dir, CORPUS_FILE)
    save_corpus(path, corpus)
    return path


def run_qape(engine: VQAEngine,
             items: Sequence[ImageItem],
             question_set: QuestionSet,
             out_dir: str,
             chunk_images: int = 32,
             num_workers: int = 2,
             progress: bool = True,
             meta: Optional[dict] = None,
             lock: bool = True) -> Optional[str]:
    """Answer every (image, class) pair of ``items`` and build the corpus.

    Works alone or under ``torch.distributed`` (initialised by the caller):
    rank ``r`` of ``W`` answers ``items[r::W]``; rank 0 merges.

    Args:
        engine (VQAEngine): The engine (on this rank's device).
        items (Sequence[ImageItem]): All images of the split (every rank gets
            the same list).
        question_set (QuestionSet): The questions.
        out_dir (str): Output folder (created; reused when resuming).
        chunk_images (int): Images per engine call and shard. Defaults to 32.
        num_workers (int): Image-loading workers per rank. Defaults to 2.
        progress (bool): Progress bar. Defaults to True.
        meta (dict, optional): Extra provenance for the corpus.
        lock (bool): Hold ``<out_dir>/.qape.lock`` while the run writes
            (:func:`lock_out_dir`). False only for a filesystem without
            ``flock``, where nothing then stops a second run into
            ``out_dir``. Defaults to True.

    Returns:
        str | None: The corpus path on rank 0, None on other ranks.

    Raises:
        OutputDirLockedError: another run is writing ``out_dir``.
        OutputDirLockUnsupportedError: ``out_dir`` cannot be locked (its
            filesystem has no ``flock``) and ``lock`` is True.
        ValueError: ``out_dir`` holds a run with other settings.
        ImageReadError: an image cannot be read (shards already written are
            kept; rerunning resumes).
    """
    rank, world_size = _dist_info()
    os.makedirs(osp.join(out_dir, SHARD_DIR), exist_ok=True)
    settings = run_settings(engine, question_set)
    with contextlib.ExitStack() as stack:
        # rank 0 locks the folder for the whole run (shards of all ranks and
        # the merge); the other ranks wait for it and share its verdict
        error = None
        if rank == 0:
            try:
                if lock:
                    stack.enter_context(lock_out_dir(out_dir))
                check_settings(out_dir, settings, write=True)
            except Exception as e:  # shared, so no rank waits forever
                error = e
        error = _share_from_rank0(error)
        if error is not None:
            raise error
        if rank != 0:
            check_settings(out_dir, settings, write=False)
        return _answer_and_merge(engine, items, question_set, out_dir,
                                 settings, rank, world_size, chunk_images,
                                 num_workers, progress, meta)


def _share_from_rank0(obj: Any) -> Any:
    """Rank 0's ``obj`` on every rank (a no-op outside torch.distributed);
    also a barrier."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        box = [obj]
        torch.distributed.broadcast_object_list(box, src=0)
        return box[0]
    return obj


def _answer_and_merge(engine: VQAEngine, items: Sequence[ImageItem],
                      question_set: QuestionSet, out_dir: str,
                      settings: Dict[str, Any], rank: int, world_size: int,
                      chunk_images: int, num_workers: int, progress: bool,
                      meta: Optional[dict]) -> Optional[str]:
    """The body of :func:`run_qape`, run while rank 0 holds the lock."""
    finished = finished_pairs(out_dir)
    pending = []
    for item in list(items)[rank::world_size]:
        names = [n for n in item.class_names
                 if (item.img_id, n) not in finished]
        if names:
            pending.append(ImageItem(item.img_id, item.img_path, names))
    answer_pairs(engine, pending, question_set, out_dir, rank=rank,
                 chunk_images=chunk_images, num_workers=num_workers,
                 progress=progress)
    _barrier()
    if rank != 0:
        return None
    full_meta = dict(
        model=settings['engine'].get('model_path'),
        engine=settings['engine'],
        runtime=dict(engine.runtime_settings(), world_size=world_size,
                     chunk_images=chunk_images),
        engine_versions=_library_versions(),
        num_images=len(items),
        num_pairs=sum(len(it.class_names) for it in items))
    full_meta.update(meta or {})
    return merge_shards(out_dir, items, question_set, full_meta)
