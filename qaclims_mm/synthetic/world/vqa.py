"""A tiny BLIP VQA of the synthetic world, trained on CPU (issue 13).

QAPE asks a VQA model the 6 foreground and 10 background questions about
every (image, labelled class) pair. No BLIP can be downloaded here, so this
module trains a small transformers ``BlipForQuestionAnswering`` from scratch
on question-answer pairs of a generated *pretraining world* (a
:func:`~qaclims_mm.synthetic.make_synthetic_voc` folder, seed disjoint from the
pipeline data, written with ``describe=True``). The pairs come from the side
file of descriptions (:mod:`qaclims_mm.synthetic.describe`) and the question
templates the caller passes in (the official ones of
:mod:`qaclims_mm.qape.questions`; this layer may not import ``qape``):

* FG: "What kind of boat is in the photo?" -> ``'white and red boat'`` (the
  colours and the class noun), "What type of ..." -> ``'bicolour boat'``
  (texture + noun), "also called" / "another name" -> ``'ship'``, "usually
  called" -> ``'boat'``, "another word" -> ``'sailboat'``
  (:data:`CLASS_NOUNS`);
* BG: the words of the scene actually drawn behind the object
  (:data:`~qaclims_mm.synthetic.describe.SCENE_WORDS`): "what is behind the
  boat?" -> ``'water'``; scene / environment / place -> the second scene word
  (``'sea'``, ``'room'``); "under" indoors -> ``'floor'``; "left / right side
  of" -> the noun of another object on that side, else the scene word.

The model is saved as a normal Hugging Face folder (``save_pretrained`` of the
model and of a ``BlipProcessor`` with a word-level ``BertTokenizer`` whose
vocabulary holds every question and answer word), so that ``tools/qape.py
--engine blip --model-path <dir> --image-size <native>`` loads it through the
same code path as a real BLIP. Training feeds the model exactly what
``BlipVQAEngine`` feeds it: PIL-bicubic resize to the native size, CLIP
normalisation, ``[ENC]`` in place of ``[CLS]``, questions of one token length
per batch (no padding: the engine never pads, and transformers ignores the
cross-attention mask of the answer decoder).
"""
import json
import os
import re
import os.path as osp
import time
from dataclasses import asdict, dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from PIL import Image

from ...datasets.class_names import VOC_CLASSES
from ...structures.normalization import CLIP_MEAN, CLIP_STD
from ..describe import SCENE_WORDS, describe_class, read_descriptions
from ..render import GENERATOR_VERSION

__all__ = [
    'CLASS_NOUNS', 'WorldVQAConfig', 'fg_answer', 'bg_answer', 'qa_pairs',
    'vocabulary', 'normalize_answer', 'train_world_vqa', 'evaluate_world_vqa',
    'load_world_vqa', 'answer_questions'
]

#: Class name -> (noun, alternative name, another word) a describer uses.
CLASS_NOUNS: Dict[str, Tuple[str, str, str]] = {
    'aeroplane': ('aeroplane', 'airplane', 'jet'),
    'bicycle': ('bicycle', 'bike', 'cycle'),
    'bird': ('bird', 'canary', 'finch'),
    'boat': ('boat', 'ship', 'sailboat'),
    'bottle': ('bottle', 'flask', 'wine bottle'),
    'bus': ('bus', 'coach', 'shuttle'),
    'car': ('car', 'sedan', 'automobile'),
    'cat': ('cat', 'kitten', 'tabby'),
    'chair': ('chair', 'seat', 'armchair'),
    'cow': ('cow', 'cattle', 'calf'),
    'dining table': ('table', 'dining table', 'desk'),
    'dog': ('dog', 'puppy', 'hound'),
    'horse': ('horse', 'pony', 'stallion'),
    'motorbike': ('motorbike', 'motorcycle', 'scooter'),
    'person': ('person', 'man', 'woman'),
    'potted plant': ('plant', 'houseplant', 'potted plant'),
    'sheep': ('sheep', 'lamb', 'ewe'),
    'sofa': ('sofa', 'couch', 'settee'),
    'train': ('train', 'locomotive', 'engine'),
    'tv monitor': ('tv', 'monitor', 'television'),
}

_SPECIALS = ('[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]', '[DEC]', '[ENC]')
_MAX_QUESTION_TOKENS = 35  # the engine's (official) truncation
_PROGRESS_EVERY = 1


