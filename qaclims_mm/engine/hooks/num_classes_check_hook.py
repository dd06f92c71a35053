"""Refuse a model whose class count exceeds its dataset's, before any step.

A CAM classifier with ``num_classes=80`` on VOC (20 classes) trains without
complaint: the 60 extra outputs only ever see negative labels. A segmenter
whose decode head is wider than the dataset does the same. The check names
the config key to fix.
"""
from typing import Optional, Sequence, Tuple

from mmengine.hooks import Hook
from mmseg.registry import HOOKS


def _unwrap(model):
    """The segmentor inside DDP / TTA wrappers."""
    while hasattr(model, 'module'):
        model = model.module
    return model


def model_class_counts(model) -> Sequence[Tuple[str, int, bool]]:
    """``(config key, num_classes, counts background)`` of each class head.

    Args:
        model: A built segmentor (wrapped or not).

    Returns:
        list[tuple[str, int, bool]]: ``cam_head`` (object classes only),
        ``decode_head`` and ``auxiliary_head`` (background included);
        empty for a model without such heads.
    """
    model = _unwrap(model)
    counts = []
    head = getattr(model, 'cam_head', None)
    if head is not None and isinstance(getattr(head, 'num_classes', None),
                                       int):
        counts.append(('model.cam_head.num_classes', head.num_classes, False))
    for name in ('decode_head', 'auxiliary_head'):
        heads = getattr(model, name, None)
        if heads is None:
            continue
        many = isinstance(heads, (list, tuple)) or type(
            heads).__name__ == 'ModuleList'
        for i, h in enumerate(heads if many else [heads]):
            n = getattr(h, 'num_classes', None)
            if isinstance(n, int):
                key = f'model.{name}' + (f'.{i}' if many else '')
                counts.append((f'{key}.num_classes', n, True))
    return counts


def check_num_classes(model, classes: Sequence[str],
                      dataset_name: str = 'the dataset') -> None:
    """Raise when a class head of ``model`` is wider than the dataset.

    Args:
        model: A built segmentor.
        classes (Sequence[str]): The dataset's ``metainfo['classes']``,
            background first.
        dataset_name (str): Named in the error. Defaults to
            ``'the dataset'``.

    Raises:
        ValueError: naming the config key, both counts and the dataset.
    """
    num_with_bg = len(classes)
    for key, num, with_bg in model_class_counts(model):
        limit = num_with_bg if with_bg else num_with_bg - 1
        if num > limit:
            what = ('classes (background included)' if with_bg else
                    'object classes (background excluded)')
            raise ValueError(
                f'{key} = {num}, but {dataset_name} has {limit} {what}; '
                f'the extra outputs would never see a positive label. Set '
                f'{key}={limit} (e.g. --cfg-options {key}={limit})')


@HOOKS.register_module()
class NumClassesCheckHook(Hook):
    """Run :func:`check_num_classes` before training and before testing.

    ``tools/train.py`` and ``tools/test.py`` add it to every config.
    """
    priority = 'VERY_HIGH'

    @staticmethod
    def _check(runner, loader) -> None:
        dataset = getattr(loader, 'dataset', None)
        meta: Optional[dict] = getattr(dataset, 'metainfo', None)
        if not meta or 'classes' not in meta:
            return
        check_num_classes(runner.model, meta['classes'],
                          f'{type(dataset).__name__} '
                          f'({getattr(dataset, "data_root", "") or "?"})')

    def before_train(self, runner) -> None:
        self._check(runner, runner.train_dataloader)

    def before_test(self, runner) -> None:
        self._check(runner, runner.test_dataloader)


def add_num_classes_check(cfg) -> None:
    """Add :class:`NumClassesCheckHook` to ``cfg.custom_hooks`` (once).

    Args:
        cfg (mmengine.Config): A train or test config, changed in place.
    """
    hooks = list(cfg.get('custom_hooks', []) or [])
    if not any(h.get('type') in ('NumClassesCheckHook', NumClassesCheckHook)
               for h in hooks):
        hooks.append(dict(type='NumClassesCheckHook'))
    cfg.custom_hooks = hooks
