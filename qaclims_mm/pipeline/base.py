"""The contract between the pipeline runner and its stages.

A stage is one step of the WSSS pipeline (QAPE, a training run, CAM
inference, ...). It is a registered class (:data:`PIPELINE_STAGES`) built
from one entry of a pipeline config's ``stages`` list::

    dict(name='cam', type='TrainStage',
         inputs=dict(...), outputs=dict(...), **params)

The runner resolves every path before the stage is built: relative paths are
relative to the pipeline work dir, ``{name}`` placeholders are the files of
the config's ``files`` block; a stage only ever sees absolute paths. Later
stages read earlier outputs through these declared paths only.

The runner, not the stage, decides whether a stage runs: it fingerprints the
stage's :meth:`BaseStage.settings` and its inputs, skips a stage whose
manifest holds the same fingerprint, resumes one that was started with it,
and wipes and re-runs one whose settings or inputs changed.
"""
import os.path as osp
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, List, Optional

from mmengine.registry import Registry

#: Stage types of the pipeline runner (``type='TrainStage'`` etc.).
PIPELINE_STAGES = Registry('pipeline stage', scope='mmseg',
                           locations=['qaclims_mm.pipeline.stages'])


#: Suffixes of a "prefix" path: a text cache is declared as ``text/qa`` and
#: written as ``text/qa.json`` + ``text/qa.safetensors``.
PREFIX_SUFFIXES = ('.json', '.safetensors')


def path_exists(path: str) -> bool:
    """Whether ``path`` exists, as a file, a folder or a file prefix.

    Args:
        path (str): A declared input or output path.

    Returns:
        bool: True for an existing file or folder, or when every file of
        the prefix form (``<path>.json``, ``<path>.safetensors``) exists.
    """
    return osp.exists(path) or all(
        osp.isfile(path + suffix) for suffix in PREFIX_SUFFIXES)


class StageInputError(RuntimeError):
    """A declared input is missing or incomplete (names stage, path, count)."""


@dataclass
class StageContext:
    """What the runner hands to :meth:`BaseStage.run`.

    Args:
        work_dir (str): The pipeline work dir (absolute).
        stage_dir (str): ``<work_dir>/<stage name>``: logs, sub-run work
            dirs, the manifest. Exists when ``run`` is called.
        resume (bool): A run of this stage with the same fingerprint was
            started and not finished: continue it (training from the last
            checkpoint in ``stage_dir``; per-image stages skip the files
            already written). False on a fresh start (``stage_dir`` and
            the outputs were emptied).
        launcher (str): ``'none'``, ``'pytorch'``, ``'slurm'`` or ``'mpi'``.
        rank (int): This process's rank (0 when not distributed).
        world_size (int): Number of processes (1 when not distributed).
        amp (bool): Mixed precision for training stages (``--amp``).
        env_cfg (dict): The pipeline's ``env_cfg`` (``dist_cfg`` etc.);
            training stages run under it.
        progress (bool): Show progress bars.
        logger (Any): The pipeline's ``MMLogger``.
        upstream (dict): ``stage name -> manifest dict`` of the stages whose
            outputs this stage reads (their ``metrics`` / ``num_classes``).
    """
    work_dir: str
    stage_dir: str
    resume: bool = False
    launcher: str = 'none'
    rank: int = 0
    world_size: int = 1
    amp: bool = False
    env_cfg: Dict[str, Any] = field(default_factory=dict)
    progress: bool = True
    logger: Any = None
    upstream: Dict[str, dict] = field(default_factory=dict)

    @property
    def distributed(self) -> bool:
        """Whether more than one process runs the pipeline."""
        return self.world_size > 1