@dataclass(frozen=True)
class WorldVQAConfig:
    """Size and schedule of the world VQA.

    Args:
        image_size (int): Native input size. Defaults to 64.
        patch_size (int): ViT patch size. Defaults to 8.
        hidden_size (int): Width of both towers. Defaults to 64.
        vision_layers (int): ViT layers. Defaults to 3.
        text_layers (int): Layers of the text encoder and of the decoder.
            Defaults to 2.
        heads (int): Attention heads. Defaults to 4.
        epochs (int): Passes over the images. Defaults to 20.
        images_per_step (int): Images per step; all their questions are
            answered from one vision pass. Defaults to 8.
        questions_per_class (int): Questions (drawn afresh every epoch, half
            from the FG and half from the BG templates) per (image, class)
            pair and epoch. Defaults to 4.
        lr (float): Peak AdamW learning rate. Defaults to 2e-3.
        weight_decay (float): Defaults to 0.01.
        warmup_steps (int): Linear warm-up steps. Defaults to 50.
    """
    image_size: int = 64
    patch_size: int = 8
    hidden_size: int = 64
    vision_layers: int = 3
    text_layers: int = 2
    heads: int = 4
    epochs: int = 20
    images_per_step: int = 8
    questions_per_class: int = 4
    lr: float = 2e-3
    weight_decay: float = 0.01
    warmup_steps: int = 50


# --------------------------------------------------------------------------
# Question-answer pairs
# --------------------------------------------------------------------------
def _with(template: str, *words: str) -> bool:
    t = template.lower()
    return all(w in t for w in words)


def fg_answer(template: str, obj: dict) -> str:
    """The answer a describer gives to an FG question about ``obj``.

    Args:
        template (str): The question template (with ``{}``).
        obj (dict): An object record of the side file.

    Returns:
        str: e.g. ``'white and red boat'``, ``'ship'``.
    """
    noun, alt, other = CLASS_NOUNS[obj['class']]
    if _with(template, 'type'):
        return f"{obj['texture']} {noun}"
    if _with(template, 'usually'):
        return noun
    if _with(template, 'another', 'word'):
        return other
    if _with(template, 'called') or _with(template, 'another', 'name'):
        return alt
    return f"{obj['colours']} {noun}"  # "what kind of", and any other


def _side_neighbour(record: dict, obj: dict, side: str) -> Optional[str]:
    """Noun of the nearest other-class object on ``side`` of ``obj``."""
    cx = (obj['bbox'][0] + obj['bbox'][2]) / 2
    best = None
    for other in record['objects']:
        if other['class'] == obj['class']:
            continue
        ox = (other['bbox'][0] + other['bbox'][2]) / 2
        gap = cx - ox if side == 'left' else ox - cx
        if gap > 0 and (best is None or gap < best[0]):
            best = (gap, CLASS_NOUNS[other['class']][0])
    return None if best is None else best[1]


def bg_answer(template: str, record: dict, obj: dict) -> str:
    """The answer a describer gives to a BG question about ``obj``.

    Args:
        template (str): The question template (with ``{}``).
        record (dict): The image's side-file record.
        obj (dict): The object asked about.

    Returns:
        str: A scene word (``'water'``) or a neighbour's noun.
    """
    words = SCENE_WORDS[record['scene']]
    for side in ('left', 'right'):
        if _with(template, side):
            return _side_neighbour(record, obj, side) or words[0]
    if _with(template, 'scene') or _with(template, 'environment') or _with(
            template, 'place'):
        return words[1] if len(words) > 1 else words[0]
    if _with(template, 'under') and record['scene'] == 'indoor':
        return words[2]
    return words[0]


def _main_instance(record: dict, class_name: str) -> dict:
    """The instance of ``class_name`` with the most visible pixels."""
    return max((o for o in record['objects'] if o['class'] == class_name),
               key=lambda o: o['visible_pixels'])


