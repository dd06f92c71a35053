"""Distributed runs on a CPU-only torch (gloo) with MMEngine 0.10.7.

MMEngine's launchers assume a GPU per process. Run on a machine without CUDA
(a CPU build of torch, or ``CUDA_VISIBLE_DEVICES=''``), a 2-process
``torchrun ... tools/train.py CONFIG --launcher pytorch --cfg-options
env_cfg.dist_cfg.backend=gloo`` meets two obstacles:

1. ``mmengine.dist.init_dist`` calls ``torch.cuda.set_device(local_rank)``
   before ``init_process_group`` in every launcher (``pytorch``, ``slurm``,
   ``mpi``); a CPU build dies with ``AttributeError: module 'torch._C' has no
   attribute '_cuda_setDevice'``.
2. ``Runner.wrap_model`` builds ``MMDistributedDataParallel`` with
   ``device_ids=[LOCAL_RANK]``, which ``DistributedDataParallel`` refuses for
   a module on the CPU (``ValueError: DistributedDataParallel device_ids and
   output_device arguments only work with single-device/multiple-device GPU
   modules or CPU modules, but got device_ids [0] ...``).

:func:`install_cpu_dist_guard` (called by ``import qaclims_mm``, so also by
every config through its ``custom_imports``, which ``Config.fromfile`` runs
before the runner starts the process group) wraps those two MMEngine
functions. The wrappers decide on every call, with
``torch.cuda.is_available()``:

* **CUDA available**: MMEngine's own function runs, untouched.
* **CUDA absent**:

  - ``init_dist`` with ``backend='nccl'`` (the configs' default) stops with
    an error that says to pass ``--cfg-options
    env_cfg.dist_cfg.backend=gloo``; NCCL is never silently replaced.
  - otherwise MMEngine's launcher runs with ``torch.cuda.set_device`` made a
    no-op for the duration of that one call (there is no device to select);
    everything else (environment variables, ``init_process_group``) is
    MMEngine's code.
  - ``wrap_model`` passes ``device_ids=None`` to a
    ``DistributedDataParallel`` wrapper (the documented way to wrap a CPU
    module; a ``model_wrapper_cfg`` that sets ``device_ids`` itself is kept),
    with MMEngine's defaults otherwise (``broadcast_buffers=False``, the
    config's ``find_unused_parameters``).
  - a model with SyncBN layers (``norm_cfg=dict(type='SyncBN')``, or the
    config's ``sync_bn``) is refused before training with an error naming the
    layer: SyncBN only runs on GPUs. Use ``BN`` on CPU.

Installing is idempotent. :func:`remove_cpu_dist_guard` restores MMEngine's
functions (for tests).
"""
import contextlib
import functools
from typing import Any, Callable, Dict, Iterator, Optional

#: Set on every wrapper, holding MMEngine's original function.
GUARD_ATTR = '__qaclims_cpu_dist_guard__'

#: What the errors tell a CPU user to pass.
GLOO_HINT = '--cfg-options env_cfg.dist_cfg.backend=gloo'

#: MMEngine's launchers that select a CUDA device first.
_LAUNCHERS = ('_init_dist_pytorch', '_init_dist_slurm', '_init_dist_mpi')


def cuda_available() -> bool:
    """``torch.cuda.is_available()``, looked up at call time."""
    import torch
    return torch.cuda.is_available()


def check_backend(backend: Any) -> None:
    """Refuse a backend that needs CUDA when CUDA is absent.

    Args:
        backend (Any): The ``dist_cfg.backend`` of the run.

    Raises:
        RuntimeError: for ``nccl`` (or another GPU-only backend) without
            CUDA, saying to use gloo.
    """
    if str(backend).lower() in ('nccl', 'cncl', 'hccl', 'mccl'):
        raise RuntimeError(
            f'distributed backend {backend!r} needs CUDA GPUs, but '
            'torch.cuda.is_available() is False here (a CPU build of torch '
            'or no visible GPU). To run distributed on the CPU use the gloo '
            f'backend: {GLOO_HINT}')


@contextlib.contextmanager
def _no_cuda_set_device() -> Iterator[None]:
    """Make ``torch.cuda.set_device`` a no-op inside the block."""
    import torch
    original = torch.cuda.set_device
    torch.cuda.set_device = lambda device: None
    try:
        yield
    finally:
        torch.cuda.set_device = original


def _guard_launcher(launcher: Callable) -> Callable:
    """Wrap one of MMEngine's ``_init_dist_*`` functions (``backend`` is its
    first argument)."""

    @functools.wraps(launcher)
    def guarded(backend, *args, **kwargs):
        if cuda_available():
            return launcher(backend, *args, **kwargs)
        check_backend(backend)
        with _no_cuda_set_device():
            return launcher(backend, *args, **kwargs)

    setattr(guarded, GUARD_ATTR, launcher)
    return guarded


