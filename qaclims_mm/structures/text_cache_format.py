"""The text-feature cache format (spec §2.5, §2.6) and its reader.

A cache is two files sharing a prefix:

``<prefix>.safetensors``
    ``features`` [U, D] float32: one row per unique string;
    ``class_features`` [C, D] float32: ``prompt.format(class)`` of each class
    of ``class_names``, in dataset label order.

``<prefix>.json``, the index::

    {"format": "qaclims-mm/text-cache", "schema_version": 1,
     "model": "ViT-L-14-quickgelu", "pretrained": "/path/weights.bin",
     "prompt": "a photo of {}.", "dim": 768, "normalized": true,
     "features_file": "<prefix name>.safetensors",
     "questions": {"fg": [...], "bg": [...]}, "corpus_meta": {...},
     "class_names": ["aeroplane", ...],
     "strings": ["jet aeroplane", "sky", ...],          # row i of features
     "pairs": {"2007_000032": {"aeroplane": {"fg": [6 rows], "bg": [L rows]}}}}

A *prompt cache* (CLIMS) has the same two files: ``class_features`` hold one
full prompt per class (listed in the index's ``class_prompts``), ``features``
the fixed background prompts (``strings``), ``prompt`` is ``'{}'`` and
``pairs`` is empty.

The caches are built by :mod:`qaclims_mm.qape.text_cache` (the encoders);
this module only reads them, with numpy, so that the data pipeline
(``LoadQACorpus``) and the heads' text sources need nothing above the bottom
layer. :class:`TextFeatureCache` memory-maps ``features`` (the page cache is
shared between dataloader workers) and turns an image's labels into padded
arrays with array indexing.
"""
import json
import os.path as osp
import struct
from typing import Dict, List, Sequence, Tuple

import numpy as np

__all__ = [
    'TEXT_CACHE_FORMAT', 'TEXT_CACHE_SCHEMA_VERSION', 'load_text_cache_index',
    'safetensors_memmap', 'TextFeatureCache'
]

TEXT_CACHE_FORMAT = 'qaclims-mm/text-cache'
TEXT_CACHE_SCHEMA_VERSION = 1


def load_text_cache_index(prefix: str) -> dict:
    """Read and check ``<prefix>.json``.

    Args:
        prefix (str): The cache prefix.

    Returns:
        dict: The index.

    Raises:
        FileNotFoundError: naming the missing index or features file.
        ValueError: naming the file on a wrong format or schema version.
    """
    path = prefix + '.json'
    if not osp.isfile(path):
        raise FileNotFoundError(
            f'text-feature cache index not found: {path} (build it with '
            'tools/build_text_cache.py --out ' + prefix + ')')
    with open(path, encoding='utf-8') as f:
        try:
            index = json.load(f)
        except json.JSONDecodeError as e:
            raise ValueError(f'{path}: not valid JSON ({e})') from None
    if not isinstance(index, dict) or index.get('format') != TEXT_CACHE_FORMAT:
        raise ValueError(f'{path}: not a text-feature cache index')
    if index.get('schema_version') != TEXT_CACHE_SCHEMA_VERSION:
        raise ValueError(f'{path}: unsupported schema_version '
                         f'{index.get("schema_version")!r}; this code reads '
                         f'version {TEXT_CACHE_SCHEMA_VERSION}')
    return index


def safetensors_memmap(path: str, name: str) -> np.ndarray:
    """A read-only memory map of one float32 tensor of a safetensors file.

    Args:
        path (str): The ``.safetensors`` file.
        name (str): The tensor's name (``features``, ``class_features``).

    Returns:
        np.ndarray: The tensor, memory-mapped (a plain zero array when it is
        empty).

    Raises:
        FileNotFoundError: naming the missing file.
        KeyError: when the file has no tensor ``name``.
        ValueError: when the tensor is not float32.
    """
    if not osp.isfile(path):
        raise FileNotFoundError(f'text-feature file not found: {path}')
    with open(path, 'rb') as f:
        (header_len, ) = struct.unpack('<Q', f.read(8))
        header = json.loads(f.read(header_len))
    if name not in header:
        raise KeyError(f'{path} has no tensor {name!r}')
    info = header[name]
    if info['dtype'] != 'F32':
        raise ValueError(f'{path}: tensor {name!r} is {info["dtype"]}, '
                         'expected F32')
    shape = tuple(info['shape'])
    start, _ = info['data_offsets']
    if 0 in shape:
        return np.zeros(shape, np.float32)
    return np.memmap(path, dtype='<f4', mode='r',
                     offset=8 + header_len + start, shape=shape)