def qa_pairs(record: dict, fg_templates: Sequence[str],
             bg_templates: Sequence[str]) -> List[dict]:
    """Question-answer pairs of one image, as QAPE would ask them.

    One set of questions per labelled class (not per instance), the class
    name written as QAPE writes it (``'dining table'``).

    Args:
        record (dict): A side-file record.
        fg_templates (Sequence[str]): FG templates with one ``{}``.
        bg_templates (Sequence[str]): BG templates with one ``{}``.

    Returns:
        list[dict]: ``id``, ``class``, ``kind`` (``'fg'``/``'bg'``),
        ``template`` (index in its list), ``question``, ``answer``.
    """
    pairs = []
    classes = sorted({o['class'] for o in record['objects']},
                     key=VOC_CLASSES.index)
    for name in classes:
        obj = _main_instance(record, name)
        for kind, templates in (('fg', fg_templates), ('bg', bg_templates)):
            for t_idx, template in enumerate(templates):
                answer = (fg_answer(template, obj) if kind == 'fg' else
                          bg_answer(template, record, obj))
                pairs.append(
                    dict(id=record['id'], **{'class': name}, kind=kind,
                         template=t_idx,
                         question=template.replace('{}', name),
                         answer=answer))
    return pairs


def vocabulary(fg_templates: Sequence[str],
               bg_templates: Sequence[str]) -> List[str]:
    """Every token of every question and possible answer, plus specials.

    Independent of the data: all classes, colours, textures and scene words,
    so that a model trained on any world can write any answer. Letters and
    ``##`` letters let WordPiece spell an unknown question word.

    Returns:
        list[str]: The vocabulary, specials first, then sorted words.
    """
    texts = list(fg_templates) + list(bg_templates)
    for index, name in enumerate(VOC_CLASSES):
        texts.append(name)
        texts.extend(CLASS_NOUNS[name])
        texts.extend(describe_class(index).values())
    for words in SCENE_WORDS.values():
        texts.extend(words)
    words = set()
    for text in texts:
        # BERT's basic split: lower case, words, each punctuation mark
        words.update(re.findall(r'[a-z0-9]+|[^a-z0-9\s]', text.lower()))
    letters = [chr(c) for c in range(ord('a'), ord('z') + 1)]
    words.update(letters)
    vocab = list(_SPECIALS) + sorted(words - set(_SPECIALS))
    return vocab + ['##' + c for c in letters]


def normalize_answer(answer: str) -> str:
    """Lower-case, single-spaced, stripped (for exact-match accuracy)."""
    return ' '.join(answer.lower().split())


# --------------------------------------------------------------------------
# Model, tokenizer, images
# --------------------------------------------------------------------------
def _build_model(cfg: WorldVQAConfig, vocab: List[str]):
    from transformers import BlipConfig, BlipForQuestionAnswering
    h = cfg.hidden_size
    config = BlipConfig(
        text_config=dict(
            vocab_size=len(vocab),
            hidden_size=h,
            encoder_hidden_size=h,
            intermediate_size=4 * h,
            num_hidden_layers=cfg.text_layers,
            num_attention_heads=cfg.heads,
            max_position_embeddings=64,
            pad_token_id=vocab.index('[PAD]'),
            sep_token_id=vocab.index('[SEP]'),
            bos_token_id=vocab.index('[DEC]'),
            label_smoothing=0.0),
        vision_config=dict(
            hidden_size=h,
            intermediate_size=4 * h,
            num_hidden_layers=cfg.vision_layers,
            num_attention_heads=cfg.heads,
            image_size=cfg.image_size,
            patch_size=cfg.patch_size,
            # transformers' BLIP vision default (1e-10) suits loading a
            # pretrained tower, not training one from scratch
            initializer_range=0.02))
    return BlipForQuestionAnswering(config)


def _build_processor(cfg: WorldVQAConfig, vocab: List[str]):
    from transformers import (BertTokenizer, BlipImageProcessor,
                              BlipProcessor)
    tokenizer = BertTokenizer(
        vocab={tok: i for i, tok in enumerate(vocab)},
        bos_token='[DEC]',
        model_max_length=512)
    image_processor = BlipImageProcessor(
        size=dict(height=cfg.image_size, width=cfg.image_size),
        image_mean=list(CLIP_MEAN), image_std=list(CLIP_STD))
    return BlipProcessor(image_processor=image_processor, tokenizer=tokenizer)


