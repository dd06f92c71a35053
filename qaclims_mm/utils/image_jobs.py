"""One runner for per-image jobs that write one file per image.

Every writer of per-image outputs (threshold / CRF / IR / random-walk labels,
the pseudo-label hook) needs the same things: skip the files that exist so a
killed run resumes, write atomically, record its settings in the output folder
(:mod:`~qaclims_mm.utils.output_settings`), spread the work over CPU
processes, show a progress bar with an ETA and name the image id when one
image fails. :class:`ImageJobWriter` owns all of that; :func:`map_images`
runs it over a list of ids.

Several ranks of a ``torch.distributed`` run share one job when they pass
``rank`` and ``world_size`` (every rank calls with the same ids; see
:func:`map_images`): rank ``r`` of ``W`` writes the files of the ids at
positions ``r, r + W, ...`` only, so no file is written by two ranks; rank 0
alone claims the folder's settings record (the others wait for it), checks
after the last rank finished that every file exists and returns the counts
of the whole job. An error on one rank is raised on every rank, so none is
left waiting. Without ``rank`` / ``world_size`` the process works alone,
also inside a distributed run (e.g. code that only rank 0 runs).

A *job* is a picklable callable ``job(img_id, *args) -> bytes`` (the file
content); its settings are its fields (a small dataclass), not a positional
tuple. A job may define ``check(img_id)``, which :func:`map_images` calls for
every image to do before any work starts, so a missing input fails at once.

Example::

    >>> @dataclass(frozen=True)
    ... class Copy:
    ...     src_dir: str
    ...     def __call__(self, img_id):
    ...         return open(f'{self.src_dir}/{img_id}.png', 'rb').read()
    >>> map_images(['a', 'b'], Copy('in'), 'out', workers=2)
    MapResult(written=2, skipped=0)
"""
import hashlib
import multiprocessing
import os
import os.path as osp
import sys
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable, Iterable, List, Mapping, Optional, Tuple

from .io import atomic_write_bytes
from .output_settings import claim_output_dir, release_output_dir

Job = Callable[..., bytes]


@dataclass
class MapResult:
    """What a per-image run did.

    Args:
        written (int): Files written.
        skipped (int): Files that existed and were kept.
    """
    written: int = 0
    skipped: int = 0


def resolve_rank(rank: Optional[int] = None,
                 world_size: Optional[int] = None) -> Tuple[int, int]:
    """``(rank, world_size)`` of a per-image job.

    Args:
        rank (int, optional): This process's rank. Defaults to 0.
        world_size (int, optional): Number of processes sharing the job.
            None or 1: this process works alone. Above 1 the
            ``torch.distributed`` process group must be initialised with that
            size and this rank (every rank calls with the same ids).

    Raises:
        ValueError: for an impossible pair, or one that contradicts the
            process group.
        RuntimeError: ``world_size > 1`` without a process group.
    """
    world = 1 if world_size is None else int(world_size)
    rank = 0 if rank is None else int(rank)
    if world < 1 or not 0 <= rank < world:
        raise ValueError(f'per-image job: rank {rank} of world_size {world} '
                         f'is impossible (need 0 <= rank < world_size)')
    if world > 1:
        import torch.distributed as dist
        if not (dist.is_available() and dist.is_initialized()):
            raise RuntimeError(
                f'per-image job sharded over world_size={world} ranks, but '
                f'torch.distributed is not initialised (init_dist / the '
                f'runner starts the process group)')
        if (dist.get_rank(), dist.get_world_size()) != (rank, world):
            raise ValueError(
                f'per-image job: rank {rank} of {world} given, but this '
                f'process is rank {dist.get_rank()} of '
                f'{dist.get_world_size()} in torch.distributed')
    return rank, world


def _all_gather(obj: Any, world: int) -> List[Any]:
    """``obj`` of every rank (rank order); ``[obj]`` for one process."""
    if world == 1:
        return [obj]
    import torch.distributed as dist
    gathered: List[Any] = [None] * world
    dist.all_gather_object(gathered, obj)
    return gathered


def _describe(error: Optional[BaseException]) -> Optional[str]:
    return None if error is None else f'{type(error).__name__}: {error}'


def _raise_first(error: Optional[BaseException], rank: int, world: int,
                 what: str) -> None:
    """Share ``error`` (or None) of every rank and raise if any rank has one.

    A collective: every rank must call it. A rank raises its own error;
    the others raise a ``RuntimeError`` naming the first failing rank.
    """
    messages = _all_gather(_describe(error), world)
    if error is not None:
        raise error
    for other, message in enumerate(messages):
        if message is not None:
            raise RuntimeError(f'{what} failed on rank {other} of {world}: '
                               f'{message}')


