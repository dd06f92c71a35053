"""Read what MMEngine logged and saved during an end-to-end training run.

Shared by the ``*_e2e.py`` tests: the training numbers come from
``<work_dir>/<timestamp>/vis_data/scalars.json`` (one JSON record per logged
step), the weights from the checkpoints.
"""
import glob
import json
import math
import os
import os.path as osp
import shutil
from typing import Dict, Iterable, List, Optional, Sequence

import torch

# Log every iteration, unsmoothed, so that each record is one iteration.
PER_ITER_LOGGING = ['default_hooks.logger.interval=1',
                    'log_processor.window_size=1']


def scalar_files(work_dir: str) -> List[str]:
    """The ``scalars.json`` of every run in ``work_dir``, oldest first."""
    return sorted(glob.glob(osp.join(work_dir, '*', 'vis_data',
                                     'scalars.json')))


def train_records(work_dir: str, run: int = -1) -> List[dict]:
    """Training records (those with a ``loss``) of one run in ``work_dir``.

    Args:
        work_dir (str): The run's work dir.
        run (int): Which run (resumes add one each), by age. Defaults to the
            last one.
    """
    files = scalar_files(work_dir)
    assert files, f'no vis_data/scalars.json under {work_dir}'
    with open(files[run]) as f:
        records = [json.loads(line) for line in f if line.strip()]
    records = [r for r in records if 'loss' in r]
    assert records, f'no training record in {files[run]}'
    return records


def assert_losses_finite(records: Sequence[dict],
                         keys: Iterable[str]) -> None:
    """Every logged value of each loss in ``keys`` (and ``loss``) is finite
    and the keys are all logged."""
    for key in ['loss', *keys]:
        values = [r.get(key) for r in records]
        assert all(v is not None for v in values), f'{key} not logged'
        bad = [(r['step'], v) for r, v in zip(records, values)
               if not math.isfinite(v)]
        assert not bad, f'non-finite {key} at (step, value) {bad}'


def assert_loss_decreases(records: Sequence[dict], key: str = 'loss',
                          head: int = 1, tail: Optional[int] = None) -> None:
    """The mean of the last ``tail`` values of ``key`` is below the mean of
    the first ``head`` ones (``tail`` defaults to a third of the run)."""
    values = [r[key] for r in records]
    tail = tail or max(1, len(values) // 3)
    assert len(values) >= head + tail, values
    first = sum(values[:head]) / head
    last = sum(values[-tail:]) / tail
    assert last < first, f'{key} does not decrease: {values}'


def load_state_dict(path: str) -> Dict[str, torch.Tensor]:
    """The model weights of a checkpoint (ours or MMEngine's)."""
    ckpt = torch.load(path, map_location='cpu', weights_only=True)
    return ckpt.get('state_dict', ckpt)


def assert_weights_changed(initial: Dict[str, torch.Tensor], ckpt: str,
                           keys: Iterable[str]) -> None:
    """Each of ``keys`` (trainable parameters) moved away from ``initial``."""
    trained = load_state_dict(ckpt)
    for key in keys:
        assert key in trained, f'{key} missing from {ckpt}'
        delta = (trained[key].float() - initial[key].float()).abs().max()
        assert delta > 1e-6, f'{key} did not change during training ({ckpt})'


def assert_same_weights(ckpt_a: str, ckpt_b: str) -> None:
    """The two checkpoints hold bit-identical model weights."""
    a, b = load_state_dict(ckpt_a), load_state_dict(ckpt_b)
    assert a.keys() == b.keys()
    differ = [k for k in a if not torch.equal(a[k], b[k])]
    assert not differ, (f'{len(differ)} tensors differ between {ckpt_a} and '
                        f'{ckpt_b}, e.g. {differ[:5]}')


def interrupted_copy(work_dir: str, ckpt_name: str, dst: str) -> str:
    """A work dir as a run killed right after saving ``ckpt_name`` leaves it:
    that checkpoint, named in ``last_checkpoint``."""
    os.makedirs(dst)
    shutil.copy(osp.join(work_dir, ckpt_name), osp.join(dst, ckpt_name))
    with open(osp.join(dst, 'last_checkpoint'), 'w') as f:
        f.write(osp.join(dst, ckpt_name))
    return dst
