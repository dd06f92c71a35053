"""Refuse a checkpoint that does not cover the segmentor's weights.

MMEngine loads ``load_from``, ``--resume`` and the checkpoint of the stock
``tools/test.py`` non-strictly: a missing or size-mismatched key only logs a
warning and leaves that tensor at its initialisation (e.g. a random backbone
that still gets a score). Every loader, MMEngine's
``runner.load_checkpoint`` -> ``mmengine.runner.checkpoint.load_state_dict``
and ``torch.nn.Module.load_state_dict`` alike, calls the root module's
``_load_from_state_dict`` with the whole (prefixed) state dict before it
recurses into the children; :class:`StrictCheckpointMixin` checks the keys
there and raises, naming the first few offending keys.

Partial loads stay possible: load into the submodule itself
(``model.backbone.load_state_dict(...)``, ``init_cfg`` ``Pretrained`` of the
backbone), list the keys that may be absent in ``allow_missing_keys``, or
the keys whose checkpoint tensor may have another shape in
``allow_mismatched_keys`` (e.g. fine-tuning an 81-class COCO head into 21 VOC
classes): such tensors are dropped from the loaded state dict, keep their
initialisation, and a warning names them.
"""
import fnmatch
import logging
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from mmengine.logging import print_log

#: Keys every segmentor accepts as absent: BatchNorm's batch counters (only
#: used with ``momentum=None``; older checkpoints lack them).
DEFAULT_ALLOWED_MISSING_KEYS: Tuple[str, ...] = ('*num_batches_tracked', )

#: How many offending keys an error message names.
_NUM_NAMED = 5


def _matches(key: str, patterns: Sequence[str]) -> bool:
    """Whether ``key`` matches any of the ``fnmatch`` ``patterns``."""
    return any(fnmatch.fnmatchcase(key, p) for p in patterns)


def checkpoint_mismatches(model_state: Dict[str, torch.Tensor],
                          checkpoint: Dict[str, torch.Tensor],
                          prefix: str = '',
                          allow_missing: Sequence[str] = (),
                          allow_mismatched: Sequence[str] = ()
                          ) -> Tuple[List[str], List[str], List[str]]:
    """Model keys absent from ``checkpoint`` and keys of another shape.

    Args:
        model_state (dict): The model's own ``state_dict()`` (no prefix).
        checkpoint (dict): The state dict being loaded, keys ``prefix + k``.
        prefix (str): The model's prefix in ``checkpoint``. Defaults to ''.
        allow_missing (Sequence[str]): ``fnmatch`` patterns (matched against
            the unprefixed key) of keys that may be absent. Defaults to ().
        allow_mismatched (Sequence[str]): ``fnmatch`` patterns (unprefixed)
            of keys whose checkpoint tensor may have another shape.
            Defaults to ().

    Returns:
        tuple: ``(missing, mismatched, allowed_mismatched)``: the offending
        missing keys, the offending mis-shaped keys (entries read
        ``'key: checkpoint (a, b) vs model (c, d)'``) and the unprefixed
        mis-shaped keys that ``allow_mismatched`` accepts.
    """
    missing, mismatched, allowed = [], [], []
    for key, own in model_state.items():
        value = checkpoint.get(prefix + key)
        if value is None:
            if not _matches(key, allow_missing):
                missing.append(key)
        elif hasattr(value, 'shape') and tuple(value.shape) != tuple(
                own.shape):
            if _matches(key, allow_mismatched):
                allowed.append(key)
            else:
                mismatched.append(f'{key}: checkpoint {tuple(value.shape)} '
                                  f'vs model {tuple(own.shape)}')
    return missing, mismatched, allowed


def segmentor_base_kwargs(owner: str, pretrained: Optional[str],
                          data_preprocessor: Optional[dict],
                          init_cfg: Optional[dict]) -> dict:
    """The ``BaseSegmentor.__init__`` arguments of a WSSS segmentor.

    Weights come from ``backbone.init_cfg`` (or a checkpoint checked by
    :class:`StrictCheckpointMixin`), never from ``pretrained``: mmseg's
    ``init_model`` passes ``pretrained=None``, which is accepted, and any
    other value is refused. The pre-processor defaults to
    ``WSSSDataPreProcessor``.

    Args:
        owner (str): Class name for the error message.
        pretrained (str, optional): Must be None.
        data_preprocessor (dict, optional): Pre-processor config; None for
            ``WSSSDataPreProcessor``.
        init_cfg (dict, optional): Initialisation config.

    Returns:
        dict: ``data_preprocessor`` and ``init_cfg``.

    Raises:
        ValueError: If ``pretrained`` is not None.
    """
    if pretrained is not None:
        raise ValueError(
            f'{owner} takes no pretrained={pretrained!r}: set '
            "backbone.init_cfg=dict(type='Pretrained', checkpoint=...)")
    if data_preprocessor is None:
        data_preprocessor = dict(type='WSSSDataPreProcessor')
    return dict(data_preprocessor=data_preprocessor, init_cfg=init_cfg)


