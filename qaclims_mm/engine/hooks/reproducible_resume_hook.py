"""Random state that depends only on the training position, so that resume
reproduces an uninterrupted run bit for bit.

Why MMEngine alone does not resume exactly: the checkpoint holds the weights,
optimiser, schedulers and the sampler seed, but not the Python / NumPy / torch
random generators. A resumed run starts them from ``randomness.seed`` again,
while the uninterrupted run continues them after several epochs of data
augmentation (``np.random`` in the transforms when ``num_workers=0``), dropout
/ drop-path (torch) and the DataLoader's worker seeds (drawn from torch's
generator on every ``iter(dataloader)``). Persistent workers keep their own
generators across epochs, and MMEngine's default ``worker_init_fn`` reseeds
every spawned worker with the same constant, which also makes every epoch's
augmentation identical when workers are not persistent.

:class:`ReproducibleResumeHook` derives every generator state from
``(seed, rank, position)`` instead of from history:

- Epoch-based loops: at the start of each epoch the Python, NumPy and torch
  (CPU and CUDA) generators are reseeded from ``(seed, rank, epoch)``.
  Persistent workers are shut down so that the epoch's workers start afresh
  from a base seed drawn from the reseeded torch generator, and each worker
  is seeded from that base seed (:func:`seed_worker_from_base_seed`) rather
  than from MMEngine's per-run constant.
- Iteration-based loops: the loop's data iterator (created, with its
  workers, before the checkpoint is loaded) is restarted under a seed derived
  from ``seed`` alone (an ``InfiniteSampler`` gets a fresh index stream
  from the run's seed: its single generator, started by the discarded
  iterator's prefetching, would otherwise be closed with it and end the
  data after one pass), and the generators are reseeded before every batch
  is fetched, from ``(seed, rank, batch count)``. MMEngine resumes such a loop by
  fetching the already-trained batches again, so the replay and the
  uninterrupted run fetch each batch from the same state, and worker
  generators (persistent or respawned at an end of the data) advance the same
  way in both.
- Both: the sampler gets ``runner.seed``. Without ``randomness.seed`` every
  run draws a seed and MMEngine restores the checkpoint's only after the
  sampler was built with the new one, which changes the data order.

What stays outside: a checkpoint taken in the middle of an epoch of an
epoch-based loop (MMEngine restarts that epoch), a change of the number of
workers, processes or the batch size between the runs, and non-deterministic
kernels (``randomness.deterministic=False`` on CUDA).
"""
import random
from typing import Any, Iterator, Optional

import numpy as np
import torch
from mmengine.dataset import InfiniteSampler
from mmengine.dist import get_rank
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.registry import FUNCTIONS
from mmengine.runner.utils import set_random_seed
from mmseg.registry import HOOKS

# Tags that keep the epoch and batch streams apart.
_EPOCH_STREAM = 0
_BATCH_STREAM = 1
_START_STREAM = 2


def derive_seed(seed: int, rank: int, stream: int, position: int) -> int:
    """A 32-bit seed that is a pure function of its arguments.

    Args:
        seed (int): The run's base seed (``runner.seed``).
        rank (int): Process rank.
        stream (int): Which counter ``position`` counts (epochs or batches).
        position (int): The epoch or batch number.

    Returns:
        int: A seed in ``[0, 2**32)``.
    """
    entropy = [int(seed) % 2**63, int(rank), int(stream), int(position)]
    return int(np.random.SeedSequence(entropy).generate_state(1)[0])


@FUNCTIONS.register_module()
def seed_worker_from_base_seed(worker_id: int) -> None:
    """``worker_init_fn`` that keeps PyTorch's per-spawn worker seeding.

    PyTorch seeds each worker from a base seed drawn from the parent's torch
    generator when the workers are spawned, plus the worker id; with the
    parent reseeded per epoch that seed is a function of the epoch. NumPy and
    Python are seeded from it too (MMEngine's default replaces all three by
    one constant per run).

    Args:
        worker_id (int): Worker index (unused: it is part of the base seed).
    """
    seed = torch.initial_seed() % 2**32
    random.seed(seed)
    np.random.seed(seed)


class _ReseedingIterator:
    """Wrap a loop's data iterator: reseed all generators before each fetch.

    Args:
        iterator (Iterator): The loop's ``dataloader_iterator``.
        seed (int): The run's base seed.
        rank (int): Process rank.
    """

    def __init__(self, iterator: Iterator, seed: int, rank: int) -> None:
        self._inner = iterator
        self._seed = seed
        self._rank = rank
        self.fetched = 0

    def __iter__(self) -> '_ReseedingIterator':
        return self

    def __next__(self) -> Any:
        set_random_seed(
            derive_seed(self._seed, self._rank, _BATCH_STREAM, self.fetched))
        self.fetched += 1
        return next(self._inner)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