class BaseStage:
    """One step of the pipeline.

    Subclasses set :attr:`run_on` and implement :meth:`run`; most also
    override :meth:`check_inputs` and :meth:`num_classes`.

    Args:
        name (str): Unique stage name (also its folder under the work dir).
        inputs (dict): ``input name -> absolute path`` (files or folders
            that earlier stages or the user provide).
        outputs (dict): ``output name -> absolute path`` this stage writes.
        **params: The stage type's own settings (JSON-able values).
    """

    #: ``'all'``: every rank calls :meth:`run` (training under DDP,
    #: per-image stages that shard their ids); ``'rank0'``: only rank 0 runs
    #: it while the other ranks wait at a barrier.
    run_on: str = 'rank0'
    #: Input names the stage type requires (checked when the graph is built).
    required_inputs: tuple = ()
    #: Output names the stage type writes (checked when the graph is built).
    required_outputs: tuple = ()
    #: The stage trains a model and honours ``ctx.amp`` (``--amp``); the
    #: runner refuses ``--amp`` without CUDA before anything runs only when
    #: such a stage is about to run.
    uses_amp: bool = False

    def __init__(self, name: str, inputs: Optional[Dict[str, str]] = None,
                 outputs: Optional[Dict[str, str]] = None,
                 **params) -> None:
        self.name = name
        self.inputs = dict(inputs or {})
        self.outputs = dict(outputs or {})
        self.params = params
        for kind, names, given in (('input', self.required_inputs,
                                    self.inputs),
                                   ('output', self.required_outputs,
                                    self.outputs)):
            missing = [n for n in names if n not in given]
            if missing:
                raise KeyError(
                    f'stage {name!r} ({type(self).__name__}) lacks the '
                    f'{kind}s {missing}; it needs {list(names)}')

    def settings(self) -> Dict[str, Any]:
        """Everything besides the inputs that decides the outputs.

        Part of the stage fingerprint: a change re-runs the stage and every
        stage downstream of it. The default is the type and the params;
        config-based stages add their fully resolved sub-config.
        """
        return dict(type=type(self).__name__, params=self.params)

    def num_classes(self) -> Optional[int]:
        """Object classes (without background) this stage works with.

        The runner compares it with the producers of this stage's inputs
        before anything runs and refuses a mismatch. None: no opinion.
        """
        return None

    def check_inputs(self, ctx: StageContext) -> None:
        """Raise :class:`StageInputError` if an input is missing/incomplete.

        Called right before :meth:`run` (upstream outputs exist by then).
        The default checks that every input path exists.
        """
        for key, path in self.inputs.items():
            if not path_exists(path):
                raise StageInputError(
                    f'stage {self.name!r}: input {key!r} not found: {path}')

    def run(self, ctx: StageContext) -> Dict[str, Any]:
        """Do the work; return the stage's metrics (JSON-able, may be empty).

        Must be resumable: with ``ctx.resume`` continue what a killed run of
        the same settings left, never redo or duplicate finished work. Write
        files atomically. Under several ranks, never let two ranks write one
        file.
        """
        raise NotImplementedError

    def headline(self, metrics: Dict[str, Any]) -> Dict[str, Any]:
        """The metrics shown in the summary table (default: all scalars)."""
        return {k: v for k, v in metrics.items()
                if isinstance(v, (int, float, str))}


def require_files(stage: str, key: str, folder: str, ids: Iterable[str],
                  suffix: str) -> None:
    """Refuse a folder that lacks ``<id><suffix>`` for some of ``ids``.

    Args:
        stage (str): Stage name (for the message).
        key (str): Input name (for the message).
        folder (str): The folder.
        ids (Iterable[str]): Expected ids.
        suffix (str): File suffix, e.g. ``'.npz'``.

    Raises:
        StageInputError: naming the stage, the folder, how many of how many
            files are there, and the first missing ids.
    """
    ids = list(ids)
    if not osp.isdir(folder):
        raise StageInputError(
            f'stage {stage!r}: input {key!r} is not a folder: {folder}')
    missing: List[str] = [i for i in ids
                          if not osp.isfile(osp.join(folder, i + suffix))]
    if missing:
        raise StageInputError(
            f'stage {stage!r}: input {key!r} ({folder}) holds '
            f'{len(ids) - len(missing)} of the {len(ids)} expected '
            f'{suffix} files; missing e.g. {missing[:5]}')
