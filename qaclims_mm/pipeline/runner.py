"""``WSSSPipelineRunner``: one config runs the whole WSSS pipeline.

Registered in MMSegmentation's ``RUNNERS``, so the stock ``tools/train.py``
builds it for a config with ``runner_type='WSSSPipelineRunner'``
(``RUNNERS.build(cfg)``, then ``runner.train()``). The runner

1. resolves and validates the stage graph (:func:`~.graph.build_graph`)
   when it is built: nothing runs on a config with problems;
2. on :meth:`WSSSPipelineRunner.train`: initialises the process group once
   (``launcher != 'none'``), refuses missing provided files (all listed, with
   their help) and selected stages that read outputs of an unselected,
   incomplete stage, and plans each selected stage from its key
   (:func:`~.fingerprint.stage_key`) and its records (:mod:`.manifest`):
   skip a complete stage, resume a started one, wipe and re-run a changed one;
3. runs the stages in order (``run_on='rank0'`` stages on rank 0 while the
   other ranks wait, ``'all'`` stages on every rank), writes each manifest on
   rank 0 once every declared output exists, logs one line per stage to the
   terminal and ``<work_dir>/pipeline.log`` and hands the records to the
   report (``summary.json``, ``report.md``).

See docs/pipeline.md.
"""
import itertools
import os
import os.path as osp
import shutil
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable, Dict, List, Optional, Sequence, Union

from mmengine import dist
from mmengine.config import Config
from mmengine.logging import MMLogger
from mmseg.registry import RUNNERS

from .base import (PREFIX_SUFFIXES, StageContext, StageInputError,
                   path_exists)
from .fingerprint import canonical_json, path_fingerprint, stage_key
from .graph import (PipelineConfigError, PipelineGraph, StageNode,
                    build_graph, check_provided_files)
from .manifest import (read_manifest, read_started_key, remove_started,
                       write_manifest, write_started)

from .report import (build_pipeline_visualizer, finish_report, record_stage,
                     validate_report_cfg)

_LOGGER_IDS = itertools.count()
#: Decisions of the plan.
SKIP, RESUME, RUN = 'skip', 'resume', 'run'
_STATUS = {SKIP: 'skipped', RESUME: 'resumed', RUN: 'ran'}


@dataclass
class StagePlan:
    """What the runner does with one selected stage (decided on rank 0).

    Args:
        name (str): Stage name.
        key (str): The stage's key (settings + input fingerprints).
        action (str): ``'skip'``, ``'resume'`` or ``'run'``.
        reason (str): Why, for the log.
        inputs (dict): ``input name -> dict(path, fingerprint, source)``.
    """
    name: str
    key: str
    action: str
    reason: str
    inputs: Dict[str, dict] = field(default_factory=dict)


def select_stages(names: Sequence[str],
                  run_stages: Union[None, str, Sequence[str]] = None,
                  from_stage: Optional[str] = None) -> List[str]:
    """The stages to run, in pipeline order.

    Args:
        names (Sequence[str]): All stage names, in order.
        run_stages (str | Sequence[str], optional): Only these (a list, or
            one string with comma-separated names). None: all.
        from_stage (str, optional): Only this one and the ones after it.

    Returns:
        list[str]: The selected names (both selections apply).

    Raises:
        PipelineConfigError: naming unknown stages.
    """
    if isinstance(run_stages, str):
        run_stages = [s.strip() for s in run_stages.split(',') if s.strip()]
    problems = []
    wanted = set(names)
    if run_stages is not None:
        unknown = [s for s in run_stages if s not in names]
        if unknown:
            problems.append(f'run_stages names unknown stages {unknown}')
        wanted &= set(run_stages)
    if from_stage is not None:
        if from_stage not in names:
            problems.append(f'from_stage names the unknown stage '
                            f'{from_stage!r}')
        else:
            wanted &= set(names[list(names).index(from_stage):])
    if problems:
        raise PipelineConfigError(
            [p + f'; the pipeline has {list(names)}' for p in problems])
    return [n for n in names if n in wanted]


