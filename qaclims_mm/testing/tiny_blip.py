"""A tiny random BLIP VQA, for tests, benchmarks and smoke runs without
weights (:func:`build_tiny_blip_vqa`)."""
import os
import os.path as osp
from typing import Optional

import torch

from ..qape.engines.blip import CLIP_MEAN, CLIP_STD

_TINY_WORDS = (
    'what kind type of is in the photo this also called usually another word '
    'for name above under behind around next to left right side scene '
    'environment place a an and on with sky grass road water tree wall room '
    'table floor field street building car dog cat person man woman bird boat '
    'bus train horse sheep cow chair sofa plant bottle monitor tv dining '
    'potted aeroplane bicycle motorbike airplane jet red blue green white '
    'black kitchen living beach park city sea snow yes no').split()


def build_tiny_blip_vqa(save_dir: str,
                        image_size: int = 480,
                        patch_size: int = 16,
                        hidden_size: int = 64,
                        vision_layers: int = 4,
                        text_layers: int = 2,
                        seed: int = 0,
                        vision_heads: int = 4,
                        text_heads: int = 2,
                        vocab_size: Optional[int] = None) -> str:
    """Write a randomly initialised, tiny BLIP VQA model + processor.

    The vocabulary is a small WordPiece file (``vocab.txt``) of question
    words, class names and letters; the processor resizes to ``image_size``.
    The shapes keep the real model's balance (a long image-token sequence, a
    short question), so timings compare the two engine paths fairly. With
    ``hidden_size=768``, 12 layers, 12 heads and ``vocab_size=30524`` it has
    the size of the real BLIP VQA (ViT-B/16, BERT-base encoder and decoder).

    Args:
        save_dir (str): Output folder (``save_pretrained`` layout).
        image_size (int): Vision ``image_size``. Defaults to 480.
        patch_size (int): Defaults to 16.
        hidden_size (int): Width of both towers (BLIP VQA's text encoder
            and decoder cross-attend to features of their own width, so the
            two must match). Defaults to 64.
        vision_layers (int): Defaults to 4.
        text_layers (int): Layers of the text encoder and of the decoder.
            Defaults to 2.
        seed (int): Weight seed. Defaults to 0.
        vision_heads (int): Attention heads of the ViT. Defaults to 4.
        text_heads (int): Attention heads of the text encoder and decoder.
            Defaults to 2.
        vocab_size (int, optional): Pad the vocabulary with ``[unusedN]``
            tokens to this size (the real model has 30,524, which sizes the
            decoder's output layer). Defaults to None (no padding).

    Returns:
        str: ``save_dir``.
    """
    from transformers import (BertTokenizer, BlipConfig,
                              BlipForQuestionAnswering, BlipImageProcessor,
                              BlipProcessor)
    os.makedirs(save_dir, exist_ok=True)
    specials = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]', '[DEC]']
    letters = [chr(c) for c in range(ord('a'), ord('z') + 1)]
    words = list(dict.fromkeys(_TINY_WORDS))
    vocab = specials + ['?', '.', ','] + letters + [
        '##' + c for c in letters] + [w for w in words if w not in letters]
    if vocab_size is not None:
        if vocab_size < len(vocab):
            raise ValueError(f'vocab_size {vocab_size} is below the '
                             f'{len(vocab)} tokens of the tiny vocabulary')
        vocab += [f'[unused{i}]' for i in range(vocab_size - len(vocab))]
    vocab_file = osp.join(save_dir, 'vocab.txt')
    with open(vocab_file, 'w', encoding='utf-8') as f:
        f.write('\n'.join(vocab) + '\n')
    tokenizer = BertTokenizer(
        vocab={tok: i for i, tok in enumerate(vocab)},
        bos_token='[DEC]',
        model_max_length=512)
    image_processor = BlipImageProcessor(
        size=dict(height=image_size, width=image_size),
        image_mean=list(CLIP_MEAN), image_std=list(CLIP_STD))
    BlipProcessor(image_processor=image_processor,
                  tokenizer=tokenizer).save_pretrained(save_dir)

    config = BlipConfig(
        text_config=dict(
            vocab_size=len(vocab),
            hidden_size=hidden_size,
            encoder_hidden_size=hidden_size,
            intermediate_size=hidden_size * 4,
            num_hidden_layers=text_layers,
            num_attention_heads=text_heads,
            max_position_embeddings=64,
            pad_token_id=0,
            sep_token_id=vocab.index('[SEP]'),
            bos_token_id=vocab.index('[DEC]'),
            initializer_range=0.2),
        vision_config=dict(
            hidden_size=hidden_size,
            intermediate_size=hidden_size * 4,
            num_hidden_layers=vision_layers,
            num_attention_heads=vision_heads,
            image_size=image_size,
            patch_size=patch_size,
            initializer_range=0.2))
    torch.manual_seed(seed)
    model = BlipForQuestionAnswering(config).eval()
    model.save_pretrained(save_dir)
    return save_dir