@HOOKS.register_module()
class ReproducibleResumeHook(Hook):
    """Make ``--resume`` continue exactly as an uninterrupted run would.

    See the module docstring for what is reseeded when. The states need not be
    stored in the checkpoint: they are functions of ``runner.seed`` (which
    MMEngine saves and restores) and the position.

    Args:
        respawn_persistent_workers (bool): In epoch-based loops, restart
            persistent workers at each epoch so that their generators start
            from the epoch's seed (otherwise they continue from the first
            epoch, which a resumed run cannot reproduce). Costs one worker
            start per epoch, as ``persistent_workers=False`` does.
            Defaults to True.
    """

    priority = 'VERY_HIGH'

    def __init__(self, respawn_persistent_workers: bool = True) -> None:
        self.respawn_persistent_workers = respawn_persistent_workers

    def before_train(self, runner) -> None:
        """Align the sampler seed, install the worker seeding and, for
        iteration-based loops, restart the data iterator under a derived seed
        and reseed per batch."""
        loop = runner.train_loop
        loader = loop.dataloader
        _sync_sampler_seed(runner, loader)
        if getattr(loader, 'num_workers', 0) > 0:
            # allowed after construction (unlike sampler or batch_size);
            # applies to every later spawn of workers
            loader.worker_init_fn = seed_worker_from_base_seed
        iterator = getattr(loop, 'dataloader_iterator', None)
        if iterator is None or isinstance(iterator, _ReseedingIterator):
            return
        # The loop created its iterator (and spawned workers) before the
        # checkpoint was loaded, from whatever state the generators had then;
        # start it again from a state fixed by the seed alone.
        old_iter = getattr(iterator, '_iterator', None)
        _shutdown_workers(old_iter)
        _close_index_stream(old_iter)
        _shutdown_persistent_workers(loader)
        _restart_infinite_sampler(loader)
        rank = get_rank()
        set_random_seed(derive_seed(runner.seed, rank, _START_STREAM, 0))
        loop.dataloader_iterator = _ReseedingIterator(
            type(iterator)(loader), runner.seed, rank)

    def before_train_epoch(self, runner) -> None:
        """Epoch-based loops: reseed from the epoch; fresh workers."""
        if hasattr(runner.train_loop, 'dataloader_iterator'):
            return  # iteration-based: reseeded per batch instead
        set_random_seed(
            derive_seed(runner.seed, get_rank(), _EPOCH_STREAM, runner.epoch))
        loader = runner.train_loop.dataloader
        if self.respawn_persistent_workers:
            _shutdown_persistent_workers(loader)


def _find_sampler(loader: Any) -> Optional[Any]:
    """The loader's seeded sampler (also when a batch sampler wraps it)."""
    sampler = getattr(loader, 'sampler', None)
    if not hasattr(sampler, 'seed'):
        sampler = getattr(getattr(loader, 'batch_sampler', None), 'sampler',
                          None)
    return sampler if hasattr(sampler, 'seed') else None


def _sync_sampler_seed(runner, loader: Any) -> None:
    """Give the sampler the run's seed.

    Without ``randomness.seed`` in the config every run draws its own seed;
    MMEngine restores the checkpoint's seed on resume, but only after the
    sampler was built with the new one, so the data order would differ.
    """
    if getattr(runner, '_randomness_cfg', {}).get('diff_rank_seed', False):
        return  # MMEngine then gives samplers an unsaved synchronised seed
    sampler = _find_sampler(loader)
    if sampler is not None and sampler.seed != runner.seed:
        print_log(f'ReproducibleResumeHook: sampler seed {sampler.seed} -> '
                  f'{runner.seed} (the checkpoint\'s)', logger='current')
        sampler.seed = runner.seed


def _shutdown_workers(data_iter: Optional[Any]) -> None:
    """Stop the workers of a multi-process DataLoader iterator, if any."""
    shutdown = getattr(data_iter, '_shutdown_workers', None)
    if shutdown is not None:
        shutdown()


def _shutdown_persistent_workers(loader: Any) -> None:
    """Stop a DataLoader's persistent workers; the next ``iter()`` spawns new
    ones (PyTorch keeps them in the private ``_iterator``)."""
    if not getattr(loader, 'persistent_workers', False):
        return
    workers: Optional[Any] = getattr(loader, '_iterator', None)
    if workers is None:
        return
    _shutdown_workers(workers)
    loader._iterator = None
    print_log('ReproducibleResumeHook: persistent DataLoader workers '
              'restarted for the epoch', logger='current', level=10)


def _close_index_stream(data_iter: Optional[Any]) -> None:
    """Close the index generator of a discarded DataLoader iterator now.

    Closing it propagates (through ``yield from``) into the sampler's own
    iterator; doing it here, before :func:`_restart_infinite_sampler`, keeps
    that from happening later, at garbage collection, to the new stream.
    """
    sampler_iter = getattr(data_iter, '_sampler_iter', None)
    close = getattr(sampler_iter, 'close', None)
    if close is not None:
        close()


def _restart_infinite_sampler(loader: Any) -> None:
    """Give an :class:`~mmengine.dataset.InfiniteSampler` a fresh index
    stream from its (possibly just synchronised) seed.

    ``InfiniteSampler`` creates one index generator in ``__init__`` and every
    ``iter()`` of it delegates to that generator. The loop's first iterator
    (with workers it prefetches at once) starts it, with the seed the sampler
    had then, and discarding that iterator closes it: the restarted iterator
    would then end after its prefetched batches and the loop would die with
    ``StopIteration`` after one pass over the data.
    """
    sampler = _find_sampler(loader)
    if isinstance(sampler, InfiniteSampler):
        sampler.indices = sampler._indices_of_rank()