def _unique(ids: Iterable[str]) -> List[str]:
    """``ids`` without repeats (first occurrence kept, order kept)."""
    return list(dict.fromkeys(ids))


def _check_same_ids(ids: List[str], rank: int, world: int,
                    out_dir: str) -> None:
    """Refuse ranks that were given different id lists (a collective)."""
    digest = hashlib.sha256('\n'.join(ids).encode()).hexdigest()
    digests = _all_gather((len(ids), digest), world)
    if any(d != digests[0] for d in digests):
        raise ValueError(
            f'per-image job into {out_dir}: the ranks were given different '
            f'image id lists ((count, sha256) per rank: {digests}); every '
            f'rank must pass the same ids')


def _with_image_id(error: BaseException, img_id: str) -> BaseException:
    """``error`` with the image id in its message (unchanged if present)."""
    text = str(error)
    if repr(img_id) in text or f'image {img_id}' in text:
        return error
    message = f'image {img_id!r}: {text}'
    try:
        named = type(error)(message)
    except Exception:  # an exception type with another signature
        named = RuntimeError(message)
    named.__cause__ = error
    return named


def _init_worker() -> None:
    """Worker start: one torch thread.

    A forked child must not enter an OpenMP parallel region of a parent
    that already ran one (libgomp deadlocks); with one thread torch runs
    every kernel inline. One image per process needs no more anyway.
    """
    if 'torch' in sys.modules:
        sys.modules['torch'].set_num_threads(1)


def _run_job(img_id: str, job: Job, args: Tuple) -> Tuple[str, bytes]:
    """Run one job (module level, so that it also runs in a worker)."""
    try:
        return img_id, job(img_id, *args)
    except Exception as e:
        named = _with_image_id(e, img_id)
        if named is e:
            raise
        raise named from e


