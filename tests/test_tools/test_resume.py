"""Exact resume: the random state depends only on the position in training
(ReproducibleResumeHook), and --resume skips a truncated last checkpoint."""
import importlib.util
import itertools
import json
import os.path as osp
import random
from functools import partial
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import InfiniteSampler
from mmengine.dataset import worker_init_fn as mmengine_worker_init_fn
from mmengine.model import BaseModel
from mmengine.runner import Runner
from mmengine.runner.loops import _InfiniteDataloaderIterator
from torch import nn
from torch.utils.data import DataLoader, Dataset

from qaclims_mm.engine.hooks import ReproducibleResumeHook
from qaclims_mm.engine.resume import (checkpoint_is_complete,
                                      find_resumable_checkpoint)

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


class RandomDraws(Dataset):
    """Each item: its index, then draws from the three generators an
    augmentation uses."""

    def __len__(self) -> int:
        return 6

    def __getitem__(self, index: int) -> torch.Tensor:
        return torch.tensor([
            float(index),
            float(np.random.randint(1 << 30)),
            float(random.randint(0, 1 << 30)),
            float(torch.randint(1 << 30, (1, )).item())
        ], dtype=torch.float64)


def make_loader(num_workers: int, sampler_seed=None,
                persistent=None) -> DataLoader:
    """Like MMEngine's: its default worker_init_fn (seed 0), persistent
    workers when there are workers (unless ``persistent`` says otherwise),
    and an ``InfiniteSampler`` seeded with ``sampler_seed`` if given."""
    init_fn = None
    if num_workers:
        init_fn = partial(mmengine_worker_init_fn, num_workers=num_workers,
                          rank=0, seed=0)
    sampler = None
    if sampler_seed is not None:
        sampler = InfiniteSampler(RandomDraws(), seed=sampler_seed)
    if persistent is None:
        persistent = num_workers > 0
    return DataLoader(RandomDraws(), batch_size=2, num_workers=num_workers,
                      sampler=sampler, persistent_workers=persistent,
                      worker_init_fn=init_fn)


def epoch_runner(loader: DataLoader) -> SimpleNamespace:
    return SimpleNamespace(seed=0, epoch=0,
                           train_loop=SimpleNamespace(dataloader=loader))


def run_epochs(loader, epochs, hook=True):
    """One list of draws per epoch (data, then a 'dropout' draw), as an
    epoch-based loop with the hook makes them."""
    runner = epoch_runner(loader)
    hook = ReproducibleResumeHook() if hook else None
    if hook:
        hook.before_train(runner)
    draws = []
    for epoch in epochs:
        runner.epoch = epoch
        if hook:
            hook.before_train_epoch(runner)
        batches = [b for b in loader]
        draws.append(torch.cat(batches).tolist() + [torch.rand(1).item()])
        torch.rand(3)  # validation between epochs draws too
    return draws


@pytest.mark.parametrize('num_workers', [0, 2])
def test_epoch_randomness_depends_only_on_the_epoch(num_workers):
    uninterrupted = run_epochs(make_loader(num_workers), [0, 1, 2])
    seed_all(123)
    resumed = run_epochs(make_loader(num_workers), [2])
    assert resumed[0] == uninterrupted[2]
    # and each epoch gets new augmentations
    assert uninterrupted[0][:-1] != uninterrupted[1][:-1]


def test_without_the_hook_resume_draws_differ():
    """What the hook fixes: persistent workers carry on across epochs."""
    torch.manual_seed(0)
    uninterrupted = run_epochs(make_loader(2), [0, 1, 2], hook=False)
    torch.manual_seed(0)
    resumed = run_epochs(make_loader(2), [2], hook=False)
    assert resumed[0] != uninterrupted[2]


def iter_runner(loader: DataLoader):
    loop = SimpleNamespace(dataloader=loader,
                           dataloader_iterator=_InfiniteDataloaderIterator(
                               loader))
    return SimpleNamespace(seed=0, epoch=0, train_loop=loop)


def seed_all(seed):
    torch.manual_seed(seed), np.random.seed(seed), random.seed(seed)