def _load_images(world_dir: str, ids: Sequence[str], size: int,
                 progress: bool) -> torch.Tensor:
    """JPEGs -> ``[N, 3, S, S]``, preprocessed as ``BlipVQAEngine`` does."""
    from tqdm import tqdm
    mean = np.asarray(CLIP_MEAN, np.float32)
    std = np.asarray(CLIP_STD, np.float32)
    out = torch.empty(len(ids), 3, size, size)
    for i, image_id in enumerate(
            tqdm(ids, desc='world images', unit='img', disable=not progress)):
        path = osp.join(world_dir, 'VOC2012', 'JPEGImages', f'{image_id}.jpg')
        if not osp.isfile(path):
            raise FileNotFoundError(f'world image {image_id} not found: '
                                    f'{path}')
        with Image.open(path) as im:
            arr = np.asarray(im.convert('RGB').resize((size, size),
                                                      Image.BICUBIC),
                             np.float32) / 255.0
        out[i] = torch.from_numpy(((arr - mean) / std).transpose(2, 0, 1))
    return out


def _question_ids(tokenizer, questions: Sequence[str],
                  enc_id: int) -> List[List[int]]:
    ids = tokenizer(list(questions), truncation=True,
                    max_length=_MAX_QUESTION_TOKENS)['input_ids']
    return [[enc_id] + q[1:] for q in ids]


def _world_pairs(world_dir: str, fg_templates: Sequence[str],
                 bg_templates: Sequence[str],
                 max_images: Optional[int]) -> Tuple[List[str], List[dict]]:
    records = read_descriptions(osp.join(world_dir,
                                         'world_descriptions.jsonl'))
    if max_images is not None:
        records = records[:max_images]
    ids = [r['id'] for r in records]
    pairs = []
    for index, record in enumerate(records):
        for pair in qa_pairs(record, fg_templates, bg_templates):
            pair['image'] = index
            pairs.append(pair)
    return ids, pairs


def _split_kinds(indices: Sequence[int],
                 pairs: Sequence[dict]) -> List[List[int]]:
    """``indices`` split into their FG and their BG pairs (non-empty)."""
    out = [[i for i in indices if pairs[i]['kind'] == k] for k in ('fg', 'bg')]
    return [group for group in out if group]


def _by_length(indices: Sequence[int],
               lengths: Sequence[int]) -> List[List[int]]:
    """``indices`` grouped by question length (ascending lengths)."""
    groups: Dict[int, List[int]] = {}
    for i in indices:
        groups.setdefault(lengths[i], []).append(i)
    return [groups[k] for k in sorted(groups)]


def _answer_tensors(answer_ids: Sequence[List[int]], dec_id: int,
                    sep_id: int, pad_id: int) -> Tuple[torch.Tensor, ...]:
    """Decoder inputs ``[DEC] a1 .. an [SEP]``, their mask and the labels
    (the same ids, -100 on padding; the decoder shifts them itself)."""
    seqs = [[dec_id] + list(ids) + [sep_id] for ids in answer_ids]
    longest = max(len(s) for s in seqs)
    inputs = torch.full((len(seqs), longest), pad_id, dtype=torch.long)
    mask = torch.zeros_like(inputs)
    for row, seq in enumerate(seqs):
        inputs[row, :len(seq)] = torch.tensor(seq)
        mask[row, :len(seq)] = 1
    labels = inputs.masked_fill(mask == 0, -100)
    return inputs, mask, labels


