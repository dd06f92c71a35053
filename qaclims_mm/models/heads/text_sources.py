"""Text sources of :class:`RegionTextHead`: the texts regions are matched to.

A text source turns the K positive (image, class) pairs of a batch (row-major
``(b, c)`` order) into text tensors for the losses. It declares the names it
provides in ``provides``; every loss of the head declares the names it reads
in ``region_text_inputs``, and the head checks at build time that they match.

* :class:`QACorpusTextSource` (QA-CLIMS): image-specific texts carried by the
  samples (``qa_feats``, from the ``LoadQACorpus`` transform).
* :class:`PromptTextSource` (CLIMS): fixed prompt features read from a text
  cache file (built offline by ``tools/build_text_cache.py
  --clims-prompts``); no text encoder is loaded at build time.
"""
from typing import Dict, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn as nn
from mmseg.registry import MODELS
from torch import Tensor

from ..losses.region_contrastive import blend_fg_text

__all__ = ['QACorpusTextSource', 'PromptTextSource', 'gather_qa_feats']

_QA_KEYS = ('class_feats', 'fg_feats', 'fg_mask', 'bg_feats', 'bg_mask')


def gather_qa_feats(data_samples: Sequence, device: torch.device
                    ) -> Dict[str, Tensor]:
    """Concatenate the samples' ``qa_feats`` (from ``LoadQACorpus``).

    Each sample holds its K_b pairs in sorted class order, so concatenating
    over samples gives the row-major ``(b, c)`` order of the positive pairs.

    Raises:
        KeyError: naming the images whose samples carry no ``qa_feats``.
    """
    missing = [s.metainfo.get('img_id', '?') for s in data_samples
               if 'qa_feats' not in s]
    if missing:
        raise KeyError(f'samples {missing[:3]} carry no qa_feats: add '
                       f"dict(type='LoadQACorpus', cache_prefix=...) to the "
                       f'training pipeline')
    return {
        key: torch.cat([torch.as_tensor(s.qa_feats[key])
                        for s in data_samples]).to(device)
        for key in _QA_KEYS
    }


@MODELS.register_module()
class QACorpusTextSource(nn.Module):
    """QA-CLIMS texts of each pair, read from the samples (spec §2.6).

    Provides ``fg_text`` ``[K, D]`` (the class prompt blended with the FG
    answers, :func:`blend_fg_text`, not re-normalised), ``bg_texts``
    ``[K, L, D]`` (the pair's BG answers, padded) and ``bg_mask`` ``[K, L]``.

    Args:
        label_weight (float): Weight λ of the class prompt in the FG text.
            Defaults to 0.5 (``label_weight_init``).
    """

    provides: Tuple[str, ...] = ('fg_text', 'bg_texts', 'bg_mask')
    num_classes: Optional[int] = None  # any: the samples carry the texts

    def __init__(self, label_weight: float = 0.5) -> None:
        super().__init__()
        self.label_weight = label_weight

    def forward(self, pair_class: Tensor,
                data_samples: Sequence) -> Dict[str, Tensor]:
        """Texts of the K pairs.

        Args:
            pair_class (Tensor): ``[K]`` class of each pair (row-major).
            data_samples (Sequence): Samples carrying ``qa_feats``.

        Raises:
            ValueError: if the samples hold another number of pairs than K.
        """
        qa = gather_qa_feats(data_samples, pair_class.device)
        if qa['class_feats'].shape[0] != pair_class.shape[0]:
            raise ValueError(
                f'{qa["class_feats"].shape[0]} QA pairs for '
                f'{pair_class.shape[0]} labelled classes: the QA cache and '
                f'the image labels disagree')
        fg_text = blend_fg_text(qa['class_feats'], qa['fg_feats'],
                                qa['fg_mask'], self.label_weight)
        return dict(fg_text=fg_text, bg_texts=qa['bg_feats'],
                    bg_mask=qa['bg_mask'])

    def extra_repr(self) -> str:
        return f'label_weight={self.label_weight}'


def _read_prompt_cache(cache: str) -> Tuple[np.ndarray, np.ndarray]:
    """``(class_features [C, D], prompt features [P, D])`` of a cache."""
    # the text-cache format lives with the QAPE tools that write it
    from ...structures.text_cache_format import TextFeatureCache
    reader = TextFeatureCache(cache)
    if reader.prompt != '{}' or reader.img_row:
        raise ValueError(
            f'{reader.index_path} is not a prompt cache (prompt '
            f'{reader.prompt!r}, {len(reader.img_row)} corpus images): build '
            f'one with tools/build_text_cache.py --clims-prompts')
    return np.array(reader.class_features), np.array(reader.features)


@MODELS.register_module()
class PromptTextSource(nn.Module):
    """Fixed prompt features read from a text cache file (CLIMS, spec §5).

    Provides ``fg_text`` ``[K, D]`` (the class prompt of each pair,
    ``a photo of {class}.`` with ``person`` → ``player``) and
    ``bg_prompts`` ``[P, D]`` (the fixed background prompts). The cache is
    the QAPE text-cache format: ``class_features`` hold the class prompts,
    ``features`` the background prompts. Build it with::

        python tools/build_text_cache.py --clims-prompts --classes voc \\
            --model ViT-B-32-quickgelu --pretrained <ViT-B-32 weights> \\
            --out data/pretrained/clims_voc_ViT-B-32

    The features are buffers (they follow the model's device) that stay out
    of the optimizer and of checkpoints.

    Args:
        cache (str): The cache prefix (``<cache>.json`` /
            ``<cache>.safetensors``).
    """

    provides: Tuple[str, ...] = ('fg_text', 'bg_prompts')

    def __init__(self, cache: str) -> None:
        super().__init__()
        self.cache = cache
        class_feats, bg_feats = _read_prompt_cache(cache)
        self.register_buffer('class_feats', torch.from_numpy(class_feats),
                             persistent=False)
        self.register_buffer('bg_feats', torch.from_numpy(bg_feats),
                             persistent=False)

    @property
    def num_classes(self) -> int:
        """Classes of the cache."""
        return self.class_feats.shape[0]

    def forward(self, pair_class: Tensor,
                data_samples: Sequence) -> Dict[str, Tensor]:
        """Texts of the K pairs (``data_samples`` unused)."""
        return dict(fg_text=self.class_feats[pair_class],
                    bg_prompts=self.bg_feats)

    def extra_repr(self) -> str:
        return f'cache={self.cache!r}'
