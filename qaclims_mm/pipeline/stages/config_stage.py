"""Stages that run one of our MMEngine configs (training, CAM inference,
segmentation testing).

A config-based stage names a sub-config (``config``, an absolute path after
the runner resolved it), plain overrides (``cfg_options``) and inputs. An
input whose key contains a dot or is ``load_from`` is a config key, filled
with the resolved path (after ``cfg_options``); other input keys (e.g.
``checkpoint``) are named inputs of the stage type.

Several MMEngine runners are built one after another in the pipeline's
process. Each gets a unique ``experiment_name`` (the name of its
``MMLogger``, ``MessageHub``, ``DefaultScope``) and a visualizer of the same
name, so that no runner picks up an instance of an earlier one (a visualizer
named ``'visualizer'`` in the config would otherwise keep writing to the
first runner's ``vis_data``). After the run the pipeline's own logger is the
current one again.
"""
import copy
import itertools
import json
import logging
import os
import os.path as osp
from contextlib import contextmanager
from typing import Any, Dict, Iterator, List, Optional

from mmengine.config import Config

from ..base import BaseStage, StageContext

#: Runs built in this process (unique experiment names).
_RUN_COUNTER = itertools.count()

#: Config keys set from the run's context: they do not decide the outputs.
CONTEXT_KEYS = ('work_dir', 'launcher', 'experiment_name')


def is_config_key(key: str) -> bool:
    """Whether an input key names a config key (dotted, or ``load_from``)."""
    return '.' in key or key == 'load_from'