# --------------------------------------------------------------------------
# Inference (the engine's algorithm, for held-out evaluation)
# --------------------------------------------------------------------------
@torch.inference_mode()
def answer_questions(model, tokenizer, images: torch.Tensor,
                     owners: Sequence[int], questions: Sequence[str],
                     batch_size: int = 128, num_beams: int = 3,
                     max_length: int = 10) -> List[str]:
    """Answer questions the way ``BlipVQAEngine`` does (beam 3, no padding).

    Args:
        model: A ``BlipForQuestionAnswering``.
        tokenizer: Its tokenizer.
        images (torch.Tensor): ``[N, 3, S, S]`` preprocessed images.
        owners (Sequence[int]): Image index of every question.
        questions (Sequence[str]): The questions.
        batch_size (int): Questions per pass. Defaults to 128.
        num_beams (int): Defaults to 3 (official).
        max_length (int): Defaults to 10 (official).

    Returns:
        list[str]: One answer per question.
    """
    model.eval()
    enc_id = tokenizer.convert_tokens_to_ids('[ENC]')
    embeds = torch.cat([
        model.vision_model(pixel_values=images[s:s + 64]).last_hidden_state
        for s in range(0, images.shape[0], 64)
    ])
    token_ids = _question_ids(tokenizer, questions, enc_id)
    text_cfg = model.config.text_config
    answers = [''] * len(questions)
    by_length: Dict[int, List[int]] = {}
    for idx, ids in enumerate(token_ids):
        by_length.setdefault(len(ids), []).append(idx)
    for length in sorted(by_length):
        members = by_length[length]
        for s in range(0, len(members), batch_size):
            chunk = members[s:s + batch_size]
            image_embeds = embeds[torch.tensor([owners[i] for i in chunk])]
            input_ids = torch.tensor([token_ids[i] for i in chunk])
            states = model.text_encoder(
                input_ids=input_ids,
                encoder_hidden_states=image_embeds,
                encoder_attention_mask=torch.ones(image_embeds.shape[:2],
                                                  dtype=torch.long),
                return_dict=False)[0]
            bos = torch.full((len(chunk), 1), model.decoder_start_token_id,
                             dtype=torch.long)
            seqs = model.text_decoder.generate(
                input_ids=bos, eos_token_id=text_cfg.sep_token_id,
                pad_token_id=text_cfg.pad_token_id,
                encoder_hidden_states=states,
                encoder_attention_mask=torch.ones_like(input_ids),
                do_sample=False, num_beams=num_beams, max_length=max_length,
                min_length=1)
            decoded = tokenizer.batch_decode(
                seqs, skip_special_tokens=True,
                clean_up_tokenization_spaces=True)
            for i, text in zip(chunk, decoded):
                answers[i] = text.strip()
    return answers


def _accuracy_table(pairs: Sequence[dict], answers: Sequence[str],
                    train_pairs: Sequence[dict]) -> Dict[str, float]:
    """Exact-match accuracy per kind and per template, with baselines.

    ``*_chance``: always giving the most frequent training answer of the
    template; ``*_blind``: the most frequent training answer of the
    (template, class) question, i.e. the best possible without looking at
    the image. ``bg_off_prior_acc``: BG accuracy on images whose scene is not
    the most common one of the class (where a model that only learned the
    class-scene prior is wrong).
    """
    from collections import Counter
    by_template: Dict[Tuple, Counter] = {}
    by_question: Dict[Tuple, Counter] = {}
    scene_of_class: Dict[str, Counter] = {}
    for p in train_pairs:
        by_template.setdefault((p['kind'], p['template']),
                               Counter())[p['answer']] += 1
        by_question.setdefault((p['kind'], p['template'], p['class']),
                               Counter())[p['answer']] += 1
        if p['kind'] == 'bg':
            scene_of_class.setdefault(p['class'], Counter())[p['scene']] += 1

    def top(counter: Optional[Counter]) -> Optional[str]:
        return None if not counter else counter.most_common(1)[0][0]

    out: Dict[str, float] = {}
    for kind in ('fg', 'bg'):
        rows = [(p, a) for p, a in zip(pairs, answers) if p['kind'] == kind]
        if not rows:
            continue
        hit = [normalize_answer(a) == normalize_answer(p['answer'])
               for p, a in rows]
        out[f'{kind}_acc'] = float(np.mean(hit))
        out[f'{kind}_chance'] = float(np.mean([
            top(by_template.get((kind, p['template']))) == p['answer']
            for p, _ in rows]))
        out[f'{kind}_blind'] = float(np.mean([
            top(by_question.get((kind, p['template'], p['class']))) ==
            p['answer'] for p, _ in rows]))
        out[f'{kind}_num'] = len(rows)
        for t in sorted({p['template'] for p, _ in rows}):
            sel = [h for (p, _), h in zip(rows, hit) if p['template'] == t]
            out[f'{kind}{t}_acc'] = float(np.mean(sel))
        if kind == 'bg':
            off = [h for (p, _), h in zip(rows, hit)
                   if p['scene'] != top(scene_of_class.get(p['class']))]
            out['bg_off_prior_acc'] = float(np.mean(off)) if off else None
            out['bg_off_prior_num'] = len(off)
    return out


# --------------------------------------------------------------------------
# Training / evaluation / loading
# --------------------------------------------------------------------------
def _add_scene(pairs: List[dict], world_dir: str) -> None:
    records = {
        r['id']: r
        for r in read_descriptions(
            osp.join(world_dir, 'world_descriptions.jsonl'))
    }
    for p in pairs:
        p['scene'] = records[p['id']]['scene']


