"""CLIP text-feature cache of a QA corpus (spec §2.5, §2.6).

Every *unique* post-processed string of the corpus (FG texts and BG texts
together) is encoded once as ``prompt.format(s)`` (default
``'a photo of {}.'``) with an open_clip text tower and L2-normalised, as the
official ``gen_clip_features`` does, and written in the text-feature cache
format (``<prefix>.safetensors`` + ``<prefix>.json``) described and read by
:mod:`qaclims_mm.structures.text_cache_format`. A *prompt cache*
(:func:`build_prompt_text_cache`, CLIMS) holds one full prompt per class and
the fixed background prompts in the same format.

The official code stores one tensor per (image, class, answer) in pickled
dicts; sharing rows between identical strings makes the cache ~10x smaller
and readable through a memory map
(:class:`~qaclims_mm.structures.text_cache_format.TextFeatureCache`).

Class features are encoded with the same text tower as the answers. In the
official code the class feature comes from the training CLIP (OV-Seg); its
text tower is expected to equal OpenAI ViT-L/14 (spec §2.5, to verify).
"""
import json
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

from ..datasets.class_names import COCO_CLASSES, VOC_CLASSES
from ..structures.text_cache_format import (TEXT_CACHE_FORMAT,
                                            TEXT_CACHE_SCHEMA_VERSION,
                                            load_text_cache_index,
                                            safetensors_memmap)
from ..utils.io import atomic_write_bytes, atomic_write_text
from ..utils.safe_load import is_torchscript_archive, load_torchscript_tensors
from .corpus import QACorpus
from .questions import TEXT_PROMPT, check_template

__all__ = [
    'load_text_encoder', 'encode_texts', 'collect_strings',
    'build_text_cache', 'build_prompt_text_cache'
]

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
    feats = safetensors_memmap(out_prefix + '.safetensors', 'features')
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
