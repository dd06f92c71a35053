"""CLIP text-feature cache of a QA corpus (spec §2.5, §2.6).

Every *unique* post-processed string of the corpus (FG texts and BG texts
together) is encoded once as ``prompt.format(s)`` (default
``'a photo of {}.'``) with an open_clip text tower and L2-normalised, as the
official ``gen_clip_features`` does. Two files share a prefix:

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

A *prompt cache* (:func:`build_prompt_text_cache`, CLIMS) has the same two
files: ``class_features`` hold one full prompt per class (listed in the
index's ``class_prompts``), ``features`` the fixed background prompts
(``strings``), ``prompt`` is ``'{}'`` and ``pairs`` is empty.

The official code stores one tensor per (image, class, answer) in pickled
dicts; sharing rows between identical strings makes the cache ~10x smaller
and readable through a memory map. Reading is :class:`TextFeatureCache`: it
memory-maps ``features`` (the page cache is shared between dataloader
workers) and turns an image's labels into padded tensors with array indexing.

Class features are encoded with the same text tower as the answers. In the
official code the class feature comes from the training CLIP (OV-Seg); its
text tower is expected to equal OpenAI ViT-L/14 (spec §2.5, to verify).
"""
import json
import os.path as osp
import struct
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

from ..datasets.class_names import COCO_CLASSES, VOC_CLASSES
from ..utils.io import atomic_write_bytes, atomic_write_text
from ..utils.safe_load import is_torchscript_archive, load_torchscript_tensors
from .corpus import QACorpus
from .questions import TEXT_PROMPT, check_template

__all__ = [
    'TEXT_CACHE_FORMAT', 'TEXT_CACHE_SCHEMA_VERSION', 'load_text_encoder',
    'encode_texts', 'collect_strings', 'build_text_cache',
    'build_prompt_text_cache', 'load_text_cache_index', 'TextFeatureCache'
]

TEXT_CACHE_FORMAT = 'qaclims-mm/text-cache'
TEXT_CACHE_SCHEMA_VERSION = 1
LOCAL_DIR_PREFIX = 'local-dir:'


def load_text_encoder(model_name: str,
                      pretrained: Optional[str] = None,
                      device: str = 'cpu') -> Tuple[torch.nn.Module, object]:
    """Build an open_clip model from local weights, with its tokenizer.

    Args:
        model_name (str): An open_clip architecture name (``ViT-L-14``;
            ``ViT-L-14-quickgelu`` for the OpenAI weights, which use
            QuickGELU), or ``'local-dir:<folder>'`` holding
            ``open_clip_config.json`` and the weights (then ``pretrained`` is
            ignored).
        pretrained (str, optional): Path of the weights file (``.bin``,
            ``.pt``, ``.pth`` or ``.safetensors`` state dict, or OpenAI's
            TorchScript ``ViT-L-14.pt``, whose tensors are read without
            running its code). Required unless ``model_name`` is a local
            dir. Never downloaded.
        device (str): Defaults to 'cpu'.

    Returns:
        tuple: ``(model in eval mode, tokenizer)``.

    Raises:
        FileNotFoundError: naming the missing weights file or folder.
    """
    import open_clip
    if model_name.startswith(LOCAL_DIR_PREFIX):
        folder = model_name[len(LOCAL_DIR_PREFIX):]
        if not osp.isfile(osp.join(folder, 'open_clip_config.json')):
            raise FileNotFoundError(
                f'open_clip model folder {folder} lacks open_clip_config.json '
                '(a local-dir: model needs the config and the weights)')
        pretrained = None
    elif not pretrained or not osp.isfile(pretrained):
        raise FileNotFoundError(
            f'CLIP weights for {model_name!r} not found: {pretrained} '
            '(nothing is downloaded: save the open_clip / OpenAI state dict, '
            'e.g. open_clip_pytorch_model.bin of the ViT-L-14 OpenAI release, '
            'and pass its path as --pretrained)')
    if pretrained and is_torchscript_archive(pretrained):
        # open_clip reads weights with torch.load(weights_only=True), which
        # refuses TorchScript (and torch.jit.load would run the archive)
        model = open_clip.create_model(model_name, device=device)
        _load_torchscript_weights(model, pretrained)
    else:
        model = open_clip.create_model(
            model_name, pretrained=pretrained, device=device,
            require_pretrained=True)
    model.eval()
    return model, open_clip.get_tokenizer(model_name)


