"""Tiny stage types for the runner tests (no ML, milliseconds each).

Importable as ``runner_toy_stages`` (pytest puts this folder on
``sys.path``; subprocess tests add it to ``PYTHONPATH`` and list the module
in the pipeline config's ``custom_imports``). Every call of ``run`` appends
``<name> resume=<bool>`` to ``<work_dir>/calls.log``, so tests can see which
stages ran and how.
"""
import glob
import os
import os.path as osp
import time
from typing import Any, Dict, Optional

from qaclims_mm.pipeline import PIPELINE_STAGES, BaseStage, StageContext
from qaclims_mm.utils.io import atomic_write_text


def _log_call(ctx: StageContext, name: str) -> None:
    with open(osp.join(ctx.work_dir, 'calls.log'), 'a') as f:
        f.write(f'{name} resume={ctx.resume}\n')


def read_calls(work_dir: str) -> list:
    """The lines of ``calls.log`` (empty when nothing ran)."""
    path = osp.join(work_dir, 'calls.log')
    if not osp.isfile(path):
        return []
    with open(path) as f:
        return f.read().split('\n')[:-1]


class _Toy(BaseStage):

    def __init__(self, name, inputs=None, outputs=None,
                 num_classes: Optional[int] = None, **params) -> None:
        super().__init__(name, inputs, outputs, num_classes=num_classes,
                         **params)
        self._num_classes = num_classes

    def num_classes(self) -> Optional[int]:
        return self._num_classes


@PIPELINE_STAGES.register_module(force=True)
class ToyWriteStage(_Toy):
    """Writes ``n`` files ``<i>.txt`` holding ``value * i``, one by one
    (``delay`` seconds each); with ``ctx.resume`` it skips existing ones."""
    required_outputs = ('out',)

    def run(self, ctx: StageContext) -> Dict[str, Any]:
        _log_call(ctx, self.name)
        out = self.outputs['out']
        os.makedirs(out, exist_ok=True)
        written = 0
        for i in range(self.params.get('n', 5)):
            path = osp.join(out, f'{i:03d}.txt')
            if ctx.resume and osp.isfile(path):
                continue
            time.sleep(self.params.get('delay', 0.0))
            atomic_write_text(path, str(self.params.get('value', 1) * i))
            written += 1
        return dict(written=written)


def _read_numbers(path: str) -> list:
    files = sorted(glob.glob(osp.join(path, '*.txt'))) if osp.isdir(
        path) else [path]
    numbers = []
    for file in files:
        with open(file) as f:
            numbers += [int(x) for x in f.read().split()]
    return numbers


@PIPELINE_STAGES.register_module(force=True)
class ToySumStage(_Toy):
    """Writes ``scale * sum`` of the integers of ``numbers`` (a file or the
    ``*.txt`` of a folder) to the ``total`` file; metric ``total``."""
    required_inputs = ('numbers',)
    required_outputs = ('total',)

    def run(self, ctx: StageContext) -> Dict[str, Any]:
        _log_call(ctx, self.name)
        total = self.params.get('scale', 1) * sum(
            _read_numbers(self.inputs['numbers']))
        atomic_write_text(self.outputs['total'], f'{total}\n')
        return dict(total=total, mIoU=12.345678)


@PIPELINE_STAGES.register_module(force=True)
class ToyTrainStage(ToySumStage):
    """A ToySumStage that claims to train (honours ``--amp``)."""
    uses_amp = True


@PIPELINE_STAGES.register_module(force=True)
class ToyLazyStage(_Toy):
    """Declares an output it never writes."""
    required_outputs = ('out',)

    def run(self, ctx: StageContext) -> Dict[str, Any]:
        _log_call(ctx, self.name)
        return {}


@PIPELINE_STAGES.register_module(force=True)
class ToyShardStage(_Toy):
    """Runs on every rank; rank r writes the files ``r::world_size`` of
    ``n`` (content ``value * i``), skipping existing ones on resume."""
    run_on = 'all'
    required_outputs = ('out',)

    def run(self, ctx: StageContext) -> Dict[str, Any]:
        with open(osp.join(ctx.work_dir, f'calls.rank{ctx.rank}.log'),
                  'a') as f:
            f.write(f'{self.name} resume={ctx.resume}\n')
        out = self.outputs['out']
        os.makedirs(out, exist_ok=True)
        for i in range(ctx.rank, self.params.get('n', 6), ctx.world_size):
            path = osp.join(out, f'{i:03d}.txt')
            if not (ctx.resume and osp.isfile(path)):
                atomic_write_text(path, str(self.params.get('value', 1) * i))
        return dict(world_size=ctx.world_size)
