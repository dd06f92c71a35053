"""One runner for per-image jobs that write one file per image.

Every writer of per-image outputs (threshold / CRF / IR / random-walk labels,
the pseudo-label hook) needs the same things: skip the files that exist so a
killed run resumes, write atomically, record its settings in the output folder
(:mod:`~qaclims_mm.utils.output_settings`), spread the work over CPU
processes, show a progress bar with an ETA and name the image id when one
image fails. :class:`ImageJobWriter` owns all of that; :func:`map_images`
runs it over a list of ids.

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
import multiprocessing
import os
import os.path as osp
import sys
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping, Optional, Tuple

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
    """

    def __init__(self,
                 out_dir: str,
                 settings: Optional[Mapping[str, Any]] = None,
                 overwrite: bool = False,
                 workers: int = 0,
                 suffix: str = '.png',
                 total: Optional[int] = None,
                 progress: bool = False,
                 max_pending: Optional[int] = None) -> None:
        self.out_dir = out_dir
        self.settings = dict(settings) if settings is not None else None
        self.overwrite = bool(overwrite)
        self.workers = int(workers)
        self.suffix = suffix
        self.total = total
        self.progress = progress
        self.max_pending = max_pending or 4 * max(self.workers, 1)
        self.result = MapResult()
        self._pool = None
        self._pending: deque = deque()
        self._bar = None

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
            claim_output_dir(self.out_dir, self.settings, self.overwrite,
                             self.suffix)
        if self.workers > 1:
            self._pool = multiprocessing.Pool(self.workers,
                                              initializer=_init_worker)
        if self.progress and self.total:
            from mmengine.utils import ProgressBar

            # pass the current stdout: the default is bound at mmengine's
            # import; the bar shows the elapsed time and the ETA
            self._bar = ProgressBar(self.total, file=sys.stdout)
        self.result = MapResult()
        return self

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
        if completed and self.settings is not None:
            release_output_dir(self.out_dir, self.settings)
        return self.result

    def __enter__(self) -> 'ImageJobWriter':
        return self.open()

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close(completed=exc_type is None)


def map_images(img_ids: Iterable[str],
               job: Job,
               out_dir: str,
               workers: int = 0,
               overwrite: bool = False,
               settings: Optional[Mapping[str, Any]] = None,
               suffix: str = '.png',
               progress: bool = True) -> MapResult:
    """Write ``<out_dir>/<id><suffix>`` = ``job(id)`` for every image id.

    Files that exist are skipped unless ``overwrite``, so a killed run
    resumes; every write is atomic; with ``settings`` the folder's settings
    record is claimed first and a folder made with other settings is refused
    unless ``overwrite`` (:func:`~qaclims_mm.utils.output_settings.
    claim_output_dir`). When ``job`` has a ``check(img_id)`` method it is
    called for every image to do before any work starts. The files do not
    depend on ``workers``.

    Args:
        img_ids (Iterable[str]): The image ids.
        job (Callable[[str], bytes]): Picklable (for ``workers > 1``) job
            returning the file content of one image.
        out_dir (str): Output folder (created if missing).
        workers (int): CPU processes; 0 or 1 runs in this process. Defaults
            to 0.
        overwrite (bool): Rewrite existing files. Defaults to False.
        settings (Mapping, optional): The settings record. Defaults to None.
        suffix (str): Output suffix. Defaults to ``'.png'``.
        progress (bool): Show a progress bar with an ETA. Defaults to True.

    Returns:
        MapResult: Files written and skipped.

    Raises:
        Exception: the first failing job's error, naming the image id.
    """
    ids = list(img_ids)
    writer = ImageJobWriter(out_dir, settings, overwrite,
                            min(int(workers), len(ids)), suffix,
                            total=len(ids), progress=progress)
    todo = [i for i in ids if not writer.is_done(i)]
    check = getattr(job, 'check', None)
    if check is not None:
        for img_id in todo:
            try:
                check(img_id)
            except Exception as e:
                named = _with_image_id(e, img_id)
                if named is e:
                    raise
                raise named from e
    if len(todo) <= 1:
        writer.workers = 0
    todo_set = set(todo)
    with writer:
        for img_id in ids:
            if img_id in todo_set:
                writer.submit(img_id, job)
            else:
                writer.skip(img_id)
    return writer.result