def _load_torchscript_weights(model: torch.nn.Module, path: str) -> None:
    """Load the tensors of a TorchScript CLIP archive strictly into ``model``.

    Every entry of ``model.state_dict()`` must be in the archive with the
    same shape; the archive's other tensor attributes (OpenAI's text
    ``attn_mask``, ``input_resolution``, ...) are ignored.

    Raises:
        RuntimeError: naming ``path`` and the first missing or mismatched
            keys.
    """
    tensors = load_torchscript_tensors(path)
    target = model.state_dict()
    missing = [k for k in target if k not in tensors]
    wrong = [f'{k}: {tuple(tensors[k].shape)} vs {tuple(v.shape)}'
             for k, v in target.items()
             if k in tensors and tensors[k].shape != v.shape]
    if missing or wrong:
        raise RuntimeError(
            f'{path}: does not match the open_clip model '
            f'(missing {len(missing)}: {missing[:5]}; wrong shape '
            f'{len(wrong)}: {wrong[:5]}); check --model')
    model.load_state_dict({k: tensors[k] for k in target}, strict=True)


@torch.no_grad()
def encode_texts(model: torch.nn.Module,
                 tokenizer,
                 texts: Sequence[str],
                 prompt: str = TEXT_PROMPT,
                 batch_size: int = 256,
                 device: str = 'cpu',
                 progress: bool = False) -> torch.Tensor:
    """L2-normalised text embeddings of ``prompt.format(t)`` for each text.

    Args:
        model (torch.nn.Module): An open_clip model (``encode_text``).
        tokenizer: Its tokenizer.
        texts (Sequence[str]): The strings.
        prompt (str): The prompt with one ``{}``. Defaults to
            ``'a photo of {}.'``.
        batch_size (int): Defaults to 256.
        device (str): Defaults to 'cpu'.
        progress (bool): Show a progress bar. Defaults to False.

    Returns:
        torch.Tensor: [N, D] float32 on the CPU, unit rows.
    """
    check_template(prompt, 'prompt')
    chunks = []
    starts = range(0, len(texts), batch_size)
    if progress:
        from tqdm import tqdm
        starts = tqdm(starts, desc='encoding texts', unit='batch')
    for s in starts:
        tokens = tokenizer([prompt.replace('{}', t)
                            for t in texts[s:s + batch_size]]).to(device)
        feats = model.encode_text(tokens).float()
        chunks.append(torch.nn.functional.normalize(feats, dim=-1).cpu())
    if not chunks:  # keep the width: encode one dummy text
        dim = model.encode_text(tokenizer(['']).to(device)).shape[-1]
        return torch.zeros(0, dim)
    return torch.cat(chunks)


def collect_strings(corpus: QACorpus
                    ) -> Tuple[List[str], Dict[str, Dict[str, dict]]]:
    """Unique texts of a corpus and, per pair, their row indices.

    Args:
        corpus (QACorpus): The corpus.

    Returns:
        tuple: ``(strings, pairs)``: ``strings`` in first-occurrence order over
        the pairs sorted by image id then class (FG texts before BG texts);
        ``pairs[img_id][class] = {'fg': [rows], 'bg': [rows]}``.
    """
    row_of: Dict[str, int] = {}
    pairs: Dict[str, Dict[str, dict]] = {}
    for img_id, class_name, entry in corpus.pairs():
        rows = {}
        for kind, texts in (('fg', entry.fg_texts), ('bg', entry.bg_texts)):
            rows[kind] = [row_of.setdefault(t, len(row_of)) for t in texts]
        pairs.setdefault(img_id, {})[class_name] = rows
    return list(row_of), pairs


def _default_class_names(corpus: QACorpus) -> Tuple[str, ...]:
    used = set(corpus.class_names)
    for names in (VOC_CLASSES, COCO_CLASSES):
        if used <= set(names):
            return names
    raise ValueError(f'cannot guess the dataset of corpus classes '
                     f'{sorted(used - set(VOC_CLASSES))[:5]}...; pass '
                     'class_names (--classes)')