def find_sync_bn(model: Any) -> Optional[str]:
    """The name of the first SyncBN layer of ``model`` (None if it has none).

    Matches ``torch.nn.SyncBatchNorm`` and every class called
    ``SyncBatchNorm`` (mmcv's ``MMSyncBN``).
    """
    import torch
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.SyncBatchNorm) or any(
                cls.__name__ == 'SyncBatchNorm'
                for cls in type(module).__mro__):
            return name or type(module).__name__
    return None


def check_no_sync_bn(model: Any, sync_bn: Any = None) -> None:
    """Refuse SyncBN in a distributed run without CUDA.

    Args:
        model (nn.Module): The model about to be wrapped.
        sync_bn (Any): The config's ``sync_bn`` (MMEngine converts every BN
            to SyncBN when it is set). Defaults to None.

    Raises:
        RuntimeError: naming the first SyncBN layer (or ``sync_bn``).
    """
    if sync_bn is not None:
        raise RuntimeError(
            f'the config sets sync_bn={sync_bn!r}, but SyncBN needs CUDA '
            'GPUs and this distributed run is on the CPU (gloo). Remove it: '
            '--cfg-options sync_bn=None')
    layer = find_sync_bn(model)
    if layer is not None:
        raise RuntimeError(
            f'the model has SyncBN layers (e.g. {layer!r}), but SyncBN needs '
            'CUDA GPUs and this distributed run is on the CPU (gloo). Use '
            'plain BN instead, e.g. --cfg-options '
            'model.backbone.norm_cfg.type=BN (every norm_cfg of type SyncBN '
            'in the config).')


def cpu_model_wrapper_cfg(model_wrapper_cfg: Optional[Dict],
                          find_unused_parameters: bool = False
                          ) -> Optional[Dict]:
    """``model_wrapper_cfg`` for a CPU module: ``device_ids=None``.

    Args:
        model_wrapper_cfg (dict, optional): The config's value (None: the
            runner's default, ``MMDistributedDataParallel``).
        find_unused_parameters (bool): The config's value, used with the
            default wrapper as MMEngine does. Defaults to False.

    Returns:
        dict, optional: A new config; a wrapper that is not a
        ``DistributedDataParallel`` or that sets ``device_ids`` is returned
        unchanged.
    """
    from mmengine.registry import MODEL_WRAPPERS
    from torch.nn.parallel import DistributedDataParallel
    if model_wrapper_cfg is None:
        return dict(type='MMDistributedDataParallel', device_ids=None,
                    broadcast_buffers=False,
                    find_unused_parameters=find_unused_parameters)
    cfg = dict(model_wrapper_cfg)
    cfg.setdefault('type', 'MMDistributedDataParallel')
    wrapper = cfg['type']
    if isinstance(wrapper, str):
        wrapper = MODEL_WRAPPERS.get(wrapper)
    if isinstance(wrapper, type) and issubclass(wrapper,
                                                DistributedDataParallel):
        cfg.setdefault('device_ids', None)
    return cfg


def _guard_wrap_model(wrap_model: Callable) -> Callable:
    """Wrap ``Runner.wrap_model``."""

    @functools.wraps(wrap_model)
    def guarded(self, model_wrapper_cfg, model):
        from mmengine.model import is_model_wrapper
        if cuda_available() or not self.distributed or is_model_wrapper(model):
            return wrap_model(self, model_wrapper_cfg, model)
        check_no_sync_bn(model, self.cfg.get('sync_bn', None))
        model_wrapper_cfg = cpu_model_wrapper_cfg(
            model_wrapper_cfg, self.cfg.get('find_unused_parameters', False))
        return wrap_model(self, model_wrapper_cfg, model)

    setattr(guarded, GUARD_ATTR, wrap_model)
    return guarded


def _patch(owner: Any, name: str, make: Callable[[Callable], Callable],
           install: bool) -> None:
    current = getattr(owner, name)
    original = getattr(current, GUARD_ATTR, None)
    if install and original is None:
        setattr(owner, name, make(current))
    elif not install and original is not None:
        setattr(owner, name, original)


def install_cpu_dist_guard() -> bool:
    """Let MMEngine's distributed runs work without CUDA (idempotent).

    See the module docstring for what changes, and only when CUDA is absent.

    Returns:
        bool: True when MMEngine is installed and the guard is in place.
    """
    return _apply(install=True)


def remove_cpu_dist_guard() -> None:
    """Restore MMEngine's own functions."""
    _apply(install=False)


def cpu_dist_guard_installed() -> bool:
    """Whether :func:`install_cpu_dist_guard` is in effect."""
    try:
        import mmengine.dist.utils as dist_utils
    except ImportError:
        return False
    return hasattr(dist_utils._init_dist_pytorch, GUARD_ATTR)


def _apply(install: bool) -> bool:
    try:
        import mmengine.dist.utils as dist_utils
        from mmengine.runner import Runner
    except ImportError:  # no MMEngine: nothing to guard
        return False
    for name in _LAUNCHERS:
        _patch(dist_utils, name, _guard_launcher, install)
    _patch(Runner, 'wrap_model', _guard_wrap_model, install)
    return install