class ImageJobWriter:
    """Write ``<out_dir>/<img_id><suffix>`` for a stream of images.

    Use it as a context manager (or call :meth:`open` / :meth:`close`);
    :meth:`submit` runs a job for one image, in this process or in a worker
    process, and writes its result atomically. Images whose file exists are
    skipped unless ``overwrite`` (:meth:`is_done`). With ``settings`` the
    folder's settings record is claimed on :meth:`open` and marked complete
    on a clean :meth:`close`.

    Args:
        out_dir (str): The output folder (created if missing).
        settings (Mapping, optional): JSON-serialisable settings that decide
            the outputs' content; None keeps no record. Defaults to None.
        overwrite (bool): Rewrite existing files and accept a folder recorded
            with other settings. Defaults to False.
        workers (int): CPU worker processes; 0 or 1 runs the jobs here.
            Defaults to 0.
        suffix (str): Output file suffix. Defaults to ``'.png'``.
        total (int, optional): Number of images to expect, for the progress
            bar. Defaults to None (no bar).
        progress (bool): Show a progress bar with an ETA (needs ``total``).
            Defaults to False.
        max_pending (int, optional): Jobs in flight before :meth:`submit`
            waits for the oldest (bounds the memory held by their inputs).
            Defaults to ``4 * workers``.
        rank (int, optional): This process's rank when ``world_size``
            processes write into the folder together. Defaults to 0.
        world_size (int, optional): Processes writing into the folder
            together (each submits its own images; no image on two ranks).
            Then :meth:`open` and :meth:`close` are collectives: rank 0 alone
            claims the settings record while the others wait; :meth:`close`
            sums the counts of all ranks (:attr:`rank_result` holds this
            rank's), raises on every rank when one failed, checks on rank 0
            that the files of :attr:`expected_ids` (if set) exist, and only
            then marks the record complete. Defaults to None (alone).
    """

    def __init__(self,
                 out_dir: str,
                 settings: Optional[Mapping[str, Any]] = None,
                 overwrite: bool = False,
                 workers: int = 0,
                 suffix: str = '.png',
                 total: Optional[int] = None,
                 progress: bool = False,
                 max_pending: Optional[int] = None,
                 rank: Optional[int] = None,
                 world_size: Optional[int] = None) -> None:
        self.out_dir = out_dir
        self.settings = dict(settings) if settings is not None else None
        self.overwrite = bool(overwrite)
        self.workers = int(workers)
        self.suffix = suffix
        self.total = total
        self.progress = progress
        self.max_pending = max_pending or 4 * max(self.workers, 1)
        self.result = MapResult()
        self.rank_result = self.result
        self.rank, self.world_size = resolve_rank(rank, world_size)
        #: Ids whose files rank 0 checks at :meth:`close` (several ranks).
        self.expected_ids: Optional[List[str]] = None
        self._pool = None
        self._pending: deque = deque()
        self._bar = None
        self._error: Optional[BaseException] = None

    def out_path(self, img_id: str) -> str:
        """The output file of ``img_id``."""
        return osp.join(self.out_dir, img_id + self.suffix)

    def is_done(self, img_id: str) -> bool:
        """True when the file of ``img_id`` exists and is kept."""
        return not self.overwrite and osp.isfile(self.out_path(img_id))

    def open(self) -> 'ImageJobWriter':
        """Create the folder, claim its settings record, start the workers."""
        os.makedirs(self.out_dir, exist_ok=True)
        if self.settings is not None:
            self._claim()
        if self.workers > 1:
            self._pool = multiprocessing.Pool(self.workers,
                                              initializer=_init_worker)
        if self.progress and self.total:
            from mmengine.utils import ProgressBar

            # pass the current stdout: the default is bound at mmengine's
            # import; the bar shows the elapsed time and the ETA
            self._bar = ProgressBar(self.total, file=sys.stdout)
        self.result = MapResult()
        self.rank_result = self.result
        self._error = None
        return self

    def _claim(self) -> None:
        """Claim the settings record: alone, or on rank 0 while the other
        ranks wait (then the claim's error is raised on every rank)."""
        if self.world_size == 1:
            claim_output_dir(self.out_dir, self.settings, self.overwrite,
                             self.suffix)
            return
        error = None
        if self.rank == 0:
            try:
                claim_output_dir(self.out_dir, self.settings, self.overwrite,
                                 self.suffix)
            except Exception as e:  # shared below, so no rank waits
                error = e
        _raise_first(error, self.rank, self.world_size,
                     f'claiming {self.out_dir}')

    def skip(self, img_id: str) -> None:
        """Count ``img_id`` as done already."""
        self.result.skipped += 1
        self._tick()

    def submit(self, img_id: str, job: Job, *args) -> None:
        """Run ``job(img_id, *args)`` and write its bytes for ``img_id``.

        Raises:
            Exception: the job's error, its message naming the image id (at
                once without workers; with workers, at a later
                :meth:`submit` or at :meth:`close`).
        """
        if self._pool is None:
            self._write(*_run_job(img_id, job, args))
            return
        self._pending.append(
            self._pool.apply_async(_run_job, (img_id, job, args)))
        while len(self._pending) > self.max_pending:
            self._write(*self._pending.popleft().get())

    def _write(self, img_id: str, data: bytes) -> None:
        atomic_write_bytes(self.out_path(img_id), data)
        self.result.written += 1
        self._tick()

    def _tick(self) -> None:
        if self._bar is not None:
            self._bar.update()

    def close(self, completed: bool = True) -> MapResult:
        """Wait for the workers, stop them; mark the record complete.

        Args:
            completed (bool): The run finished (False after an error: the
                record is left as it is). Defaults to True.
        """
        try:
            while completed and self._pending:
                self._write(*self._pending.popleft().get())
        except Exception as e:
            if self.world_size == 1:
                raise
            # several ranks: share the error in _close_together, so that
            # no rank is left waiting for this one
            self._error = self._error or e
            completed = False
        finally:
            if self._pool is not None:
                if completed:
                    self._pool.close()
                else:
                    self._pool.terminate()
                self._pool.join()
                self._pool = None
            self._pending.clear()
            if self._bar is not None:
                sys.stdout.write('\n')
                self._bar = None
        if self.world_size > 1:
            return self._close_together(completed)
        if completed and self.settings is not None:
            release_output_dir(self.out_dir, self.settings)
        return self.result

    def missing_ids(self, img_ids: Iterable[str]) -> List[str]:
        """The ids in ``img_ids`` whose file does not exist."""
        return [i for i in img_ids if not osp.isfile(self.out_path(i))]

    def _close_together(self, completed: bool) -> MapResult:
        """The end of a job shared by several ranks (a collective)."""
        error = self._error
        if error is None and not completed:
            error = RuntimeError('stopped before the end')
        _raise_first(error, self.rank, self.world_size,
                     f'writing {self.out_dir}')
        counts = _all_gather(
            (self.rank_result.written, self.rank_result.skipped),
            self.world_size)
        self.result = MapResult(sum(c[0] for c in counts),
                                sum(c[1] for c in counts))
        error = None
        if self.rank == 0:
            try:
                self._verify_and_release()
            except Exception as e:
                error = e
        _raise_first(error, self.rank, self.world_size,
                     f'checking {self.out_dir}')
        return self.result

    def _verify_and_release(self) -> None:
        """Rank 0, after every rank finished: all files there, then the
        settings record is marked complete."""
        if self.expected_ids is not None:
            missing = self.missing_ids(self.expected_ids)
            if missing:
                shown = ', '.join(repr(i) for i in missing[:10])
                raise RuntimeError(
                    f'{self.out_dir}: {len(missing)} of the '
                    f'{len(self.expected_ids)} {self.suffix} files are '
                    f'missing after all {self.world_size} ranks finished: '
                    f'{shown}{" ..." if len(missing) > 10 else ""}')
        if self.settings is not None:
            release_output_dir(self.out_dir, self.settings)

    def __enter__(self) -> 'ImageJobWriter':
        return self.open()

    def __exit__(self, exc_type, exc, tb) -> None:
        self._error = exc
        try:
            self.close(completed=exc_type is None)
        except Exception:
            if exc is None:
                raise
            # the block's own error wins (close() re-raised it, or a
            # secondary one); nothing to add