def _safetensors_bytes(tensors: Dict[str, torch.Tensor],
                       metadata: Dict[str, str]) -> bytes:
    from safetensors.torch import save
    return save({k: v.contiguous() for k, v in tensors.items()},
                metadata=metadata)


def _reusable_features(out_prefix: str, model_name: str, pretrained: str,
                       prompt: str) -> Dict[str, np.ndarray]:
    """Features of an existing cache made with the same encoder and prompt."""
    json_path = out_prefix + '.json'
    if not (osp.isfile(json_path) and osp.isfile(out_prefix + '.safetensors')):
        return {}
    try:
        old = load_text_cache_index(out_prefix)
    except ValueError:
        return {}
    if (old.get('model'), old.get('pretrained'), old.get('prompt')) != \
            (model_name, pretrained, prompt):
        return {}
    feats = _safetensors_memmap(out_prefix + '.safetensors', 'features')
    return {s: np.asarray(feats[i]) for i, s in enumerate(old['strings'])}


def build_text_cache(corpus: QACorpus,
                     model_name: str,
                     pretrained: Optional[str],
                     out_prefix: str,
                     prompt: str = TEXT_PROMPT,
                     batch_size: int = 256,
                     device: str = 'cpu',
                     progress: bool = True,
                     class_names: Optional[Sequence[str]] = None,
                     reuse: bool = True) -> dict:
    """Encode the corpus texts once; write ``<out_prefix>.{safetensors,json}``.

    Args:
        corpus (QACorpus): The corpus.
        model_name (str): open_clip architecture or ``local-dir:<folder>``
            (see :func:`load_text_encoder`).
        pretrained (str, optional): Local weights file.
        out_prefix (str): Output path without suffix.
        prompt (str): Defaults to ``'a photo of {}.'``.
        batch_size (int): Texts per forward pass. Defaults to 256.
        device (str): Defaults to 'cpu'.
        progress (bool): Show progress bars. Defaults to True.
        class_names (Sequence[str], optional): The dataset's classes in label
            order (rows of ``class_features``; ``img_labels`` index them).
            Defaults to VOC or COCO, whichever contains all corpus classes.
        reuse (bool): Take the features of strings already in an existing
            cache at ``out_prefix`` made with the same model, weights and
            prompt, and encode only new strings. Defaults to True.

    Returns:
        dict: The index written to ``<out_prefix>.json``.

    Raises:
        FileNotFoundError: naming missing weights.
        ValueError: if a corpus class is not in ``class_names``.
    """
    check_template(prompt, 'prompt')
    class_names = tuple(class_names or _default_class_names(corpus))
    unknown = sorted(set(corpus.class_names) - set(class_names))
    if unknown:
        raise ValueError(f'corpus classes {unknown} are not in class_names '
                         f'{list(class_names)}')
    if pretrained and not model_name.startswith(LOCAL_DIR_PREFIX):
        pretrained = osp.abspath(pretrained)
    model, tokenizer = load_text_encoder(model_name, pretrained, device)
    strings, pairs = collect_strings(corpus)

    known = _reusable_features(out_prefix, model_name, pretrained,
                               prompt) if reuse else {}
    todo = [s for s in strings if s not in known]
    new = encode_texts(model, tokenizer, todo, prompt, batch_size, device,
                       progress).numpy()
    class_feats = encode_texts(model, tokenizer, list(class_names), prompt,
                               batch_size, device, False)
    dim = class_feats.shape[1]
    feats = np.zeros((len(strings), dim), np.float32)
    new_row = {s: i for i, s in enumerate(todo)}
    for i, s in enumerate(strings):
        feats[i] = new[new_row[s]] if s in new_row else known[s]

    index = dict(
        format=TEXT_CACHE_FORMAT,
        schema_version=TEXT_CACHE_SCHEMA_VERSION,
        model=model_name,
        pretrained=pretrained,
        prompt=prompt,
        dim=int(dim),
        dtype='float32',
        normalized=True,
        features_file=osp.basename(out_prefix) + '.safetensors',
        questions=corpus.questions.to_dict(),
        corpus_meta={k: corpus.meta[k] for k in ('created', 'model', 'source',
                                                 'lemmatizer')
                     if k in corpus.meta},
        class_names=list(class_names),
        strings=strings,
        pairs=pairs)
    atomic_write_bytes(
        out_prefix + '.safetensors',
        _safetensors_bytes(
            dict(features=torch.from_numpy(feats),
                 class_features=class_feats),
            metadata=dict(format=TEXT_CACHE_FORMAT,
                          schema_version=str(TEXT_CACHE_SCHEMA_VERSION),
                          model=model_name, prompt=prompt)))
    # the index last: its presence means the cache is complete
    _write_index(out_prefix + '.json', index)
    return index