class ConfigStage(BaseStage):
    """Base of the stages that run an MMEngine config.

    Args:
        name (str): Stage name.
        inputs (dict): ``key -> absolute path``; dotted keys and
            ``load_from`` are config keys filled with the path.
        outputs (dict): ``output name -> absolute path``.
        config (str): The sub-config file (absolute).
        cfg_options (dict, optional): Overrides merged into the sub-config
            (``merge_from_dict`` keys: ``'train_cfg.max_epochs'`` etc.),
            before the input keys.
        **params: Further settings of the stage type.
    """

    def __init__(self, name: str, inputs: Optional[Dict[str, str]] = None,
                 outputs: Optional[Dict[str, str]] = None,
                 config: Optional[str] = None,
                 cfg_options: Optional[Dict[str, Any]] = None,
                 **params) -> None:
        if not config:
            raise KeyError(f'stage {name!r} ({type(self).__name__}) needs '
                           f'a sub-config: config=<path to a config file>')
        super().__init__(name, inputs, outputs, config=config,
                         cfg_options=dict(cfg_options or {}), **params)
        self.config = config
        self.cfg_options = dict(cfg_options or {})
        self._resolved: Optional[Config] = None

    # -- the sub-config -------------------------------------------------
    @property
    def config_inputs(self) -> Dict[str, str]:
        """The inputs that are config keys (``key -> path``)."""
        return {k: v for k, v in self.inputs.items() if is_config_key(k)}

    def load_config(self) -> Config:
        """The sub-config with ``cfg_options`` and the input keys applied.

        Nothing that depends on the run (work dir, launcher, ranks) is set;
        a fresh copy on every call.

        Raises:
            FileNotFoundError: naming the stage and the config file.
            KeyError: for an override or input key that does not merge.
        """
        if self._resolved is None:
            if not osp.isfile(self.config):
                raise FileNotFoundError(
                    f'stage {self.name!r}: config not found: {self.config}')
            cfg = Config.fromfile(self.config)
            for what, options in (('cfg_options', self.cfg_options),
                                  ('inputs', self.config_inputs)):
                if not options:
                    continue
                try:
                    cfg.merge_from_dict(copy.deepcopy(options))
                except Exception as e:  # noqa: BLE001 (names the stage)
                    raise KeyError(
                        f'stage {self.name!r}: cannot apply {what} '
                        f'{sorted(options)} to {self.config}: {e}') from e
            self._resolved = cfg
        return copy.deepcopy(self._resolved)

    def settings(self) -> Dict[str, Any]:
        """Type, own params and the resolved sub-config.

        The config keys filled from inputs are replaced by ``'<input>'``:
        their content is fingerprinted as an input, and their path (under the
        work dir) must not decide the key. ``work_dir``, ``launcher`` and
        ``experiment_name`` are left out.
        """
        cfg = self.load_config()
        if self.config_inputs:
            cfg.merge_from_dict({k: '<input>' for k in self.config_inputs})
        resolved = cfg.to_dict()
        for key in CONTEXT_KEYS:
            resolved.pop(key, None)
        # config path and overrides: their effect is the resolved config
        params = {k: v for k, v in self.params.items()
                  if k not in ('config', 'cfg_options')}
        return dict(type=type(self).__name__, params=params,
                    config=json.loads(json.dumps(resolved, sort_keys=True,
                                                 default=str)))

    def num_classes(self) -> Optional[int]:
        """Object classes of the sub-config's dataset, else of its head."""
        return config_num_classes(self.load_config())

    def build_config(self, ctx: StageContext, subdir: str) -> Config:
        """The config of one MMEngine run of this stage.

        Args:
            ctx (StageContext): The run's context.
            subdir (str): The run's work dir under ``ctx.stage_dir``.

        Returns:
            Config: with ``work_dir``, ``launcher``, ``env_cfg.dist_cfg``,
            a unique ``experiment_name`` and visualizer name, the model
            wrapper for CPU DDP, AMP (training stages) and the
            ``NumClassesCheckHook``.

        Raises:
            RuntimeError: AMP requested without a CUDA device.
        """
        from ...engine.hooks import add_num_classes_check
        cfg = self.load_config()
        cfg.work_dir = osp.join(ctx.stage_dir, subdir)
        cfg.launcher = ctx.launcher
        dist_cfg = (ctx.env_cfg or {}).get('dist_cfg')
        if dist_cfg is not None:
            env_cfg = dict(cfg.get('env_cfg') or {})
            env_cfg['dist_cfg'] = copy.deepcopy(dict(dist_cfg))
            cfg.env_cfg = env_cfg
        name = f'{self.name}_{subdir}_{os.getpid()}_{next(_RUN_COUNTER)}'
        cfg.experiment_name = name.replace('/', '_')
        if isinstance(cfg.get('visualizer'), dict):
            cfg.visualizer['name'] = cfg.experiment_name
        if ctx.distributed:
            set_cpu_ddp_wrapper(cfg)
        if ctx.amp and self.uses_amp:
            enable_amp(cfg, self.name)
        add_num_classes_check(cfg)
        return cfg

    def build_runner(self, cfg: Config):
        """Build the MMEngine runner as ``tools/train.py`` does."""
        if 'runner_type' in cfg:
            from mmseg.registry import RUNNERS
            return RUNNERS.build(cfg)
        from mmengine.runner import Runner
        return Runner.from_cfg(cfg)


def set_cpu_ddp_wrapper(cfg: Config) -> None:
    """DDP on a CPU torch: the wrapper gets ``device_ids=None``.

    MMEngine passes ``device_ids=[LOCAL_RANK]`` to DDP, which a CPU module
    refuses. Only acts when CUDA is absent.
    """
    import torch
    if torch.cuda.is_available():
        return
    wrapper = dict(cfg.get('model_wrapper_cfg') or {})
    wrapper.setdefault('type', 'MMDistributedDataParallel')
    wrapper['device_ids'] = None
    wrapper.setdefault('broadcast_buffers', False)
    wrapper.setdefault('find_unused_parameters',
                       cfg.get('find_unused_parameters', False))
    cfg.model_wrapper_cfg = wrapper