def is_pipeline_config(cfg: Config) -> bool:
    """Whether ``cfg`` is run by :class:`WSSSPipelineRunner` (its
    ``runner_type`` names it or a subclass)."""
    runner_type = cfg.get('runner_type')
    if isinstance(runner_type, str):
        runner_type = RUNNERS.get(runner_type)
    return isinstance(runner_type, type) and issubclass(
        runner_type, WSSSPipelineRunner)


def _format_seconds(seconds: float) -> str:
    if seconds < 10:
        return f'{seconds:.1f} s'
    if seconds < 3600:
        return f'{seconds:.0f} s'
    return f'{int(seconds // 3600)} h {int(seconds % 3600 // 60):02d} min'


def _format_metrics(metrics: Dict[str, Any]) -> str:
    parts = []
    for key, value in metrics.items():
        if isinstance(value, float):
            value = f'{value:.4g}'
        parts.append(f'{key} {value}')
    return ', '.join(parts)


def _remove(path: str) -> None:
    """Delete a file, link, folder or file prefix if it exists."""
    if osp.islink(path) or osp.isfile(path):
        os.remove(path)
    elif osp.isdir(path):
        shutil.rmtree(path)
    for suffix in PREFIX_SUFFIXES:
        if osp.isfile(path + suffix):
            os.remove(path + suffix)