def map_images(img_ids: Iterable[str],
               job: Job,
               out_dir: str,
               workers: int = 0,
               overwrite: bool = False,
               settings: Optional[Mapping[str, Any]] = None,
               suffix: str = '.png',
               progress: bool = True,
               rank: Optional[int] = None,
               world_size: Optional[int] = None) -> MapResult:
    """Write ``<out_dir>/<id><suffix>`` = ``job(id)`` for every image id.

    Files that exist are skipped unless ``overwrite``, so a killed run
    resumes; every write is atomic; with ``settings`` the folder's settings
    record is claimed first and a folder made with other settings is refused
    unless ``overwrite`` (:func:`~qaclims_mm.utils.output_settings.
    claim_output_dir`). When ``job`` has a ``check(img_id)`` method it is
    called for every image to do before any work starts. The files do not
    depend on ``workers`` nor on ``world_size``.

    With ``world_size > 1`` every rank of the ``torch.distributed`` group
    calls this with the same ids (repeats dropped; a rank given other ids
    is refused); rank ``r`` does the ids at positions ``i`` with
    ``i % world_size == r``. Rank 0 claims the settings record before any
    rank starts; after the last rank finished, rank 0 checks that every
    id's file exists (an error names the missing ids) and marks the record
    complete. The result counts the whole job, on every rank; an error on
    any rank is raised on all of them.

    Args:
        img_ids (Iterable[str]): The image ids.
        job (Callable[[str], bytes]): Picklable (for ``workers > 1``) job
            returning the file content of one image.
        out_dir (str): Output folder (created if missing).
        workers (int): CPU processes (per rank); 0 or 1 runs in this
            process. Defaults to 0.
        overwrite (bool): Rewrite existing files. Defaults to False.
        settings (Mapping, optional): The settings record. Defaults to None.
        suffix (str): Output suffix. Defaults to ``'.png'``.
        progress (bool): Show a progress bar with an ETA (on rank 0, for its
            share). Defaults to True.
        rank (int, optional): This process's rank. Defaults to 0.
        world_size (int, optional): Processes sharing the job, e.g.
            ``mmengine.dist.get_dist_info()``. Defaults to None: this process
            does every id, also inside a distributed run.

    Returns:
        MapResult: Files written and skipped (by all ranks).

    Raises:
        Exception: the first failing job's error, naming the image id (on
            the other ranks a ``RuntimeError`` naming the failed rank).
        RuntimeError: on every rank, when files are missing at the end.
    """
    rank, world = resolve_rank(rank, world_size)
    ids = list(img_ids)
    if world > 1:
        ids = _unique(ids)
        _check_same_ids(ids, rank, world, out_dir)
    share = ids[rank::world]
    writer = ImageJobWriter(out_dir, settings, overwrite,
                            min(int(workers), len(share)), suffix,
                            total=len(share), progress=progress and rank == 0,
                            rank=rank, world_size=world)
    if world > 1:
        writer.expected_ids = ids
    todo = [i for i in share if not writer.is_done(i)]
    error = None
    try:
        _check_inputs(job, todo)
    except Exception as e:
        error = e
    if world > 1:
        _raise_first(error, rank, world, f'checking the inputs of {out_dir}')
    elif error is not None:
        raise error
    if len(todo) <= 1:
        writer.workers = 0
    todo_set = set(todo)
    with writer:
        for img_id in share:
            if img_id in todo_set:
                writer.submit(img_id, job)
            else:
                writer.skip(img_id)
    return writer.result


def _check_inputs(job: Job, img_ids: Iterable[str]) -> None:
    """``job.check(img_id)`` for each id (if the job has it), naming the id
    in its error."""
    check = getattr(job, 'check', None)
    if check is None:
        return
    for img_id in img_ids:
        try:
            check(img_id)
        except Exception as e:
            named = _with_image_id(e, img_id)
            if named is e:
                raise
            raise named from e
