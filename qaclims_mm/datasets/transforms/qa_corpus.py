"""Attach the cached QA text features of a sample's classes (spec §2.6).

The training step needs, for each ground-truth class of an image, the class
feature, the FG answer features (combined into t_f by the model) and the BG
answer features. This transform looks them up in the text-feature cache built
by ``tools/build_text_cache.py`` and packs them as fixed-size tensors, so the
training loop consumes only tensors (no dict walking, no host-side text).
"""
from typing import Optional

import torch
from mmcv.transforms import BaseTransform
from mmengine.logging import print_log
from mmseg.registry import TRANSFORMS

from ...structures.text_cache_format import TextFeatureCache


@TRANSFORMS.register_module()
class LoadQACorpus(BaseTransform):
    """Add ``qa_feats``: padded text features of the sample's classes.

    For a sample with ``img_id`` and ``img_labels`` (K sorted class indices,
    into the cache's ``class_names``, which must be the dataset's classes in
    label order), sets ``results['qa_feats']`` to a dict of float32 / bool
    tensors::

        class_feats [K, D]          e('a photo of {class}.')
        fg_feats    [K, max_fg, D]  one row per FG text, zero-padded
        fg_mask     [K, max_fg]     True on real rows
        bg_feats    [K, max_bg, D]  the unique BG texts, zero-padded
        bg_mask     [K, max_bg]     all False when the pair has no BG text
                                    (the losses skip it, as the official code)

    The cache is opened lazily, once per dataloader worker; its features are
    memory-mapped, so workers share the page cache.

    Required keys: ``img_id``, ``img_labels``. Added keys: ``qa_feats``.

    Args:
        cache_prefix (str): The cache path without suffix
            (``<prefix>.json`` + ``<prefix>.safetensors``).
        max_fg (int): FG slots per class. Defaults to 6.
        max_bg (int): BG slots per class. Defaults to 10.
        skip_missing (bool): Give a pair absent from the cache all-False
            masks (and warn once) instead of raising. Defaults to False.
        classes (str | Sequence[str], optional): The dataset's classes in
            label order (``'voc'``, ``'coco'`` or a list). When given, the
            cache's class list must equal it: a cache built for another class
            order would silently pair labels with the wrong texts. Defaults
            to None (not checked).
    """

    def __init__(self,
                 cache_prefix: str,
                 max_fg: int = 6,
                 max_bg: int = 10,
                 skip_missing: bool = False,
                 classes=None) -> None:
        if max_fg < 1 or max_bg < 1:
            raise ValueError(f'max_fg and max_bg must be >= 1, got '
                             f'max_fg={max_fg}, max_bg={max_bg}')
        self.cache_prefix = cache_prefix
        self.max_fg = int(max_fg)
        self.max_bg = int(max_bg)
        self.skip_missing = skip_missing
        if isinstance(classes, str):
            from ..class_names import get_classes
            classes = get_classes(classes)
        self.classes = tuple(classes) if classes is not None else None
        self._cache: Optional[TextFeatureCache] = None
        self._warned = False

    @property
    def cache(self) -> TextFeatureCache:
        """The cache reader, opened on first use."""
        if self._cache is None:
            cache = TextFeatureCache(self.cache_prefix)
            if (self.classes is not None
                    and tuple(cache.class_names) != self.classes):
                raise ValueError(
                    f'{cache.index_path}: the cache was built for the '
                    f'classes {list(cache.class_names)[:3]}... '
                    f'({len(cache.class_names)}), not the dataset\'s '
                    f'{list(self.classes)[:3]}... ({len(self.classes)}); '
                    f'rebuild it with --classes matching the dataset')
            self._cache = cache
        return self._cache

    def __getstate__(self) -> dict:
        # do not pickle an opened cache into worker processes: each worker
        # opens its own (memory maps are per process)
        state = self.__dict__.copy()
        state['_cache'] = None
        return state

    def transform(self, results: dict) -> dict:
        img_id = results['img_id']
        labels = results['img_labels']
        arrays, missing = self.cache.lookup(img_id, labels, self.max_fg,
                                            self.max_bg)
        if missing:
            msg = (f'image {img_id!r}, class(es) {missing}: no entry in the '
                   f'text-feature cache {self.cache.index_path}')
            if not self.skip_missing:
                raise KeyError(msg + ' (rebuild the cache from a corpus '
                               'covering this split, or set '
                               'skip_missing=True)')
            if not self._warned:
                print_log(msg + '; such pairs get empty FG/BG masks '
                          '(skip_missing=True; warned once)',
                          logger='current', level=30)
                self._warned = True
        results['qa_feats'] = {
            k: torch.from_numpy(v) for k, v in arrays.items()
        }
        return results

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(cache_prefix={self.cache_prefix!r}, '
                f'max_fg={self.max_fg}, max_bg={self.max_bg}, '
                f'skip_missing={self.skip_missing})')