def train_world_vqa(world_dir: str,
                    out_dir: str,
                    fg_templates: Sequence[str],
                    bg_templates: Sequence[str],
                    seed: int = 0,
                    progress: bool = True,
                    cfg: Optional[WorldVQAConfig] = None,
                    max_images: Optional[int] = None) -> dict:
    """Train the world VQA on a generated world and save it as an HF folder.

    Deterministic for a seed (same world, templates, seed and torch thread
    count give the same weights).

    Args:
        world_dir (str): A ``make_synthetic_voc(describe=True)`` folder.
        out_dir (str): Output folder (``save_pretrained`` layout of the model
            and the processor, plus ``world_vqa.json``).
        fg_templates (Sequence[str]): FG question templates (pass
            ``qaclims_mm.qape.questions.FG_QUESTIONS``).
        bg_templates (Sequence[str]): BG question templates (pass
            ``BG_QUESTIONS``).
        seed (int): Seed of the initialisation and the data order.
            Defaults to 0.
        progress (bool): Show progress bars. Defaults to True.
        cfg (WorldVQAConfig, optional): Size and schedule. Defaults to
            ``WorldVQAConfig()``.
        max_images (int, optional): Use only the first images. Defaults to
            None.

    Returns:
        dict: Settings, the number of pairs, the final training loss and the
        wall time (also in ``out_dir/world_vqa.json``).
    """
    from tqdm import tqdm
    cfg = cfg or WorldVQAConfig()
    start = time.time()
    vocab = vocabulary(fg_templates, bg_templates)
    processor = _build_processor(cfg, vocab)
    tokenizer = processor.tokenizer
    ids, pairs = _world_pairs(world_dir, fg_templates, bg_templates,
                              max_images)
    if not pairs:
        raise ValueError(f'world {world_dir} holds no question-answer pairs')
    images = _load_images(world_dir, ids, cfg.image_size, progress)
    enc_id = vocab.index('[ENC]')
    q_ids = _question_ids(tokenizer, [p['question'] for p in pairs], enc_id)
    a_ids = tokenizer([p['answer'] for p in pairs],
                      add_special_tokens=False)['input_ids']
    unknown = [p['answer'] for p, a in zip(pairs, a_ids)
               if tokenizer.unk_token_id in a]
    if unknown:
        raise ValueError(f'answers outside the vocabulary: {unknown[:5]}')
    by_pair: Dict[Tuple[int, str], List[int]] = {}
    for i, p in enumerate(pairs):
        by_pair.setdefault((p['image'], p['class']), []).append(i)
    by_image: List[List[List[int]]] = [[] for _ in ids]
    for (image, _), members in by_pair.items():
        by_image[image].append(members)
    q_lengths = [len(q) for q in q_ids]

    torch.manual_seed(seed)
    model = _build_model(cfg, vocab).train()
    rng = np.random.default_rng(seed)
    per_step = cfg.images_per_step
    total = cfg.epochs * -(-len(ids) // per_step)
    optim = torch.optim.AdamW(model.parameters(), lr=cfg.lr,
                              weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(
        optim, lambda s: min(1.0, (s + 1) / cfg.warmup_steps) * 0.5 *
        (1 + np.cos(np.pi * min(s, total) / total)))
    dec_id, pad_id = vocab.index('[DEC]'), vocab.index('[PAD]')
    sep_id = vocab.index('[SEP]')
    losses: List[float] = []
    bar = tqdm(total=total, desc='world VQA', unit='step',
               disable=not progress)
    for _ in range(cfg.epochs):
        order = rng.permutation(len(ids))
        for start_image in range(0, len(ids), per_step):
            step_images = order[start_image:start_image + per_step]
            row_of = {int(img): row for row, img in enumerate(step_images)}
            embeds = model.vision_model(
                pixel_values=images[torch.from_numpy(step_images)]
            ).last_hidden_state
            # half FG, half BG questions of every (image, class) pair
            members = [
                int(i) for img in step_images for qs in by_image[img]
                for kind_qs in _split_kinds(qs, pairs)
                for i in rng.choice(
                    kind_qs, min(len(kind_qs), -(-cfg.questions_per_class //
                                                 2)), replace=False)
            ]
            loss = 0.0
            # one text pass per question length: no padding, as the engine
            for group in _by_length(members, q_lengths):
                rows = torch.tensor([row_of[pairs[i]['image']]
                                     for i in group])
                input_ids = torch.tensor([q_ids[i] for i in group])
                dec_in, dec_mask, labels = _answer_tensors(
                    [a_ids[i] for i in group], dec_id, sep_id, pad_id)
                image_embeds = embeds[rows]
                states = model.text_encoder(
                    input_ids=input_ids,
                    encoder_hidden_states=image_embeds,
                    encoder_attention_mask=torch.ones(
                        image_embeds.shape[:2], dtype=torch.long),
                    return_dict=False)[0]
                out = model.text_decoder(
                    input_ids=dec_in, attention_mask=dec_mask,
                    encoder_hidden_states=states,
                    encoder_attention_mask=torch.ones_like(input_ids),
                    labels=labels, reduction='mean')
                loss = loss + out.loss * (len(group) / len(members))
            optim.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optim.step()
            sched.step()
            losses.append(float(loss.detach()))
            bar.update(1)
            bar.set_postfix(loss=f'{np.mean(losses[-20:]):.3f}',
                            refresh=False)
    bar.close()

    os.makedirs(out_dir, exist_ok=True)
    model.eval().save_pretrained(out_dir)
    processor.save_pretrained(out_dir)
    info = dict(
        generator_version=GENERATOR_VERSION,
        seed=seed,
        config=asdict(cfg),
        num_images=len(ids),
        num_pairs=len(pairs),
        steps=total,
        vocab_size=len(vocab),
        loss_first=float(np.mean(losses[:20])),
        loss_last=float(np.mean(losses[-20:])),
        train_wall_s=round(time.time() - start, 1),
        torch_threads=torch.get_num_threads(),
        fg_templates=list(fg_templates),
        bg_templates=list(bg_templates))
    from ...utils.io import atomic_write_text
    atomic_write_text(osp.join(out_dir, 'world_vqa.json'),
                      json.dumps(info, indent=1))
    return info


def load_world_vqa(model_dir: str):
    """``(model, processor)`` of a saved world VQA (eval mode, CPU)."""
    from transformers import BlipForQuestionAnswering, BlipProcessor
    processor = BlipProcessor.from_pretrained(model_dir,
                                              local_files_only=True)
    model = BlipForQuestionAnswering.from_pretrained(model_dir,
                                                     local_files_only=True)
    return model.eval(), processor


def evaluate_world_vqa(model_dir: str,
                       eval_world_dir: str,
                       train_world_dir: str,
                       fg_templates: Sequence[str],
                       bg_templates: Sequence[str],
                       max_images: Optional[int] = None,
                       progress: bool = False) -> dict:
    """Held-out answer accuracy of a saved world VQA.

    Exact match after :func:`normalize_answer`, per kind (``fg_acc``,
    ``bg_acc``) and per template (``fg0_acc`` ...), with two baselines from
    the training world's answers: ``*_chance`` (the most frequent answer of
    the template) and ``*_blind`` (of the template and class: the best an
    image-blind model can do), and ``bg_off_prior_acc`` (BG accuracy where
    the scene is not the class's usual one).

    Args:
        model_dir (str): A :func:`train_world_vqa` folder.
        eval_world_dir (str): A world generated with another seed.
        train_world_dir (str): The training world (for the baselines).
        fg_templates (Sequence[str]): FG templates.
        bg_templates (Sequence[str]): BG templates.
        max_images (int, optional): Use only the first images. Defaults to
            None.
        progress (bool): Progress bar while loading. Defaults to False.

    Returns:
        dict: The accuracies (fractions) and counts.
    """
    model, processor = load_world_vqa(model_dir)
    size = model.config.vision_config.image_size
    ids, pairs = _world_pairs(eval_world_dir, fg_templates, bg_templates,
                              max_images)
    _, train_pairs = _world_pairs(train_world_dir, fg_templates,
                                  bg_templates, None)
    _add_scene(pairs, eval_world_dir)
    _add_scene(train_pairs, train_world_dir)
    images = _load_images(eval_world_dir, ids, size, progress)
    answers = answer_questions(model, processor.tokenizer, images,
                               [p['image'] for p in pairs],
                               [p['question'] for p in pairs])
    out = _accuracy_table(pairs, answers, train_pairs)
    out['num_images'] = len(ids)
    return out
