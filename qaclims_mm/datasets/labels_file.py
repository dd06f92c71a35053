"""Image-level label files: ``{image id: [class indices]}`` for a whole dataset.

Our converters write one JSON file per dataset::

    {"version": 1, "dataset": "voc",
     "classes": ["aeroplane", ..., "tv monitor"],
     "labels": {"2007_000032": [0, 14], ...}}

Class indices are 0-based object classes (no background), sorted and unique. An
image with no object is stored with ``[]`` (possible on COCO only).

The official ``voc12/cls_labels.npy`` (a pickled dict from an integer id such as
``2007000032`` to a multi-hot float vector) is read only on explicit opt-in
(``trust_pickle=True``), since unpickling can run code from the file; convert
it once into the JSON format with ``tools/convert_official_labels.py``.
"""
import json
import os.path as osp
from typing import Dict, List, Optional, Sequence

import numpy as np

from ..utils.io import atomic_write_text
from ..utils.safe_load import load_pickled_npy

LABELS_FORMAT_VERSION = 1


def save_labels_file(path: str, labels: Dict[str, Sequence[int]],
                     classes: Sequence[str], dataset: str) -> None:
    """Write a labels JSON file atomically.

    Args:
        path (str): Output path.
        labels (dict[str, Sequence[int]]): Image id -> class indices.
        classes (Sequence[str]): The class names the indices refer to.
        dataset (str): ``'voc'`` or ``'coco'`` (recorded for provenance).
    """
    num = len(classes)
    clean = {}
    for img_id, idx in sorted(labels.items()):
        idx = sorted({int(i) for i in idx})
        if idx and (idx[0] < 0 or idx[-1] >= num):
            raise ValueError(f'image {img_id!r}: class index out of range '
                             f'[0, {num}): {idx}')
        clean[img_id] = idx
    # one image per line: readable and diff-able, compact for 82k COCO ids
    lines = ',\n'.join(f'{json.dumps(k)}: {json.dumps(v)}'
                        for k, v in clean.items())
    atomic_write_text(
        path, f'{{"version": {LABELS_FORMAT_VERSION}, '
        f'"dataset": {json.dumps(dataset)},\n"classes": '
        f'{json.dumps(list(classes))},\n"labels": {{\n{lines}\n}}}}\n')


def _decode_official_id(key) -> str:
    """``2007000032`` -> ``'2007_000032'`` (the official cls_labels.npy keys)."""
    s = str(int(key))
    return f'{s[:4]}_{s[4:]}'


def _load_official_labels(path: str, classes: Optional[Sequence[str]],
                          trust_pickle: bool) -> Dict[str, List[int]]:
    """Read the official pickled ``cls_labels.npy`` (on opt-in only)."""
    converter = ('python tools/convert_official_labels.py '
                 f'{path} {osp.splitext(path)[0]}.json --trust-pickle')
    raw = load_pickled_npy(path, trust_pickle, converter,
                           what='an official cls_labels.npy')
    if not isinstance(raw, dict):
        raise ValueError(f'{path}: expected a dict {{image id: multi-hot '
                         f'vector}}, got {type(raw).__name__}')
    labels = {}
    for key, vec in raw.items():
        img_id = key if isinstance(key, str) else _decode_official_id(key)
        vec = np.asarray(vec).reshape(-1)
        if classes is not None and vec.size != len(classes):
            raise ValueError(f'{path}: image {img_id!r} has a label vector '
                             f'of length {vec.size}, expected '
                             f'{len(classes)} classes')
        labels[img_id] = np.flatnonzero(vec > 0.5).tolist()
    return labels


def load_labels_file(path: str,
                     classes: Optional[Sequence[str]] = None,
                     trust_pickle: bool = False) -> Dict[str, List[int]]:
    """Read a labels file (ours, ``.json``; or the official ``.npy``).

    Args:
        path (str): The file.
        classes (Sequence[str], optional): When given, the file's class list
            must equal it (guards against a COCO file used for VOC, or a
            reordered class list).
        trust_pickle (bool): Unpickle the official ``cls_labels.npy``.
            Unpickling can run code from the file: only for a file you trust
            (better, convert it once with
            ``tools/convert_official_labels.py``). Defaults to False (a
            ``.npy`` is refused with an error naming the file).

    Returns:
        dict[str, list[int]]: Image id -> sorted 0-based class indices.

    Raises:
        FileNotFoundError, ValueError: naming the file and the problem.
    """
    if not osp.isfile(path):
        raise FileNotFoundError(
            f'image-level labels file not found: {path} (write it with '
            f'tools/dataset_converters/voc12_wsss.py or coco14_wsss.py)')
    if path.endswith('.npy'):
        return _load_official_labels(path, classes, trust_pickle)
    try:
        with open(path, encoding='utf-8') as f:
            payload = json.load(f)
        file_classes = payload['classes']
        labels = payload['labels']
    except (json.JSONDecodeError, KeyError, TypeError) as e:
        raise ValueError(f'{path}: not a qaclims-mm labels file ({e})') from e
    if classes is not None and list(file_classes) != list(classes):
        raise ValueError(
            f'{path}: its classes {file_classes[:3]}... do not match the '
            f"dataset's classes {list(classes)[:3]}... ({len(file_classes)} vs "
            f'{len(classes)} classes)')
    num = len(file_classes)
    out = {}
    for img_id, idx in labels.items():
        idx = sorted({int(i) for i in idx})  # the documented invariant
        if any(not 0 <= i < num for i in idx):
            raise ValueError(f'{path}: image {img_id!r} has class indices '
                             f'{idx} outside [0, {num})')
        out[img_id] = idx
    return out
