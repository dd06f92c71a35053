"""Helpers shared by the function-based stages: split ids, class names,
devices, the ``eval.json``-style records and rank sharding of per-image work.
"""
import json
import math
import os
import os.path as osp
from typing import Any, Callable, Dict, List, Optional, Sequence

from ...utils.io import atomic_write_text, read_split
from ..base import BaseStage, StageContext, StageInputError

#: Short dataset names accepted by the ``dataset`` param of the stages.
DATASET_ALIASES = dict(voc='VOC12WSSSDataset', coco='COCO14WSSSDataset')


class FunctionStage(BaseStage):
    """A stage that calls one stage API of the package.

    Its fingerprint leaves out :attr:`runtime_params`: settings that change
    where or how fast the work runs but not its outputs (the device,
    worker processes), so that moving a run does not re-run it.
    """

    #: Params that do not decide the outputs (not fingerprinted).
    runtime_params: tuple = ()

    def settings(self) -> Dict[str, Any]:
        params = {k: v for k, v in self.params.items()
                  if k not in self.runtime_params}
        return dict(type=type(self).__name__, params=params)


def read_split_ids(stage: str, key: str, path: str) -> List[str]:
    """The ids of a split file, or a :class:`StageInputError` naming it.

    Args:
        stage (str): Stage name (for the message).
        key (str): Input name (for the message).
        path (str): The id list, one id per line.

    Returns:
        list[str]: The ids, in file order (at least one).
    """
    if not osp.isfile(path):
        raise StageInputError(
            f'stage {stage!r}: input {key!r} (split file) not found: {path}')
    ids = read_split(path)
    if not ids:
        raise StageInputError(
            f'stage {stage!r}: input {key!r} ({path}) lists no image id')
    return ids


def dataset_metainfo(dataset: str = 'voc') -> Dict[str, Any]:
    """``classes`` (background first) and ``palette`` of a dataset.

    Args:
        dataset (str): ``'voc'``, ``'coco'``, a registered dataset type or a
            config file (its ``train_dataloader.dataset``). Defaults to
            ``'voc'``.

    Returns:
        dict: ``classes`` and ``palette``.
    """
    from ...utils.metainfo import dataset_metainfo as _metainfo
    return _metainfo(DATASET_ALIASES.get(dataset, dataset))


def default_device(device: Optional[str] = None) -> str:
    """``device`` or this process's GPU (``LOCAL_RANK``) or the CPU."""
    if device:
        return device
    import torch
    if torch.cuda.is_available():
        return f'cuda:{int(os.environ.get("LOCAL_RANK", 0))}'
    return 'cpu'


def finite_or_none(value: float) -> Optional[float]:
    """A float, or None for NaN / inf (JSON has no NaN)."""
    value = float(value)
    return value if math.isfinite(value) else None


def percent(value: float) -> Optional[float]:
    """A fraction in [0, 1] as a percentage (None for NaN)."""
    value = finite_or_none(value)
    return None if value is None else value * 100.


def write_json(path: str, record: Dict[str, Any]) -> None:
    """Write ``record`` atomically as indented JSON."""
    atomic_write_text(path, json.dumps(record, indent=2) + '\n')


def barrier(ctx: StageContext) -> None:
    """Wait for every rank (a no-op in a single process)."""
    if not ctx.distributed:
        return
    import torch.distributed as dist
    if not (dist.is_available() and dist.is_initialized()):
        raise RuntimeError(
            f'world size {ctx.world_size} but torch.distributed is not '
            f'initialised; the pipeline runner initialises it')
    dist.barrier()


def run_sharded(ctx: StageContext, stage: str, key: str, out_dir: str,
                ids: Sequence[str], suffix: str,
                write: Callable[[List[str]], Any]) -> None:
    """Run a per-image writer over this rank's share of ``ids``.

    Rank ``r`` of ``W`` writes the files of ``ids[r::W]`` (each file is
    written by one rank only). Rank 0 first calls ``write([])`` alone, so
    that it alone records the output folder's settings
    (:func:`~qaclims_mm.utils.output_settings.claim_output_dir`); the other
    ranks then find the record and only compare it. After a barrier rank 0
    checks that every file is there.

    Args:
        ctx (StageContext): The run context (rank, world size).
        stage (str): Stage name (for the completeness error).
        key (str): Output name (for the completeness error).
        out_dir (str): The output folder.
        ids (Sequence[str]): Every id of the split.
        suffix (str): Output file suffix (``'.png'``).
        write (Callable[[list[str]], Any]): Writes the files of the given
            ids into ``out_dir``, skipping those that exist.

    Raises:
        RuntimeError: on rank 0, when files are missing after the run
            (naming the stage, the folder and the count).
    """
    ids = list(ids)
    if ctx.distributed:
        if ctx.rank == 0:
            write([])
        barrier(ctx)
    write(ids[ctx.rank::ctx.world_size])
    barrier(ctx)
    if ctx.rank == 0:
        missing = [i for i in ids
                   if not osp.isfile(osp.join(out_dir, i + suffix))]
        if missing:
            raise RuntimeError(
                f'stage {stage!r}: output {key!r} ({out_dir}) holds '
                f'{len(ids) - len(missing)} of the {len(ids)} {suffix} files '
                f'after all {ctx.world_size} rank(s) finished; missing e.g. '
                f'{missing[:5]}')
