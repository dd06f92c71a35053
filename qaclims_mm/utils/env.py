"""Process-wide settings applied when :mod:`qaclims_mm` is imported.

Two deliberate decisions (see README, "Install"):

* **Offline hubs.** Models are only ever loaded from a local path or an existing
  cache. ``HF_HUB_OFFLINE`` / ``TRANSFORMERS_OFFLINE`` default to ``1`` so that a
  missing file fails at once with a clear message instead of ~30 s of retries. Set
  them to ``0`` yourself to allow downloads.
* **Checkpoints and torch>=2.6.** ``torch.load`` defaults to ``weights_only=True``,
  which rejects the non-tensor objects MMEngine stores in its checkpoints
  (``HistoryBuffer`` in the message hub, numpy scalars/arrays in the meta). Rather
  than switching the safe loader off globally (``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD``),
  we allow-list exactly those types, so resume, ``load_from`` and ``tools/test.py``
  work while arbitrary pickles stay rejected. The statistics methods a
  ``HistoryBuffer`` holds (``HistoryBuffer.mean``, ...) are pickled
  (protocol 2) as ``builtins.getattr(HistoryBuffer, 'mean')``. Allowing the
  real ``getattr`` would let a crafted file reach ``eval`` through torch's
  own rebuild functions, so the name ``builtins.getattr`` is bound to
  :func:`_history_buffer_getattr`, which resolves only those few attributes
  of ``HistoryBuffer`` and refuses everything else. Nothing else is
  allow-listed, and no loader falls back to ``weights_only=False``.
* **mmpretrain's multimodal models.** mmpretrain 1.2.0's BLIP/BLIP-2/RAM modules
  import helpers (``find_pruneable_heads_and_indices``, ...) from
  ``transformers.modeling_utils`` that current transformers releases no longer
  have; the failed import then makes *all* of ``mmpretrain.models`` (its
  backbones included) unimportable. When the installed transformers lacks them,
  we set mmpretrain's own ``WITH_MULTIMODAL`` switch to False before
  ``mmpretrain.models`` is imported: its multimodal models become the
  placeholders mmpretrain registers when transformers is absent, and every
  backbone works. (QA-CLIMS's VQA models come from transformers itself.)
* **Distributed runs on a CPU torch.** MMEngine 0.10.7 selects a CUDA device
  unconditionally when it starts a process group and gives DDP a device id;
  :func:`~qaclims_mm.utils.dist.install_cpu_dist_guard` lets it run with the
  gloo backend when CUDA is absent (and only then), so that
  ``--cfg-options env_cfg.dist_cfg.backend=gloo`` trains on CPU processes.
"""
import functools
import importlib.util
import os
import sys
import warnings

_DONE = False

#: The ``HistoryBuffer`` attributes an MMEngine checkpoint references: its
#: default statistics methods (``HistoryBuffer._set_default_statistics``).
HISTORY_BUFFER_ATTRS = frozenset(('min', 'max', 'current', 'mean'))


def _history_buffer_getattr(obj: object, name: str) -> object:
    """Stand-in for ``builtins.getattr`` inside ``torch.load(weights_only)``.

    Resolves only ``HistoryBuffer.<name>`` for the names in
    :data:`HISTORY_BUFFER_ATTRS`, which is all an MMEngine checkpoint asks
    ``getattr`` for.

    Args:
        obj (object): The object the pickle looks the attribute up on.
        name (str): The attribute name.

    Returns:
        object: The ``HistoryBuffer`` statistics function.

    Raises:
        pickle.UnpicklingError: for any other object or attribute.
    """
    import pickle

    from mmengine.logging.history_buffer import HistoryBuffer
    if obj is HistoryBuffer and isinstance(name, str) \
            and name in HISTORY_BUFFER_ATTRS:
        return getattr(HistoryBuffer, name)
    raise pickle.UnpicklingError(
        f'refused getattr({type(obj).__name__} {_short_repr(obj)}, '
        f'{_short_repr(name)}) while loading a checkpoint: only '
        f'HistoryBuffer.{{{", ".join(sorted(HISTORY_BUFFER_ATTRS))}}} may be '
        'looked up (qaclims_mm safe loading). The file is not a plain '
        'MMEngine / PyTorch checkpoint; do not load it unless you trust it.')


def _short_repr(obj: object, limit: int = 60) -> str:
    text = repr(obj)
    return text if len(text) <= limit else text[:limit] + '...'


