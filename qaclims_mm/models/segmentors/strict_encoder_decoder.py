"""MMSeg's ``EncoderDecoder`` that refuses a checkpoint it does not match."""
from typing import Sequence

from mmseg.models.segmentors import EncoderDecoder
from mmseg.registry import MODELS

from .checkpoint_guard import StrictCheckpointMixin


@MODELS.register_module()
class StrictEncoderDecoder(StrictCheckpointMixin, EncoderDecoder):
    """:class:`mmseg.models.EncoderDecoder` with the checkpoint check.

    Identical to MMSeg's model (DeepLabV3+ and any other encoder-decoder
    config), except that ``load_from``, ``--resume`` and ``tools/test.py``
    fail when the checkpoint lacks a model key or holds one with another
    shape, naming the first few keys (:class:`StrictCheckpointMixin`),
    instead of testing or fine-tuning with those weights left at their
    initialisation.

    Args:
        allow_missing_keys (Sequence[str]): ``fnmatch`` patterns of model
            keys a loaded checkpoint may lack. Defaults to ().
        allow_mismatched_keys (Sequence[str]): ``fnmatch`` patterns of model
            keys a loaded checkpoint may hold with another shape (e.g.
            ``'*.conv_seg.*'`` to fine-tune a COCO model into VOC classes):
            those tensors are not loaded, keep their initialisation, and a
            warning names them. Defaults to ().
        **kwargs: Passed to :class:`mmseg.models.EncoderDecoder`.
    """

    def __init__(self,
                 allow_missing_keys: Sequence[str] = (),
                 allow_mismatched_keys: Sequence[str] = (),
                 **kwargs) -> None:
        super().__init__(**kwargs)
        self.set_checkpoint_allowances(allow_missing_keys,
                                       allow_mismatched_keys)