def run_iters(num_workers, start, stop, val_after=(), **loader_kwargs):
    """Draws of batches ``start..stop-1`` (batch then 'dropout' draw) of an
    iteration-based loop resumed at ``start`` (MMEngine replays the first
    ``start`` batches)."""
    seed_all(0)  # the runner seeds before building the loop, in both runs
    runner = iter_runner(make_loader(num_workers, **loader_kwargs))
    seed_all(start)  # loading a checkpoint to resume, etc.
    hook = ReproducibleResumeHook()
    hook.before_train(runner)
    hook.before_train_epoch(runner)
    iterator = runner.train_loop.dataloader_iterator
    for _ in range(start):
        next(iterator)
    draws = []
    for i in range(start, stop):
        batch = next(iterator)
        draws.append(batch.flatten().tolist() + [torch.rand(1).item()])
        if i in val_after:
            torch.rand(5)
    return draws


@pytest.mark.parametrize('num_workers', [0, 2])
def test_iteration_resume_replays_the_same_batches(num_workers, monkeypatch):
    monkeypatch.setattr('mmengine.runner.loops.time.sleep', lambda s: None)
    # 3 batches per pass over the data: batches 3 and 4 are in the second
    uninterrupted = run_iters(num_workers, 0, 5, val_after=(1, ))
    resumed = run_iters(num_workers, 2, 5)
    assert resumed == uninterrupted[2:]


@pytest.mark.parametrize('num_workers,persistent', [(0, False), (2, False),
                                                    (2, True)])
def test_iteration_loop_with_infinite_sampler_outlives_one_pass(
        num_workers, persistent):
    """The hook restarts the loop's iterator; InfiniteSampler's one shared
    index generator must survive that (it was closed with the discarded
    iterator: StopIteration after the prefetched batches), and start from the
    run's seed (1234 was the sampler's, 0 the checkpoint's)."""
    draws = run_iters(num_workers, 0, 10, sampler_seed=1234,
                      persistent=persistent)  # 3 batches per pass
    order = [int(d[i]) for d in draws for i in (0, 4)]
    expected = itertools.islice(iter(InfiniteSampler(RandomDraws(), seed=0)),
                                20)
    assert order == list(expected)


@pytest.mark.parametrize('num_workers', [0, 2])
def test_iteration_resume_with_infinite_sampler(num_workers):
    uninterrupted = run_iters(num_workers, 0, 8, sampler_seed=0)
    resumed = run_iters(num_workers, 5, 8, sampler_seed=0)
    assert resumed == uninterrupted[5:]


class AugmentedPoints(Dataset):
    """Six 4-d points 'augmented' with NumPy noise (as a transform would)."""

    def __len__(self) -> int:
        return 6

    def __getitem__(self, index: int) -> dict:
        point = torch.arange(4, dtype=torch.float32) + index
        noise = torch.from_numpy(np.random.rand(4).astype(np.float32))
        return dict(inputs=point + noise)