def _mmengine_checkpoint_globals() -> list:
    """The non-tensor types an MMEngine checkpoint contains."""
    import numpy as np
    from mmengine.logging.history_buffer import HistoryBuffer

    allowed = [HistoryBuffer, np.ndarray, np.dtype,
               (_history_buffer_getattr, 'builtins.getattr')]
    try:  # numpy >= 2
        from numpy._core.multiarray import _reconstruct, scalar
    except ImportError:  # pragma: no cover - numpy 1.x
        from numpy.core.multiarray import _reconstruct, scalar
    allowed += [_reconstruct, scalar]
    # the dtype classes numpy 2 pickles (np.dtypes.Float64DType, ...)
    allowed += [t for t in vars(np.dtypes).values() if isinstance(t, type)]
    return allowed


def _transformers_has_legacy_helpers() -> bool:
    """Whether ``transformers.modeling_utils`` still exports the helpers that
    mmpretrain 1.2.0's multimodal models import (checked on the source text,
    so transformers itself is not imported: that takes seconds)."""
    spec = importlib.util.find_spec('transformers.modeling_utils')
    if spec is None or spec.origin is None:
        return False
    with open(spec.origin, encoding='utf-8') as f:
        return 'find_pruneable_heads_and_indices' in f.read()


def _guard_mmpretrain_multimodal() -> None:
    if 'mmpretrain.models' in sys.modules:
        return  # too late to choose; it imported (or failed) already
    try:
        import mmpretrain.utils.dependency as dependency
    except ImportError:
        return
    if dependency.WITH_MULTIMODAL and not _transformers_has_legacy_helpers():
        dependency.WITH_MULTIMODAL = False


@functools.lru_cache(maxsize=None)
def full_stack_available() -> bool:
    """Whether mmcv's compiled ops import (mmcv-lite has none).

    ``mmseg.datasets`` and ``mmseg.models`` import ``mmcv.ops``; the method's
    core modules (losses, FAT, mask-prompted CLIP, random walk, QAPE) do not.
    """
    try:
        import mmcv.ops  # noqa: F401
    except ImportError:
        return False
    return True


def tolerate_missing_full_stack(exc: ImportError, what: str) -> None:
    """Re-raise ``exc`` unless the full OpenMMLab stack is absent.

    With mmcv's ops installed an import error is a real bug and propagates;
    without them (mmcv-lite) the components that need them are skipped with
    a warning, and the core modules stay importable.
    """
    if full_stack_available():
        raise exc
    warnings.warn(f'qaclims_mm: {what} not registered: mmcv has no compiled '
                  f'ops here (mmcv-lite?): {exc}. Install the full stack with '
                  f'tools/install.sh.')


def setup_env() -> None:
    """Apply the offline defaults, the checkpoint allow-list and the CPU
    distributed guard (idempotent)."""
    global _DONE
    if _DONE:
        return
    os.environ.setdefault('HF_HUB_OFFLINE', '1')
    os.environ.setdefault('TRANSFORMERS_OFFLINE', '1')
    try:
        import torch.serialization
        torch.serialization.add_safe_globals(_mmengine_checkpoint_globals())
    except ImportError:  # torch < 2.4 or mmengine absent: nothing to allow-list
        pass
    _guard_mmpretrain_multimodal()
    from .dist import install_cpu_dist_guard
    install_cpu_dist_guard()
    _DONE = True


def allow_model_registry_without_full_stack() -> None:
    """Let ``mmseg.registry.MODELS`` build the core components on mmcv-lite.

    mmengine imports a registry's ``locations`` on its first lookup; for
    ``MODELS`` (and the other registries located in ``mmseg.models``) that
    import needs mmcv's ops. Without them *every* ``MODELS.build`` would fail,
    also for what qaclims_mm registers itself (RegionTextHead, the losses,
    MaskPromptedCLIP). When the full stack is absent, those registries are
    marked as imported (mmengine's ``_imported`` flag): lookups see the
    registered components, and an mmseg model stays a plain "not in the
    registry" KeyError. With the full stack nothing changes.
    """
    if full_stack_available():
        return
    try:
        import mmseg.registry as mmseg_registry
        from mmengine.registry import Registry
    except ImportError:
        return
    for obj in vars(mmseg_registry).values():
        if isinstance(obj, Registry) and 'mmseg.models' in getattr(
                obj, '_locations', ()):
            obj._imported = True