def build_prompt_text_cache(model_name: str,
                            pretrained: Optional[str],
                            out_prefix: str,
                            class_names: Sequence[str],
                            class_prompts: Sequence[str],
                            background_prompts: Sequence[str],
                            device: str = 'cpu') -> dict:
    """Encode fixed prompts once; write ``<out_prefix>.{safetensors,json}``.

    The CLIMS text source (``PromptTextSource``) reads this file, so that no
    text encoder is loaded when the model is built. The class prompts and the
    background prompts are encoded in two calls of :func:`encode_texts`
    (prompt ``'{}'``: the strings are used as given).

    Args:
        model_name (str): open_clip architecture or ``local-dir:<folder>``.
        pretrained (str, optional): Local weights file.
        out_prefix (str): Output path without suffix.
        class_names (Sequence[str]): The dataset's classes, in label order.
        class_prompts (Sequence[str]): One full prompt per class (rows of
            ``class_features``).
        background_prompts (Sequence[str]): The fixed background prompts
            (rows of ``features``).
        device (str): Defaults to 'cpu'.

    Returns:
        dict: The index written to ``<out_prefix>.json``.
    """
    if len(class_prompts) != len(class_names):
        raise ValueError(f'{len(class_prompts)} class prompts for '
                         f'{len(class_names)} classes')
    if pretrained and not model_name.startswith(LOCAL_DIR_PREFIX):
        pretrained = osp.abspath(pretrained)
    model, tokenizer = load_text_encoder(model_name, pretrained, device)
    class_feats = encode_texts(model, tokenizer, list(class_prompts), '{}',
                               device=device)
    bg_feats = encode_texts(model, tokenizer, list(background_prompts), '{}',
                            device=device)
    index = dict(
        format=TEXT_CACHE_FORMAT,
        schema_version=TEXT_CACHE_SCHEMA_VERSION,
        model=model_name,
        pretrained=pretrained,
        prompt='{}',
        dim=int(class_feats.shape[1]),
        dtype='float32',
        normalized=True,
        features_file=osp.basename(out_prefix) + '.safetensors',
        questions={},
        corpus_meta={},
        class_names=list(class_names),
        class_prompts=list(class_prompts),
        strings=list(background_prompts),
        pairs={})
    atomic_write_bytes(
        out_prefix + '.safetensors',
        _safetensors_bytes(
            dict(features=bg_feats, class_features=class_feats),
            metadata=dict(format=TEXT_CACHE_FORMAT,
                          schema_version=str(TEXT_CACHE_SCHEMA_VERSION),
                          model=model_name, prompt='{}')))
    _write_index(out_prefix + '.json', index)
    return index


def _write_index(path: str, index: dict) -> None:
    head = {k: v for k, v in index.items() if k not in ('strings', 'pairs')}
    lines = [json.dumps(head, ensure_ascii=False)[:-1] + ',']
    lines.append('"strings": ' + json.dumps(index['strings'],
                                            ensure_ascii=False) + ',')
    pair_lines = [
        f'{json.dumps(img_id)}: {json.dumps(per_img, ensure_ascii=False)}'
        for img_id, per_img in index['pairs'].items()
    ]
    lines.append('"pairs": {\n' + ',\n'.join(pair_lines) + '\n}}')
    atomic_write_text(path, '\n'.join(lines) + '\n')


def load_text_cache_index(prefix: str) -> dict:
    """Read and check ``<prefix>.json``.

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


def _safetensors_memmap(path: str, name: str) -> np.ndarray:
    """A read-only memory map of one float32 tensor of a safetensors file."""
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
        self.features = _safetensors_memmap(feat_path, 'features')  # [U, D]
        self.class_features = np.array(
            _safetensors_memmap(feat_path, 'class_features'))  # [C, D]
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