@RUNNERS.register_module()
class WSSSPipelineRunner:
    """Runs the stages of a pipeline config, resumably, on one or N ranks.

    Built by :meth:`from_cfg` (what ``RUNNERS.build`` calls). The graph is
    validated here, so a config with problems fails before anything runs.

    Args:
        work_dir (str): The pipeline work dir (relative paths of stage
            inputs/outputs are relative to it).
        stages (Sequence[dict]): The ``stages`` block: dicts with
            ``name``, ``type``, ``inputs``, ``outputs`` and the stage type's
            params (at the top level or under ``params``).
        files (dict, optional): The ``files`` block: ``name ->
            dict(path=..., help=...)``, paths relative to the current dir.
        run_stages (str | Sequence[str], optional): Run only these stages.
        from_stage (str, optional): Run this stage and the ones after it.
        launcher (str): ``'none'``, ``'pytorch'``, ``'slurm'`` or ``'mpi'``.
        env_cfg (dict, optional): The config's ``env_cfg``;
            ``env_cfg['dist_cfg']`` initialises the process group.
        amp (bool): Train with mixed precision (``--amp``).
        log_level (str): Level of the pipeline log.
        config_dir (str, optional): Folder of the pipeline config (sub-config
            paths are relative to it, then to the current dir).
        cfg (Config, optional): The whole pipeline config (for the report).
        default_scope (str): Registry scope set while stages run.
        progress (bool): Let stages show progress bars.
    """

    def __init__(self,
                 work_dir: str,
                 stages: Sequence[dict],
                 files: Optional[dict] = None,
                 run_stages: Union[None, str, Sequence[str]] = None,
                 from_stage: Optional[str] = None,
                 launcher: str = 'none',
                 env_cfg: Optional[dict] = None,
                 amp: bool = False,
                 log_level: str = 'INFO',
                 config_dir: Optional[str] = None,
                 cfg: Optional[Config] = None,
                 default_scope: str = 'mmseg',
                 progress: bool = True) -> None:
        self.work_dir = osp.normpath(osp.abspath(work_dir))
        self.launcher = launcher or 'none'
        self.env_cfg = dict(env_cfg or {})
        self.amp = bool(amp)
        self.log_level = log_level
        self.cfg = cfg if cfg is not None else Config(dict())
        self.default_scope = default_scope
        self.progress = progress
        self.graph: PipelineGraph = build_graph(files, stages, self.work_dir,
                                                config_dir)
        self.selected = select_stages([n.name for n in self.graph.nodes],
                                      run_stages, from_stage)
        problems = validate_report_cfg(
            self.cfg.get('report'), {n.name: n.type for n in self.graph.nodes})
        if problems:
            raise PipelineConfigError(problems, title='bad report block')
        self.rank, self.world_size = 0, 1  # set by train()
        self.logger: Optional[MMLogger] = None
        self.records: List[dict] = []

    @classmethod
    def from_cfg(cls, cfg: Config) -> 'WSSSPipelineRunner':
        """Build the runner from a pipeline config.

        Reads the keys MMSegmentation's ``tools/train.py`` sets: ``work_dir``,
        ``launcher``, ``resume`` (a no-op: the pipeline always resumes) and
        ``optim_wrapper.type`` (``'AmpOptimWrapper'`` after ``--amp``).

        Args:
            cfg (Config): The pipeline config.

        Returns:
            WSSSPipelineRunner: The runner (graph validated).
        """
        if not isinstance(cfg, Config):
            cfg = Config(cfg)
        work_dir = cfg.get('work_dir')
        if work_dir is None:
            name = (osp.splitext(osp.basename(cfg.filename))[0]
                    if cfg.filename else 'pipeline')
            work_dir = osp.join('./work_dirs', name)
        optim_wrapper = cfg.get('optim_wrapper') or {}
        return cls(
            work_dir=work_dir,
            stages=cfg.get('stages') or [],
            files=cfg.get('files'),
            run_stages=cfg.get('run_stages'),
            from_stage=cfg.get('from_stage'),
            launcher=cfg.get('launcher', 'none'),
            env_cfg=cfg.get('env_cfg'),
            amp=optim_wrapper.get('type') == 'AmpOptimWrapper',
            log_level=cfg.get('log_level', 'INFO'),
            config_dir=(osp.dirname(osp.abspath(cfg.filename))
                        if cfg.filename else None),
            cfg=cfg,
            default_scope=cfg.get('default_scope') or 'mmseg')

    # ----------------------------------------------------------------- ranks
    def _setup_dist(self) -> None:
        """Initialise the process group once (``launcher != 'none'``)."""
        if self.launcher != 'none' and not dist.is_distributed():
            dist.init_dist(self.launcher,
                           **dict(self.env_cfg.get('dist_cfg') or {}))
        self.rank, self.world_size = dist.get_dist_info()

    def _barrier(self) -> None:
        if self.world_size > 1:
            dist.barrier()

    def _on_rank0(self, fn: Callable[[], Any], what: str) -> Any:
        """Call ``fn`` on rank 0; every rank gets its result or its error."""
        if self.world_size == 1:
            return fn()
        box: List[Any] = [None, None]
        error = None
        if self.rank == 0:
            try:
                box[1] = fn()
            except BaseException as e:  # re-raised below, after telling all
                error = e
                box[0] = f'{type(e).__name__}: {e}'
        dist.broadcast_object_list(box, src=0)
        if error is not None:
            raise error
        if box[0] is not None:
            raise RuntimeError(f'{what} failed on rank 0: {box[0]}')
        return box[1]

    def _on_all(self, fn: Callable[[], Any], what: str) -> Any:
        """Call ``fn`` on every rank; if one fails, every rank raises."""
        if self.world_size == 1:
            return fn()
        result, error, message = None, None, None
        try:
            result = fn()
        except BaseException as e:  # re-raised below, after telling all
            error, message = e, f'{type(e).__name__}: {e}'
        messages = dist.all_gather_object(message)
        if error is not None:
            raise error
        failed = [(r, m) for r, m in enumerate(messages) if m is not None]
        if failed:
            rank, message = failed[0]
            raise RuntimeError(f'{what} failed on rank {rank}: {message}')
        return result

    # --------------------------------------------------------------- logging
    def _setup_logger(self) -> None:
        if self.rank == 0:
            os.makedirs(self.work_dir, exist_ok=True)
        self._barrier()
        self.logger = MMLogger.get_instance(
            f'qaclims_pipeline_{os.getpid()}_{next(_LOGGER_IDS)}',
            log_file=osp.join(self.work_dir, 'pipeline.log'),
            log_level=self.log_level, file_mode='a')

    def _close_logger(self) -> None:
        for handler in list(self.logger.handlers):
            if hasattr(handler, 'baseFilename'):
                handler.close()
                self.logger.removeHandler(handler)

    def _log(self, message: str) -> None:
        if self.rank == 0:
            self.logger.info(message)

    # ------------------------------------------------------------------ plan
    def stage_dir(self, name: str) -> str:
        """``<work_dir>/<name>``: the stage's folder (manifest, logs)."""
        return osp.join(self.work_dir, name)

    def _complete_manifest(self, node: StageNode) -> Optional[dict]:
        """The manifest of ``node`` if it exists and its outputs do."""
        manifest = read_manifest(self.stage_dir(node.name))
        if manifest is None or not all(
                path_exists(p) for p in node.outputs.values()):
            return None
        return manifest

    def _check_unselected_producers(self) -> Dict[str, dict]:
        """Manifests of unselected stages that selected ones read.

        Raises:
            PipelineConfigError: one problem per selected stage input whose
                unselected producer has not completed.
        """
        problems, manifests = [], {}
        selected = set(self.selected)
        for node in self.graph.nodes:
            if node.name not in selected:
                continue
            for key, src in node.sources.items():
                if src.kind != 'stage' or src.name in selected:
                    continue
                producer = self.graph.node(src.name)
                if src.name not in manifests:
                    manifests[src.name] = self._complete_manifest(producer)
                if manifests[src.name] is None:
                    problems.append(
                        f'stage {node.name!r} reads {node.inputs[key]} '
                        f'(output {src.output!r} of stage {src.name!r}), but '
                        f'{src.name!r} is not selected (run_stages / '
                        'from_stage) and has not completed (no manifest in '
                        f'{self.stage_dir(src.name)} or outputs missing): '
                        f'select it too or run it first')
        if problems:
            raise PipelineConfigError(
                problems, title='the selected stages cannot run')
        return {k: v for k, v in manifests.items() if v is not None}

    def _input_fingerprint(self, node: StageNode, key: str,
                           keys: Dict[str, str]) -> dict:
        path, src = node.inputs[key], node.sources[key]
        if src.kind == 'file':
            fingerprint = path_fingerprint(path)
        else:
            out = self.graph.node(src.name).outputs[src.output]
            sub = osp.relpath(path, out)
            fingerprint = f'stage:{src.name}:{keys[src.name]}' + (
                '' if sub == '.' else f':{sub}')
        return dict(path=path, fingerprint=fingerprint, source=src.name)

    def _decide(self, node: StageNode, key: str,
                inputs: Dict[str, dict]) -> StagePlan:
        stage_dir = self.stage_dir(node.name)
        manifest = read_manifest(stage_dir)
        if manifest is not None and manifest.get('key') == key:
            missing = [k for k, p in node.outputs.items()
                       if not path_exists(p)]
            if not missing:
                return StagePlan(node.name, key, SKIP, 'complete', inputs)
            return StagePlan(node.name, key, RUN,
                             f'complete, but outputs {missing} are missing',
                             inputs)
        if read_started_key(stage_dir) == key:
            return StagePlan(node.name, key, RESUME,
                             'started and not finished', inputs)
        if manifest is None:
            return StagePlan(node.name, key, RUN, 'new', inputs)
        return StagePlan(node.name, key, RUN,
                         self._change_reason(node, manifest, inputs), inputs)

    @staticmethod
    def _change_reason(node: StageNode, manifest: dict,
                       inputs: Dict[str, dict]) -> str:
        """Why a complete stage re-runs (settings / which inputs)."""
        reasons = []
        if canonical_json(manifest.get('settings')) != canonical_json(
                node.stage.settings()):
            reasons.append('settings changed')
        old = manifest.get('inputs') or {}
        changed = [k for k, v in inputs.items()
                   if (old.get(k) or {}).get('fingerprint') !=
                   v['fingerprint']]
        if changed:
            reasons.append(f'inputs changed: {changed}')
        return '; '.join(reasons) or 'key changed'

    def _plan(self) -> List[StagePlan]:
        """Decide what happens to each selected stage (rank 0).

        Raises:
            PipelineConfigError: missing provided files (all listed), or a
                selected stage reading an unselected, incomplete stage.
        """
        check_provided_files(self.graph, self.selected)
        unselected = self._check_unselected_producers()
        keys = {name: m.get('key', '') for name, m in unselected.items()}
        plans = []
        for node in self.graph.nodes:
            if node.name not in self.selected:
                continue
            inputs = {k: self._input_fingerprint(node, k, keys)
                      for k in node.inputs}
            key = stage_key(node.stage.settings(),
                            {k: v['fingerprint'] for k, v in inputs.items()})
            keys[node.name] = key
            plans.append(self._decide(node, key, inputs))
        return plans

    def _check_amp(self, plans: List[StagePlan]) -> None:
        if not self.amp:
            return
        import torch
        if torch.cuda.is_available():
            return
        users = [p.name for p in plans if p.action != SKIP and getattr(
            self.graph.node(p.name).stage, 'uses_amp', False)]
        if users:
            raise PipelineConfigError(
                [f'--amp (optim_wrapper.type=AmpOptimWrapper) needs a CUDA '
                 f'device, and the stages {users} would train with it; run '
                 'without --amp on this machine'],
                title='cannot run with AMP')

    # ------------------------------------------------------------------- run
    def train(self) -> List[dict]:
        """Run every selected stage (what ``tools/train.py`` calls).

        Returns:
            list[dict]: One record per selected stage (``stage``, ``type``,
            ``status``, ``wall_time_s``, ``metrics``).
        """
        self._setup_dist()
        self._setup_logger()
        try:
            return self._train()
        finally:
            self._close_logger()

    #: Alias of :meth:`train`.
    run = train

    def _train(self) -> List[dict]:
        from mmengine.registry import DefaultScope
        if DefaultScope.get_current_instance() is None:
            DefaultScope.get_instance(self.logger.instance_name,
                                      scope_name=self.default_scope)
        self._log(f'pipeline: {len(self.graph.nodes)} stages, work dir '
                  f'{self.work_dir}, ranks {self.world_size}; selected '
                  f'{self.selected}')
        if self.cfg.get('resume'):
            self._log('--resume: the pipeline always resumes (complete '
                      'stages are skipped, a started one continues)')
        plans: List[StagePlan] = [
            StagePlan(**p) for p in self._on_rank0(
                lambda: [asdict(p) for p in self._plan()], 'planning')]
        self._check_amp(plans)
        self._log('plan: ' + ', '.join(f'{p.name} {p.action} ({p.reason})'
                                       for p in plans))
        self.records = []
        if self.rank == 0:
            build_pipeline_visualizer(self.cfg, self.work_dir)
        for plan in plans:
            node = self.graph.node(plan.name)
            record = self._run_stage(node, plan)
            record['index'] = node.index
            self.records.append(record)
            if self.rank == 0:
                record_stage(self.work_dir, record)
        if self.rank == 0:
            table = finish_report(self.work_dir, self.cfg, self.records)
            if table:
                self.logger.info('\n' + table)
        self._barrier()
        return self.records

    def _position(self, node: StageNode) -> str:
        return f'[stage {node.index + 1}/{len(self.graph.nodes)}]'

    def _run_stage(self, node: StageNode, plan: StagePlan) -> dict:
        """Skip, resume or run one stage; its record for the report."""
        if plan.action == SKIP:
            return self._skip_stage(node)
        return self._execute_stage(node, plan)

    def _skip_stage(self, node: StageNode) -> dict:
        """A complete stage: its recorded metrics and wall time."""
        manifest = self._on_rank0(
            lambda: read_manifest(self.stage_dir(node.name)),
            f'stage {node.name!r}') or {}
        metrics = manifest.get('metrics') or {}
        wall = float(manifest.get('wall_time_s') or 0.0)
        head = _format_metrics(node.stage.headline(metrics))
        self._log(f'{self._position(node)} {node.name}: skipped '
                  f'(complete; it ran in {_format_seconds(wall)})' +
                  (f' — {head}' if head else ''))
        return dict(stage=node.name, type=node.type, status='skipped',
                    wall_time_s=wall, metrics=metrics,
                    headline=node.stage.headline(metrics))

    def _execute_stage(self, node: StageNode, plan: StagePlan) -> dict:
        """Prepare (rank 0), check the inputs and run the stage on its
        ranks, check its outputs and write its manifest (rank 0)."""
        stage = node.stage
        self._log(f'{self._position(node)} {node.name}: '
                  f'{"resuming" if plan.action == RESUME else "running"} '
                  f'({plan.reason})')
        self._on_rank0(lambda: self._prepare(node, plan),
                       f'preparing stage {node.name!r}')
        ctx = StageContext(
            work_dir=self.work_dir, stage_dir=self.stage_dir(node.name),
            resume=plan.action == RESUME, launcher=self.launcher,
            rank=self.rank, world_size=self.world_size, amp=self.amp,
            env_cfg=dict(self.env_cfg), progress=self.progress,
            logger=self.logger, upstream=self._upstream(node))
        start = time.perf_counter()
        try:
            self._on_all(lambda: stage.check_inputs(ctx),
                         f'checking the inputs of stage {node.name!r}')
            if stage.run_on == 'all':
                metrics = self._on_all(lambda: stage.run(ctx),
                                       f'stage {node.name!r}')
            else:
                metrics = self._on_rank0(lambda: stage.run(ctx),
                                         f'stage {node.name!r}')
            metrics = dict(metrics or {})
            wall = time.perf_counter() - start
            self._on_rank0(lambda: self._finish(node, plan, metrics, wall),
                           f'finishing stage {node.name!r}')
        except BaseException as e:
            self._log(f'{self._position(node)} {node.name}: failed after '
                      f'{_format_seconds(time.perf_counter() - start)}: '
                      f'{type(e).__name__}: {e}')
            raise
        status = _STATUS[plan.action]
        head = _format_metrics(stage.headline(metrics))
        self._log(f'{self._position(node)} {node.name}: {status} in '
                  f'{_format_seconds(wall)}' +
                  (f' — {head}' if head else ''))
        return dict(stage=node.name, type=node.type, status=status,
                    wall_time_s=wall, metrics=metrics,
                    headline=stage.headline(metrics))

    def _prepare(self, node: StageNode, plan: StagePlan) -> None:
        """Rank 0: wipe a stage run afresh; record the start."""
        stage_dir = self.stage_dir(node.name)
        if plan.action == RUN:
            # the manifest goes first: a kill mid-wipe must not leave a
            # manifest that claims the (half-deleted) outputs are complete
            _remove(osp.join(stage_dir, 'manifest.json'))
            for path in node.outputs.values():
                _remove(path)
            _remove(stage_dir)
        os.makedirs(stage_dir, exist_ok=True)
        write_started(stage_dir, plan.key)

    def _upstream(self, node: StageNode) -> Dict[str, dict]:
        """Manifests of the stages ``node`` reads; refuses a class count
        that differs from the one a producer recorded."""
        upstream = {}
        mine = node.stage.num_classes()
        for key, src in node.sources.items():
            if src.kind != 'stage' or src.name in upstream:
                continue
            manifest = read_manifest(self.stage_dir(src.name)) or {}
            upstream[src.name] = manifest
            theirs = manifest.get('num_classes')
            if mine is not None and theirs is not None and theirs != mine:
                raise StageInputError(
                    f'class count mismatch: stage {node.name!r} works with '
                    f'{mine} classes but stage {src.name!r}, which wrote its '
                    f'input {key!r}, recorded {theirs} classes')
        return upstream

    def _finish(self, node: StageNode, plan: StagePlan,
                metrics: Dict[str, Any], wall: float) -> None:
        """Rank 0: check the outputs, write the manifest."""
        missing = {k: p for k, p in node.outputs.items()
                   if not path_exists(p)}
        if missing:
            raise StageInputError(
                f'stage {node.name!r} finished without writing its declared '
                f'outputs {missing}')
        stage_dir = self.stage_dir(node.name)
        write_manifest(stage_dir, dict(
            key=plan.key, type=node.type, settings=node.stage.settings(),
            inputs=plan.inputs, outputs=dict(node.outputs), metrics=metrics,
            num_classes=node.stage.num_classes(), wall_time_s=wall,
            finished_at=datetime.now(timezone.utc).isoformat(
                timespec='seconds')))
        remove_started(stage_dir)