class TextFeatureCache:
    """Reader of a text-feature cache, for the training pipeline.

    The index is compacted into integer tables at load time (no per-sample
    dict walking): ``pair_table`` [N_img, C] holds the pair number of each
    (image, class) or -1, and ``fg_table`` [P, F] / ``bg_table`` [P, B] the
    feature rows of each pair, padded with -1. ``features`` is memory-mapped.

    Args:
        prefix (str): The cache prefix (``<prefix>.json`` /
            ``<prefix>.safetensors``).
    """

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.index_path = prefix + '.json'
        index = load_text_cache_index(prefix)
        self.class_names: Tuple[str, ...] = tuple(index['class_names'])
        self.model = index.get('model')
        self.prompt = index.get('prompt')
        class_row = {c: i for i, c in enumerate(self.class_names)}
        pairs = index['pairs']
        self.img_row: Dict[str, int] = {k: i for i, k in enumerate(pairs)}
        self.pair_table = np.full((len(pairs), len(self.class_names)), -1,
                                  np.int64)
        fg_lists, bg_lists = [], []
        for img_id, per_img in pairs.items():
            for class_name, rows in per_img.items():
                if class_name not in class_row:
                    raise ValueError(f'{self.index_path}: image {img_id!r} '
                                     f'has unknown class {class_name!r}')
                self.pair_table[self.img_row[img_id],
                                class_row[class_name]] = len(fg_lists)
                fg_lists.append(rows['fg'])
                bg_lists.append(rows['bg'])
        self.fg_table = self._pad(fg_lists)
        self.bg_table = self._pad(bg_lists)
        feat_path = osp.join(osp.dirname(prefix),
                             index.get('features_file',
                                       osp.basename(prefix) + '.safetensors'))
        self.features_path = feat_path
        self.features = safetensors_memmap(feat_path, 'features')  # [U, D]
        self.class_features = np.array(
            safetensors_memmap(feat_path, 'class_features'))  # [C, D]
        if len(self.class_features) != len(self.class_names):
            raise ValueError(f'{feat_path}: {len(self.class_features)} class '
                             f'features for {len(self.class_names)} classes '
                             f'in {self.index_path}')
        self.dim = int(self.class_features.shape[1])

    @staticmethod
    def _pad(lists: List[List[int]]) -> np.ndarray:
        width = max((len(x) for x in lists), default=0)
        table = np.full((len(lists), width), -1, np.int64)
        for i, rows in enumerate(lists):
            table[i, :len(rows)] = rows
        return table

    @property
    def max_fg(self) -> int:
        """The largest FG text count of a pair."""
        return self.fg_table.shape[1]

    @property
    def max_bg(self) -> int:
        """The largest BG text count of a pair."""
        return self.bg_table.shape[1]

    def _gather(self, table: np.ndarray, pair_idx: np.ndarray,
                width: int) -> Tuple[np.ndarray, np.ndarray]:
        k = len(pair_idx)
        rows = np.full((k, width), -1, np.int64)
        found = pair_idx >= 0
        rows[found, :table.shape[1]] = table[pair_idx[found]]
        mask = rows >= 0  # [K, width]
        feats = np.zeros((k, width, self.dim), np.float32)
        if mask.any():
            feats[mask] = self.features[rows[mask]]
        return feats, mask

    def lookup(self, img_id: str, labels: Sequence[int], max_fg: int = 6,
               max_bg: int = 10) -> Tuple[Dict[str, np.ndarray], List[str]]:
        """Padded features of the (image, class) pairs of one sample.

        Args:
            img_id (str): The image id.
            labels (Sequence[int]): K class indices into ``class_names``.
            max_fg (int): FG slots. Defaults to 6.
            max_bg (int): BG slots. Defaults to 10.

        Returns:
            tuple: ``(arrays, missing)``: ``class_feats`` [K, D],
            ``fg_feats`` [K, max_fg, D], ``fg_mask`` [K, max_fg],
            ``bg_feats`` [K, max_bg, D], ``bg_mask`` [K, max_bg]; and the
            names of the classes without an entry (their masks all False).

        Raises:
            ValueError: if the cache holds more texts per pair than the slots.
            IndexError: for a label outside ``class_names``.
        """
        if self.max_fg > max_fg or self.max_bg > max_bg:
            raise ValueError(
                f'{self.index_path} holds up to {self.max_fg} FG / '
                f'{self.max_bg} BG texts per pair, more than max_fg={max_fg} '
                f'/ max_bg={max_bg}: raise max_fg / max_bg')
        labels = np.asarray(labels, np.int64).reshape(-1)
        if labels.size and (labels.min() < 0
                            or labels.max() >= len(self.class_names)):
            raise IndexError(f'image {img_id!r}: labels {labels.tolist()} '
                             f'out of range for the {len(self.class_names)} '
                             f'classes of {self.index_path}')
        row = self.img_row.get(img_id)
        if row is None:
            pair_idx = np.full(len(labels), -1, np.int64)
        else:
            pair_idx = self.pair_table[row, labels]
        fg_feats, fg_mask = self._gather(self.fg_table, pair_idx, max_fg)
        bg_feats, bg_mask = self._gather(self.bg_table, pair_idx, max_bg)
        missing = [self.class_names[c] for c in labels[pair_idx < 0]]
        arrays = dict(
            class_feats=self.class_features[labels],
            fg_feats=fg_feats,
            fg_mask=fg_mask,
            bg_feats=bg_feats,
            bg_mask=bg_mask)
        return arrays, missing
