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
backbone), or list the keys that may be absent in ``allow_missing_keys``.
"""
import fnmatch
from typing import Dict, List, Sequence, Tuple

import torch

#: Keys every segmentor accepts as absent: BatchNorm's batch counters (only
#: used with ``momentum=None``; older checkpoints lack them).
DEFAULT_ALLOWED_MISSING_KEYS: Tuple[str, ...] = ('*num_batches_tracked', )

#: How many offending keys an error message names.
_NUM_NAMED = 5


def checkpoint_mismatches(model_state: Dict[str, torch.Tensor],
                          checkpoint: Dict[str, torch.Tensor],
                          prefix: str = '',
                          allow_missing: Sequence[str] = ()
                          ) -> Tuple[List[str], List[str]]:
    """Model keys absent from ``checkpoint`` and keys of another shape.

    Args:
        model_state (dict): The model's own ``state_dict()`` (no prefix).
        checkpoint (dict): The state dict being loaded, keys ``prefix + k``.
        prefix (str): The model's prefix in ``checkpoint``. Defaults to ''.
        allow_missing (Sequence[str]): ``fnmatch`` patterns (matched against
            the unprefixed key) of keys that may be absent. Defaults to ().

    Returns:
        tuple: ``(missing, mismatched)``; ``mismatched`` entries read
        ``'key: checkpoint (a, b) vs model (c, d)'``.
    """
    missing, mismatched = [], []
    for key, own in model_state.items():
        value = checkpoint.get(prefix + key)
        if value is None:
            if not any(fnmatch.fnmatchcase(key, p) for p in allow_missing):
                missing.append(key)
        elif hasattr(value, 'shape') and tuple(value.shape) != tuple(
                own.shape):
            mismatched.append(f'{key}: checkpoint {tuple(value.shape)} vs '
                              f'model {tuple(own.shape)}')
    return missing, mismatched


class StrictCheckpointMixin:
    """Makes a segmentor refuse a checkpoint with missing or mis-shaped keys.

    Mix in before the ``BaseSegmentor`` class and set
    ``self.allow_missing_keys`` in ``__init__`` (``fnmatch`` patterns, added
    to :data:`DEFAULT_ALLOWED_MISSING_KEYS`). Unexpected extra keys are left
    to MMEngine's warning.
    """

    allow_missing_keys: Tuple[str, ...] = ()

    def _checkpoint_hint(self, state_dict: dict, prefix: str) -> str:
        """Extra advice appended to the error (override per model)."""
        return ''

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict,
                              missing_keys, unexpected_keys, error_msgs):
        allow = DEFAULT_ALLOWED_MISSING_KEYS + tuple(self.allow_missing_keys)
        missing, mismatched = checkpoint_mismatches(self.state_dict(),
                                                    state_dict, prefix, allow)
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
                f'this model, or list keys that may be absent in the '
                f"model's allow_missing_keys (fnmatch patterns)."
                f'{self._checkpoint_hint(state_dict, prefix)}')
        super()._load_from_state_dict(state_dict, prefix, local_metadata,
                                      strict, missing_keys, unexpected_keys,
                                      error_msgs)
