"""``TrainStage``: train one of our configs (CAM, RITC, CLIMS, IRN, DeepLab)."""
import glob
import json
import math
import os.path as osp
import shutil
from typing import Any, Dict, List

from ..base import PIPELINE_STAGES, StageContext
from .config_stage import ConfigStage, sub_run

#: The training run's folder under the stage dir.
TRAIN_SUBDIR = 'train'


@PIPELINE_STAGES.register_module()
class TrainStage(ConfigStage):
    """Train the sub-config, as ``tools/train.py`` does, under MMEngine DDP.

    Inputs: config keys only (data roots, ``load_from``, pseudo-mask dirs).
    Output ``checkpoint``: the final checkpoint, copied atomically by rank 0
    from the sub-run's work dir ``<stage_dir>/train``.

    Resume (``ctx.resume``): MMEngine resumes from the latest complete
    checkpoint in ``<stage_dir>/train``
    (:func:`~qaclims_mm.engine.resume.set_resume_checkpoint`); with the
    config's ``ReproducibleResumeHook`` the result equals an uninterrupted
    run. Without a checkpoint there, training starts from the start.

    Metrics: for every logged loss (``loss``, ``loss_cls``,
    ``decode.loss_ce``, ...) its last logged value and, as
    ``<key>_first``, its first one (from the sub-run's
    ``vis_data/scalars.json``, over resumed runs too), and ``iters``.
    """

    run_on = 'all'
    uses_amp = True
    required_outputs = ('checkpoint', )

    def run(self, ctx: StageContext) -> Dict[str, Any]:
        from ...engine.resume import set_resume_checkpoint
        cfg = self.build_config(ctx, TRAIN_SUBDIR)
        cfg.resume = False
        if ctx.resume:
            set_resume_checkpoint(cfg)
        with sub_run(ctx):
            runner = self.build_runner(cfg)
            runner.train()
        if ctx.rank == 0:
            copy_final_checkpoint(self.name, cfg.work_dir,
                                  self.outputs['checkpoint'])
        return training_metrics(cfg.work_dir)

    def headline(self, metrics: Dict[str, Any]) -> Dict[str, Any]:
        """The total loss, first and last."""
        return {k: metrics[k] for k in ('loss_first', 'loss', 'iters')
                if k in metrics}


def copy_final_checkpoint(stage: str, work_dir: str, dst: str) -> str:
    """Copy the checkpoint named in ``<work_dir>/last_checkpoint`` to ``dst``.

    Written under a temporary name and renamed, so ``dst`` is complete or
    absent.

    Raises:
        RuntimeError: naming the stage when the run saved no (complete)
            checkpoint.
    """
    from ...engine.resume import checkpoint_is_complete
    from ...utils.io import atomic_open
    pointer = osp.join(work_dir, 'last_checkpoint')
    if not osp.isfile(pointer):
        raise RuntimeError(f'stage {stage!r}: training saved no checkpoint '
                           f'({pointer} missing); check the config\'s '
                           f'default_hooks.checkpoint')
    with open(pointer) as f:
        src = f.read().strip()
    if not osp.isabs(src):
        src = osp.join(work_dir, osp.basename(src))
    if not checkpoint_is_complete(src):
        raise RuntimeError(f'stage {stage!r}: the final checkpoint {src} is '
                           f'missing or truncated')
    with open(src, 'rb') as fsrc, atomic_open(dst, 'wb') as fdst:
        shutil.copyfileobj(fsrc, fdst, 1 << 20)
    return dst


def _scalar_records(work_dir: str) -> List[dict]:
    """Every ``scalars.json`` record of the runs in ``work_dir``, in order."""
    records = []
    for path in sorted(glob.glob(osp.join(work_dir, '*', 'vis_data',
                                          'scalars.json'))):
        with open(path) as f:
            for line in f:
                line = line.strip()
                if not line:
                    continue
                try:
                    records.append(json.loads(line))
                except json.JSONDecodeError:
                    continue  # a line cut by a kill
    return records


def training_metrics(work_dir: str) -> Dict[str, Any]:
    """First and last logged value of each loss of a training work dir.

    Args:
        work_dir (str): The MMEngine work dir (one ``<timestamp>/vis_data``
            per run, resumed runs after the first).

    Returns:
        dict: ``<loss key>`` (last value), ``<loss key>_first`` and ``iters``
        (the last logged step); empty when nothing was logged.
    """
    first: Dict[str, float] = {}
    last: Dict[str, float] = {}
    step = None
    for record in _scalar_records(work_dir):
        losses = {k: v for k, v in record.items()
                  if 'loss' in k.split('.')[-1] and
                  isinstance(v, (int, float))}
        if not losses:
            continue
        step = record.get('step', step)
        for key, value in losses.items():
            first.setdefault(key, float(value))
            last[key] = float(value)
    metrics: Dict[str, Any] = {}
    for key in sorted(last):
        metrics[key] = _json_number(last[key])
        metrics[key + '_first'] = _json_number(first[key])
    if step is not None:
        metrics['iters'] = int(step)
    return metrics


def _json_number(value: float):
    """Finite floats as they are; NaN / inf as strings (valid JSON)."""
    return value if math.isfinite(value) else str(value)
