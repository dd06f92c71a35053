"""Class names and palette of a dataset, from its registered type or config.

Tools and stages take the dataset (``VOC12WSSSDataset``, ``COCO14WSSSDataset``
or a config file whose ``train_dataloader.dataset`` names one) and read its
``METAINFO``; nothing is guessed from a class count.
"""
import os.path as osp
from typing import Dict, Optional

from .label_io import label_colormap

DEFAULT_DATASET = 'VOC12WSSSDataset'


def dataset_metainfo(dataset: Optional[str] = DEFAULT_DATASET,
                     num_classes: Optional[int] = None) -> Dict:
    """``classes`` (background first) and ``palette`` of a dataset.

    Args:
        dataset (str, optional): A registered dataset type, or a config file
            (its ``train_dataloader.dataset``, else ``test_dataloader``'s).
            None with ``num_classes`` describes a generic dataset. Defaults
            to ``'VOC12WSSSDataset'``.
        num_classes (int, optional): Object classes. With ``dataset`` it
            must match; without, names ``class0..`` and the colour map.

    Returns:
        dict: ``classes`` (tuple of names) and ``palette`` (RGB triplets).

    Raises:
        KeyError: for an unknown dataset type; ValueError: for a class count
        that differs from the dataset's.
    """
    if dataset is None:
        if num_classes is None:
            raise ValueError('give a dataset or a number of classes')
        return dict(classes=('background', ) + tuple(
            f'class{i}' for i in range(num_classes)),
                    palette=label_colormap(num_classes + 1))
    dataset_type = dataset
    if dataset.endswith('.py'):
        from mmengine.config import Config
        if not osp.isfile(dataset):
            raise FileNotFoundError(f'dataset config not found: {dataset}')
        cfg = Config.fromfile(dataset)
        loader = cfg.get('train_dataloader') or cfg.get('test_dataloader')
        if not loader or 'type' not in loader.get('dataset', {}):
            raise KeyError(f'{dataset}: no train_dataloader.dataset.type')
        dataset_type = loader['dataset']['type']
    from mmseg.registry import DATASETS
    cls = DATASETS.get(dataset_type)
    if cls is None:
        raise KeyError(f'unknown dataset type {dataset_type!r} (registered '
                       f'WSSS datasets: VOC12WSSSDataset, COCO14WSSSDataset)')
    meta = dict(classes=tuple(cls.METAINFO['classes']),
                palette=[list(c) for c in cls.METAINFO['palette']])
    if num_classes is not None and num_classes != len(meta['classes']) - 1:
        raise ValueError(f'{num_classes} classes given, but {dataset_type} '
                         f'has {len(meta["classes"]) - 1}')
    return meta