class StrictCheckpointMixin:
    """Makes a segmentor refuse a checkpoint with missing or mis-shaped keys.

    Mix in before the ``BaseSegmentor`` class and call
    :meth:`set_checkpoint_allowances` in ``__init__``:
    ``allow_missing_keys`` (``fnmatch`` patterns, added to
    :data:`DEFAULT_ALLOWED_MISSING_KEYS`) may be absent from the checkpoint;
    ``allow_mismatched_keys`` may have another shape there, and such tensors
    are dropped from the loaded state dict (they keep their initialisation;
    a warning names them). Unexpected extra keys are left to MMEngine's
    warning.
    """

    allow_missing_keys: Tuple[str, ...] = ()
    allow_mismatched_keys: Tuple[str, ...] = ()

    def set_checkpoint_allowances(
            self, allow_missing_keys: Sequence[str] = (),
            allow_mismatched_keys: Sequence[str] = ()) -> None:
        """Set the ``fnmatch`` patterns the checkpoint check accepts.

        Args:
            allow_missing_keys (Sequence[str]): Model keys a checkpoint may
                lack. Defaults to ().
            allow_mismatched_keys (Sequence[str]): Model keys a checkpoint may
                hold with another shape; those tensors are not loaded.
                Defaults to ().
        """
        for name, value in (('allow_missing_keys', allow_missing_keys),
                            ('allow_mismatched_keys', allow_mismatched_keys)):
            if isinstance(value, str):
                raise TypeError(f'{name} must be a sequence of fnmatch '
                                f'patterns, got the string {value!r}')
        self.allow_missing_keys = tuple(allow_missing_keys)
        self.allow_mismatched_keys = tuple(allow_mismatched_keys)

    def _checkpoint_hint(self, state_dict: dict, prefix: str) -> str:
        """Extra advice appended to the error (override per model)."""
        return ''

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict,
                              missing_keys, unexpected_keys, error_msgs):
        allow = DEFAULT_ALLOWED_MISSING_KEYS + tuple(self.allow_missing_keys)
        missing, mismatched, allowed = checkpoint_mismatches(
            self.state_dict(), state_dict, prefix, allow,
            self.allow_mismatched_keys)
        if missing or mismatched:
            parts = []
            if missing:
                parts.append(f'{len(missing)} model key(s) missing from the '
                             f'checkpoint (first: '
                             f'{", ".join(missing[:_NUM_NAMED])})')
            if mismatched:
                parts.append(f'{len(mismatched)} key(s) of another shape '
                             f'(first: '
                             f'{"; ".join(mismatched[:_NUM_NAMED])})')
            raise KeyError(
                f'the checkpoint loaded into {type(self).__name__} does not '
                f'match the model: {"; ".join(parts)}. Loading it would leave '
                f'those weights at their initialisation. Load a checkpoint of '
                f'this model, or list in the model config (fnmatch patterns '
                f'of model keys) the keys that may be absent in '
                f'allow_missing_keys and those that may have another shape '
                f'(they keep their initialisation) in allow_mismatched_keys.'
                f'{self._checkpoint_hint(state_dict, prefix)}')
        if allowed:
            # the children load after this call, from this very dict
            for key in allowed:
                del state_dict[prefix + key]
            print_log(
                f'{type(self).__name__}: {len(allowed)} checkpoint tensor(s) '
                f'of another shape not loaded (allow_mismatched_keys), they '
                f'keep their initialisation: {", ".join(allowed)}',
                logger='current', level=logging.WARNING)
        super()._load_from_state_dict(state_dict, prefix, local_metadata,
                                      strict, missing_keys, unexpected_keys,
                                      error_msgs)