def enable_amp(cfg: Config, stage: str) -> None:
    """Switch the optimiser wrapper to ``AmpOptimWrapper`` (``--amp``).

    Raises:
        RuntimeError: without a CUDA device, naming the stage.
    """
    import torch
    if not torch.cuda.is_available():
        raise RuntimeError(
            f'stage {stage!r}: AMP (--amp, or optim_wrapper.type='
            f'AmpOptimWrapper in the pipeline config) needs a CUDA device; '
            f'MMEngine\'s AmpOptimWrapper does not run on CPU. Run without '
            f'--amp.')
    if cfg.optim_wrapper.get('type', 'OptimWrapper') != 'AmpOptimWrapper':
        cfg.optim_wrapper['type'] = 'AmpOptimWrapper'
        cfg.optim_wrapper['loss_scale'] = 'dynamic'


def _dataset_cfgs(cfg: Config) -> List[dict]:
    found = []
    for key in ('train_dataloader', 'test_dataloader', 'val_dataloader'):
        loader = cfg.get(key)
        if isinstance(loader, dict) and isinstance(loader.get('dataset'),
                                                   dict):
            found.append(loader['dataset'])
    return found


def config_num_classes(cfg: Config) -> Optional[int]:
    """Object classes (no background) a config works with.

    From the first dataset config's ``metainfo['classes']`` or its
    registered type's ``METAINFO``; else from the model's ``cam_head``
    (object classes) or ``decode_head`` (background included).

    Args:
        cfg (Config): A resolved config.

    Returns:
        int | None: None when neither says.
    """
    for dataset in _dataset_cfgs(cfg):
        meta = dataset.get('metainfo') or {}
        if meta.get('classes'):
            return len(meta['classes']) - 1
        dataset_type = dataset.get('type')
        if isinstance(dataset_type, str):
            from mmseg.registry import DATASETS
            import qaclims_mm.datasets  # noqa: F401  (registers the types)
            cls = DATASETS.get(dataset_type)
            classes = getattr(cls, 'METAINFO', {}).get('classes')
            if classes:
                return len(classes) - 1
    model = cfg.get('model') or {}
    head = model.get('cam_head')
    if isinstance(head, dict) and isinstance(head.get('num_classes'), int):
        return head['num_classes']
    head = model.get('decode_head')
    if isinstance(head, dict) and isinstance(head.get('num_classes'), int):
        return head['num_classes'] - 1
    return None


def _current_name(cls) -> Optional[str]:
    """Name of the newest instance of a ``ManagerMixin`` class, if any."""
    return next(iter(reversed(cls._instance_dict)), None)


@contextmanager
def sub_run(ctx: StageContext) -> Iterator[None]:
    """Keep the pipeline's instances the current ones around an MMEngine run.

    MMEngine's ``get_current_instance`` returns the newest instance: after a
    sub-run, ``MMLogger`` / ``MessageHub`` / ``Visualizer`` /
    ``DefaultScope`` would name the sub-run's (its log file, its
    ``vis_data``). Those current before the run (the pipeline's logger:
    ``ctx.logger``) are made current again, and the sub-run's log files are
    closed once it finished.
    """
    from mmengine.logging import MessageHub, MMLogger
    from mmengine.registry import DefaultScope
    from mmengine.visualization import Visualizer
    classes = (MMLogger, MessageHub, Visualizer, DefaultScope)
    current = {cls: _current_name(cls) for cls in classes}
    if getattr(ctx.logger, 'instance_name', None) in MMLogger._instance_dict:
        current[MMLogger] = ctx.logger.instance_name
    before = set(MMLogger._instance_dict)
    try:
        yield
    finally:
        for name in set(MMLogger._instance_dict) - before:
            logger = MMLogger._instance_dict[name]
            for handler in list(logger.handlers):
                if isinstance(handler, logging.FileHandler):
                    handler.close()
                    logger.removeHandler(handler)
        for cls, name in current.items():
            if name is not None and name in cls._instance_dict:
                cls._instance_dict.move_to_end(name)