class DropoutRegressor(BaseModel):
    """A linear model with dropout: its loss depends on torch's generator."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(4, 1)
        self.dropout = nn.Dropout(0.5)

    def forward(self, inputs, data_samples=None, mode='tensor'):
        out = self.linear(self.dropout(torch.stack(inputs)))
        if mode == 'loss':
            return dict(loss=(out - 1).pow(2).mean())
        return out


def train_iters(work_dir: str, name: str, resume_from=None) -> dict:
    """An 8-iteration run, batch 2 over 6 items (so 2.7 passes), 2 workers,
    InfiniteSampler, the hook; returns ``{iter: loss}`` from scalars.json."""
    runner = Runner(
        model=DropoutRegressor(),
        work_dir=work_dir,
        experiment_name=name,
        train_dataloader=dict(
            dataset=AugmentedPoints(), batch_size=2, num_workers=2,
            persistent_workers=False,
            sampler=dict(type='InfiniteSampler', shuffle=True)),
        train_cfg=dict(by_epoch=False, max_iters=8, val_interval=100),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.05)),
        default_hooks=dict(
            logger=dict(type='LoggerHook', interval=1),
            checkpoint=dict(type='CheckpointHook', by_epoch=False,
                            interval=4)),
        custom_hooks=[ReproducibleResumeHook()],
        log_processor=dict(by_epoch=False),
        randomness=dict(seed=0),
        load_from=resume_from,
        resume=resume_from is not None,
        default_scope='mmseg')
    runner.train()
    with open(osp.join(runner.log_dir, 'vis_data', 'scalars.json')) as f:
        return {r['iter']: r['loss'] for r in map(json.loads, f)
                if 'loss' in r}


def test_iteration_run_with_workers_and_resume(tmp_path):
    """The runner end to end: an iteration-based run with DataLoader workers
    goes on past the end of the data (it raised StopIteration after the
    first pass), and resuming it at iteration 4 logs the same losses."""
    full = train_iters(str(tmp_path / 'full'), 'iterbug_full')
    assert sorted(full) == list(range(1, 9))
    resumed = train_iters(str(tmp_path / 'resumed'), 'iterbug_resumed',
                          resume_from=str(tmp_path / 'full' / 'iter_4.pth'))
    assert sorted(resumed) == [5, 6, 7, 8]
    assert resumed == {i: full[i] for i in (5, 6, 7, 8)}
    assert len(set(full.values())) == 8  # the data and dropout do vary

def save(path, step):
    torch.save({'state_dict': {'w': torch.full((64, ), float(step))}}, path)


def truncate(path):
    with open(path, 'rb') as f:
        data = f.read()
    with open(path, 'wb') as f:
        f.write(data[:len(data) // 2])


def test_find_resumable_checkpoint(tmp_path):
    work = str(tmp_path)
    assert find_resumable_checkpoint(work) is None  # nothing to resume
    for step in (1, 2, 3):
        save(tmp_path / f'epoch_{step}.pth', step)
    (tmp_path / 'iter_9.pth').write_bytes(b'')  # another kind: never used
    pointer = tmp_path / 'last_checkpoint'
    pointer.write_text(str(tmp_path / 'epoch_3.pth'))
    assert find_resumable_checkpoint(work) == str(tmp_path / 'epoch_3.pth')

    truncate(tmp_path / 'epoch_3.pth')
    assert not checkpoint_is_complete(str(tmp_path / 'epoch_3.pth'))
    with pytest.warns(UserWarning, match='epoch_3.pth.*truncated'):
        assert find_resumable_checkpoint(work) == str(tmp_path /
                                                      'epoch_2.pth')
    (tmp_path / 'epoch_3.pth').unlink()  # named but missing: same
    with pytest.warns(UserWarning, match='previous one'):
        assert find_resumable_checkpoint(work) == str(tmp_path /
                                                      'epoch_2.pth')
    truncate(tmp_path / 'epoch_2.pth')
    truncate(tmp_path / 'epoch_1.pth')
    with pytest.raises(RuntimeError, match='epoch_3.pth, .*epoch_2.pth'):
        find_resumable_checkpoint(work)


def test_train_resume_overrides_the_configs_load_from(tmp_path):
    """QA-CLIMS configs set load_from to the initial CAM checkpoint: --resume
    continues from the work dir, not from there."""
    spec = importlib.util.spec_from_file_location(
        'train_tool', osp.join(REPO, 'tools/train.py'))
    train_tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(train_tool)
    cfg = Config(dict(work_dir=str(tmp_path), load_from='baseline_cam.pth',
                      resume=False))
    train_tool.set_resume_checkpoint(cfg)  # nothing saved yet: fresh start
    assert cfg.resume is False and cfg.load_from == 'baseline_cam.pth'
    save(tmp_path / 'iter_4.pth', 4)
    (tmp_path / 'last_checkpoint').write_text(str(tmp_path / 'iter_4.pth'))
    train_tool.set_resume_checkpoint(cfg)
    assert cfg.resume is True
    assert cfg.load_from == str(tmp_path / 'iter_4.pth')


def test_sampler_gets_the_checkpoints_seed():
    """Without randomness.seed each run draws a seed; MMEngine restores the
    checkpoint's only after building the sampler: the hook aligns them."""
    from mmengine.dataset import DefaultSampler
    loader = DataLoader(RandomDraws(), batch_size=2,
                        sampler=DefaultSampler(RandomDraws(), seed=1234))
    order = [int(i) for i in loader.sampler]
    runner = epoch_runner(loader)  # seed 0, as restored from a checkpoint
    ReproducibleResumeHook().before_train(runner)
    assert loader.sampler.seed == 0
    assert [int(i) for i in loader.sampler] == [
        int(i) for i in DefaultSampler(RandomDraws(), seed=0)]
    assert order != [int(i) for i in loader.sampler]
