"""A tiny CLIP of the synthetic world, trained on CPU (issue 13).

QA-CLIMS needs a CLIP that tells an object region from the scene around it:
RITC (:class:`~qaclims_mm.models.heads.RegionTextHead`) pulls the foreground
region of a CAM towards its class / answer texts and away from the background
answers ("water", "sky"). No CLIP can be downloaded here, so this module trains
one on a generated *pretraining world* (a :func:`make_synthetic_voc` folder at
a seed disjoint from the pipeline data, with the describer's side file
``world_descriptions.jsonl``):

1. **Contrastive training** of an open_clip ``CLIP`` (custom architecture
   :data:`WORLD_CLIP_CFG`, open_clip's own tokenizer) on regions and texts:
   object regions (the image weighted by a CAM-like soft map of one class, or
   the object's box crop) against the class / colour phrases of that object
   (``'a photo of white and red boat.'``, ``'a photo of boat.'``), and scene
   regions (the image with every object weighted out) against the scene words
   (``'a photo of water.'``). Both kinds share every batch; the loss is a
   symmetric multi-positive InfoNCE over the whole phrase vocabulary.
2. **Mask-prompt tuning** the way OV-Seg does it: the vision tower is wrapped
   in :class:`~qaclims_mm.models.clip.MaskPromptedCLIP` (depth 3) and its
   ``mask_embedding`` (and, with a 10x smaller learning rate, the tower) is
   learned so that a region image *with its mask* matches its texts, fed
   exactly as RITC feeds it (``region_mask='prompt'``): foreground ``A * X``
   with mask ``A >= 0.1 max A``, background ``(1 - A) * X`` with the
   complement, ``X`` ImageNet-normalised (``clip_renormalize=False``).

The images are whole frames resized to the CLIP input size, as RITC resizes
its crops; the CAM-like maps ``A`` are the exact object masks, randomly grown
or shrunk, blurred, scaled to a random peak and lifted by a random floor (a
sigmoid CAM is rarely 0 on the background), so the model has seen the regions
RITC will show it.

Saved layouts (``out_dir``), read by the package's own loaders:

* ``open_clip_config.json`` + ``open_clip_model.safetensors``: an open_clip
  ``local-dir:`` folder (the contrastive model), what
  ``load_text_encoder('local-dir:<out_dir>')`` and the text-cache builders
  load, and what ``build_mask_clip(model_name='local-dir:<out_dir>')`` reads
  the architecture from;
* ``weights.pth``: the same full state dict in OpenAI naming
  (``load_openai_weights``; plain CLIP, e.g. CLIMS);
* ``ovseg.pth``: ``{'model': {'clip_adapter.clip_model.visual.<k>': ...,
  'clip_adapter.clip_model.visual.mask_embedding': ...}}``, the mask-prompt
  tuned tower (``load_ovseg_checkpoint``);
* ``metrics.json``: the training settings and final losses.

:func:`evaluate_world_clip` measures zero-shot accuracy on held-out images.
"""
import copy
import json
import os
import os.path as osp
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ...datasets.class_names import VOC_CLASSES
from ...structures.normalization import IMAGENET_MEAN_01, IMAGENET_STD_01
from ...utils.io import atomic_write_bytes, atomic_write_text
from ..describe import DESCRIPTIONS_FILE, read_descriptions

__all__ = [
    'WORLD_CLIP_CFG', 'WORLD_TEXT_PROMPT',
    'WorldRegions', 'load_world_regions', 'object_phrases',
    'train_world_clip', 'evaluate_world_clip', 'load_world_clip',
    'simulate_cams', 'ritc_regions'
]

#: The prompt around every phrase; equal to QAPE's ``TEXT_PROMPT`` (the text
#: cache encodes answers and class names with it).
WORLD_TEXT_PROMPT = 'a photo of {}.'
#: The open_clip architecture: a 64 px ViT (8 px patches, 8x8 grid, width 64,
#: 4 blocks) and a 2-block text transformer with a 24-token context (the
#: phrases are short; open_clip's tokenizer reads the context length from
#: this config). QuickGELU, as the loaders' defaults assume.
WORLD_CLIP_CFG: Dict = dict(
    embed_dim=64,
    quick_gelu=True,
    vision_cfg=dict(image_size=64, patch_size=8, width=64, layers=4,
                    head_width=32, mlp_ratio=4.0),
    text_cfg=dict(context_length=24, vocab_size=49408, width=64, heads=4,
                  layers=2))
#: Mask prompts of the tuned tower (OV-Seg and QA-CLIMS use 3).
MASK_PROMPT_DEPTH = 3

_OVSEG_VISUAL = 'clip_adapter.clip_model.visual.'


# --------------------------------------------------------------------------
# The world's regions and phrases
# --------------------------------------------------------------------------
@dataclass
class WorldRegions:
    """The regions of a world, at the CLIP input size ``S``.

    Args:
        images (Tensor): ``[N, 3, S, S]`` uint8 RGB whole frames.
        objects (Tensor): ``[M, S, S]`` float exact masks of the (image,
            class) pairs (all instances of the class).
        object_image (Tensor): ``[M]`` image index of each pair.
        object_class (Tensor): ``[M]`` 0-based VOC class of each pair.
        crops (Tensor): ``[M, 3, S, S]`` uint8 box crop of each pair.
        union (Tensor): ``[N, S, S]`` float mask of every object (void band
            included) of each image.
        scene (Tensor): ``[N]`` scene index (into ``scenes``) of each image.
        phrases (list[str]): The phrase vocabulary (without the prompt).
        object_phrases (list[list[int]]): Per pair, its phrase rows.
        scene_phrases (list[list[int]]): Per scene, its phrase rows.
        scenes (list[str]): Scene names, in first-seen order.
        scene_words (list[str]): Per scene, its canonical word (the first
            of its words).
    """
    images: Tensor
    objects: Tensor
    object_image: Tensor
    object_class: Tensor
    crops: Tensor
    union: Tensor
    scene: Tensor
    phrases: List[str]
    object_phrases: List[List[int]]
    scene_phrases: List[List[int]]
    scenes: List[str]
    scene_words: List[str]


def object_phrases(obj: dict) -> List[str]:
    """The phrases a describer says of one object (without the prompt).

    ``'boat'``, ``'white boat'`` and, for a two-coloured object, ``'white
    and red boat'`` (the QAPE FG text form: answer + class name).

    Args:
        obj (dict): A side-file object record (``class``, ``colour`` and
            ``colours``, see :func:`~qaclims_mm.synthetic.describe.
            describe_class`).

    Returns:
        list[str]: Unique phrases, the bare class name first.
    """
    name = obj['class']
    phrases = [name]
    for key in ('colour', 'colours'):
        if obj.get(key):
            phrases.append(f'{obj[key]} {name}')
    return list(dict.fromkeys(phrases))


def _read_descriptions(world_dir: str) -> List[dict]:
    """The side-file records, each checked for what the CLIP reads."""
    path = osp.join(world_dir, DESCRIPTIONS_FILE)
    records = read_descriptions(path)
    for i, rec in enumerate(records):
        scene_words = rec.get('scene_words')
        if not isinstance(scene_words, list) or not all(
                isinstance(o, dict) and o.get('class') in VOC_CLASSES
                for o in rec['objects']):
            raise ValueError(
                f'{path}: record {i + 1} (image {rec["id"]!r}) needs a '
                f'scene_words list and objects with a VOC class')
    if not records:
        raise ValueError(f'{path} holds no records')
    return records


def _class_map(world_dir: str, img_id: str) -> np.ndarray:
    """The image's class map (VOC PNG where present, else the SBD mask)."""
    png = osp.join(world_dir, 'VOC2012', 'SegmentationClass', img_id + '.png')
    if osp.isfile(png):
        from PIL import Image
        return np.asarray(Image.open(png))
    mat = osp.join(world_dir, 'SBD', 'cls', img_id + '.mat')
    if osp.isfile(mat):
        from ...datasets.converters.voc12 import load_sbd_mask
        return load_sbd_mask(mat)
    raise FileNotFoundError(f'image {img_id}: no label map in {world_dir} '
                            f'(neither {png} nor {mat})')


def _resize(arr: np.ndarray, size: int) -> np.ndarray:
    return cv2.resize(arr, (size, size), interpolation=cv2.INTER_AREA)


def _box_crop(image: np.ndarray, mask: np.ndarray, size: int,
              margin: float = 0.15) -> np.ndarray:
    rows, cols = np.nonzero(mask)
    h, w = mask.shape
    y0, y1, x0, x1 = rows.min(), rows.max() + 1, cols.min(), cols.max() + 1
    my, mx = int(margin * (y1 - y0)), int(margin * (x1 - x0))
    crop = image[max(0, y0 - my):min(h, y1 + my),
                 max(0, x0 - mx):min(w, x1 + mx)]
    return _resize(crop, size)


def load_world_regions(world_dir: str,
                       size: int = 64,
                       max_images: Optional[int] = None,
                       progress: bool = True) -> WorldRegions:
    """Read a world's images, masks and phrases at the CLIP input size.

    Args:
        world_dir (str): A ``make_synthetic_voc`` output folder with the side
            file (``VOC2012/JPEGImages``, ``SegmentationClass`` or
            ``SBD/cls`` label maps).
        size (int): CLIP input size. Defaults to 64.
        max_images (int, optional): Read only the first images (in side-file
            order). Defaults to None (all).
        progress (bool): Show a progress bar. Defaults to True.

    Returns:
        WorldRegions: The regions and the phrase vocabulary.

    Raises:
        FileNotFoundError: the side file, an image or a label map is missing
            (the message names it).
    """
    from tqdm import tqdm
    records = _read_descriptions(world_dir)[:max_images]
    phrase_row: Dict[str, int] = {}
    scene_index: Dict[str, int] = {}
    scene_phrases: List[List[int]] = []
    scene_words: List[str] = []
    images, union, scene = [], [], []
    objects, obj_img, obj_cls, crops, obj_phr = [], [], [], [], []
    for n, rec in enumerate(tqdm(records, desc='world CLIP data',
                                 unit='img', disable=not progress)):
        img_id = rec['id']
        path = osp.join(world_dir, 'VOC2012', 'JPEGImages', img_id + '.jpg')
        bgr = cv2.imread(path, cv2.IMREAD_COLOR)
        if bgr is None:
            raise FileNotFoundError(f'image {img_id}: cannot read {path}')
        rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        cmap = _class_map(world_dir, img_id)
        if cmap.shape != rgb.shape[:2]:
            raise ValueError(f'image {img_id}: label map {cmap.shape} and '
                             f'image {rgb.shape[:2]} differ in size')
        if rec['scene'] not in scene_index:
            scene_index[rec['scene']] = len(scene_index)
            scene_words.append((rec['scene_words'] or [rec['scene']])[0])
            scene_phrases.append([])
        s = scene_index[rec['scene']]
        for word in rec['scene_words'] or [rec['scene']]:
            row = phrase_row.setdefault(word, len(phrase_row))
            if row not in scene_phrases[s]:
                scene_phrases[s].append(row)
        images.append(_resize(rgb, size).transpose(2, 0, 1))
        union.append(_resize((cmap > 0).astype(np.float32), size))
        scene.append(s)
        by_class: Dict[int, List[int]] = {}
        for obj in rec['objects']:
            cls = VOC_CLASSES.index(obj['class'])
            rows = by_class.setdefault(cls, [])
            for p in object_phrases(obj):
                row = phrase_row.setdefault(p, len(phrase_row))
                if row not in rows:
                    rows.append(row)
        for cls, rows in sorted(by_class.items()):
            mask = cmap == cls + 1
            if not mask.any():  # hidden by the void band at this size
                continue
            objects.append(_resize(mask.astype(np.float32), size))
            crops.append(_box_crop(rgb, mask, size).transpose(2, 0, 1))
            obj_img.append(n)
            obj_cls.append(cls)
            obj_phr.append(rows)
    return WorldRegions(
        images=torch.from_numpy(np.stack(images)),
        objects=torch.from_numpy(np.stack(objects)),
        object_image=torch.tensor(obj_img),
        object_class=torch.tensor(obj_cls),
        crops=torch.from_numpy(np.stack(crops)),
        union=torch.from_numpy(np.stack(union)),
        scene=torch.tensor(scene),
        phrases=list(phrase_row),
        object_phrases=obj_phr,
        scene_phrases=scene_phrases,
        scenes=list(scene_index),
        scene_words=scene_words)


# --------------------------------------------------------------------------
# Regions as RITC shows them
# --------------------------------------------------------------------------
def normalize_images(images: Tensor) -> Tensor:
    """uint8 RGB ``[K, 3, S, S]`` -> ImageNet-normalised float (RITC's X)."""
    mean = images.new_tensor(IMAGENET_MEAN_01, dtype=torch.float32)
    std = images.new_tensor(IMAGENET_STD_01, dtype=torch.float32)
    return (images.float() / 255 - mean[:, None, None]) / std[:, None, None]


def simulate_cams(masks: Tensor, generator: torch.Generator) -> Tensor:
    """CAM-like soft maps ``[K, 1, S, S]`` from exact masks ``[K, S, S]``.

    Each mask is grown or shrunk by up to 3 px, blurred, scaled to a random
    peak in ``[0.6, 1]`` and lifted by a random floor in ``[0, 0.45]`` (a
    sigmoid CAM of a trained classifier is rarely 0 on the background).
    """
    k = masks.shape[0]
    m = masks.float().unsqueeze(1)
    radius = torch.randint(-3, 4, (k, ), generator=generator)
    out = m.clone()
    for r in range(1, 4):  # batched morphology, one pass per radius
        grow = F.max_pool2d(m, 2 * r + 1, 1, r)
        shrink = -F.max_pool2d(-m, 2 * r + 1, 1, r)
        out = torch.where((radius == r)[:, None, None, None], grow, out)
        out = torch.where((radius == -r)[:, None, None, None], shrink, out)
    out = F.avg_pool2d(out, 5, 1, 2, count_include_pad=False)
    peak = torch.empty(k, 1, 1, 1).uniform_(0.6, 1.0, generator=generator)
    floor = torch.empty(k, 1, 1, 1).uniform_(0.0, 0.45, generator=generator)
    floor = floor * (torch.rand(k, 1, 1, 1, generator=generator) < 0.7)
    return floor * peak + (1 - floor) * peak * out


def ritc_regions(images: Tensor, cams: Tensor, alpha: float = 0.1
                 ) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
    """FG / BG regions and FAT masks as RITC builds them (mask prompts).

    Args:
        images (Tensor): ImageNet-normalised ``[K, 3, S, S]``.
        cams (Tensor): Soft maps ``[K, 1, S, S]`` in [0, 1].
        alpha (float): FAT threshold fraction. Defaults to 0.1.

    Returns:
        tuple: ``fg_img, bg_img`` ``[K, 3, S, S]``, ``fg_mask, bg_mask``
        ``[K, 1, S, S]``.
    """
    from ...models.utils.fat import fat_fg_bg_masks
    fg_mask, bg_mask = fat_fg_bg_masks(cams, alpha)
    return cams * images, (1 - cams) * images, fg_mask, bg_mask


# --------------------------------------------------------------------------
# Model and loss
# --------------------------------------------------------------------------
def build_world_clip(cfg: Optional[dict] = None) -> torch.nn.Module:
    """A randomly initialised open_clip ``CLIP`` of ``cfg``
    (:data:`WORLD_CLIP_CFG` by default)."""
    from open_clip.model import CLIP
    cfg = copy.deepcopy(cfg or WORLD_CLIP_CFG)
    return CLIP(embed_dim=cfg['embed_dim'], vision_cfg=cfg['vision_cfg'],
                text_cfg=cfg['text_cfg'],
                quick_gelu=cfg.get('quick_gelu', False))


def _tokenize(phrases: Sequence[str], cfg: dict) -> Tensor:
    import open_clip
    tok = open_clip.tokenize(
        [WORLD_TEXT_PROMPT.replace('{}', p) for p in phrases],
        context_length=cfg['text_cfg']['context_length'])
    return tok


def _positives(rows: Sequence[List[int]], num_phrases: int) -> Tensor:
    pos = torch.zeros(len(rows), num_phrases, dtype=torch.bool)
    for i, r in enumerate(rows):
        pos[i, r] = True
    return pos


def multi_positive_nce(img: Tensor, txt: Tensor, pos: Tensor,
                       scale: Tensor) -> Tensor:
    """Symmetric InfoNCE with several positive texts per region.

    Args:
        img (Tensor): ``[K, D]`` normalised region embeddings.
        txt (Tensor): ``[T, D]`` normalised phrase embeddings.
        pos (Tensor): ``[K, T]`` bool, the region's phrases.
        scale (Tensor): Logit scale (a scalar).

    Returns:
        Tensor: ``(region -> text + text -> region) / 2``, each the mean of
        ``-log`` of the summed softmax mass on the positives; texts without
        a positive region in the batch are left out of the second term.
    """
    logits = scale * img @ txt.t()  # [K, T]
    neg_inf = torch.finfo(logits.dtype).min
    i2t = (torch.logsumexp(logits, 1)
           - torch.logsumexp(logits.masked_fill(~pos, neg_inf), 1)).mean()
    used = pos.any(0)
    lt, pt = logits.t()[used], pos.t()[used]  # [T', K]
    t2i = (torch.logsumexp(lt, 1)
           - torch.logsumexp(lt.masked_fill(~pt, neg_inf), 1)).mean()
    return (i2t + t2i) / 2


@dataclass
class _Batch:
    images: Tensor  # ImageNet-normalised [K, 3, S, S]
    masks: Tensor  # [K, 1, S, S] region masks (FAT), 1 = inside
    pos: Tensor  # [K, T] bool
    blank: Tensor  # [B, 3, S, S] content-free regions (uniform target)
    blank_masks: Tensor  # [B, 1, S, S]


def _sample_batch(data: WorldRegions, pos_obj: Tensor, pos_scene: Tensor,
                  batch: int, generator: torch.Generator,
                  crop_fraction: float) -> _Batch:
    """``batch`` object regions and ``batch`` scene regions, RITC-style.

    Object regions: FG ``A * X`` with ``A`` a simulated CAM of the pair
    (mask ``A >= 0.1 max``) or, for ``crop_fraction`` of them, the box crop
    (all-ones mask). Scene regions: BG ``(1 - A) * X`` with ``A`` a simulated
    CAM of every object of the image (mask: the FAT complement).
    """
    m = data.objects.shape[0]
    n = data.images.shape[0]
    oi = torch.randint(0, m, (batch, ), generator=generator)
    si = torch.randint(0, n, (batch, ), generator=generator)
    obj_x = normalize_images(data.images[data.object_image[oi]])
    obj_a = simulate_cams(data.objects[oi], generator)
    fg_img, _, fg_mask, _ = ritc_regions(obj_x, obj_a)
    crop = torch.rand(batch, generator=generator) < crop_fraction
    fg_img = torch.where(crop[:, None, None, None],
                         normalize_images(data.crops[oi]), fg_img)
    fg_mask = torch.where(crop[:, None, None, None], torch.ones_like(fg_mask),
                          fg_mask)
    sc_x = normalize_images(data.images[si])
    sc_a = simulate_cams((data.union[si] > 0.5).float(), generator)
    _, bg_img, _, bg_mask = ritc_regions(sc_x, sc_a)
    # an image fully covered by objects has an empty background: skip it
    keep = bg_mask.flatten(1).sum(1) >= 4
    pos = torch.cat([pos_obj[oi], pos_scene[data.scene[si]][keep]])
    blank_img, blank_mask = _blank_regions(data, max(1, batch // 8),
                                           generator)
    return _Batch(torch.cat([fg_img, bg_img[keep]]),
                  torch.cat([fg_mask, bg_mask[keep]]), pos, blank_img,
                  blank_mask)


def _blank_regions(data: WorldRegions, k: int,
                   generator: torch.Generator) -> Tuple[Tensor, Tensor]:
    """Regions with no content: what RITC shows for a CAM that is flat.

    A flat CAM ``A = c`` gives the FG region ``c * X`` with a full FAT mask
    (``c`` in [0, 0.1]: nearly blank) or, for ``A = 1``, the BG region ``0``
    with an empty mask. They must match no phrase in particular (trained
    towards a uniform softmax), or a CAM could collapse to zero and still
    "look like" its class (a blank ImageNet-normalised region is the mean
    grey).
    """
    idx = torch.randint(0, data.images.shape[0], (k, ), generator=generator)
    c = torch.empty(k, 1, 1, 1).uniform_(0.0, 0.1, generator=generator)
    images = c * normalize_images(data.images[idx])
    full = torch.rand(k, generator=generator) < 0.5
    size = images.shape[-1]
    masks = full[:, None, None, None].float().expand(k, 1, size,
                                                      size).contiguous()
    images = torch.where(full[:, None, None, None], images,
                         torch.zeros_like(images))
    return images, masks


def uniform_target_loss(img: Tensor, txt: Tensor, scale: Tensor) -> Tensor:
    """KL(uniform || softmax over phrases) of blank regions ``[B, D]``."""
    logp = (scale * img @ txt.t()).log_softmax(1)
    return -(logp.mean(1) + np.log(txt.shape[0])).mean()


def _lr_at(step: int, total: int, base: float, warmup: int) -> float:
    if step < warmup:
        return base * (step + 1) / warmup
    t = (step - warmup) / max(1, total - warmup)
    return base * 0.5 * (1 + np.cos(np.pi * t))


# --------------------------------------------------------------------------
# Saving and loading
# --------------------------------------------------------------------------
def _save_layouts(out_dir: str, model: torch.nn.Module, cfg: dict,
                  tuned) -> None:
    from safetensors.torch import save as st_save
    os.makedirs(out_dir, exist_ok=True)
    state = {k: v.detach().contiguous().clone()
             for k, v in model.state_dict().items()}
    atomic_write_bytes(osp.join(out_dir, 'open_clip_model.safetensors'),
                       st_save(state))
    atomic_write_text(osp.join(out_dir, 'open_clip_config.json'),
                      json.dumps({'model_cfg': cfg}, indent=2) + '\n')
    _torch_save_atomic(state, osp.join(out_dir, 'weights.pth'))
    ovseg = {_OVSEG_VISUAL + k: v.detach().contiguous().clone()
             for k, v in tuned.visual.state_dict().items()}
    ovseg[_OVSEG_VISUAL + 'mask_embedding'] = \
        tuned.mask_embedding.detach().clone()
    _torch_save_atomic({'model': ovseg}, osp.join(out_dir, 'ovseg.pth'))


def _torch_save_atomic(obj: object, path: str) -> None:
    import io
    buf = io.BytesIO()
    torch.save(obj, buf)
    atomic_write_bytes(path, buf.getvalue())


def load_world_clip(out_dir: str, tuned: bool = True):
    """The saved CLIP of ``out_dir`` through the package's loaders.

    Args:
        out_dir (str): A :func:`train_world_clip` output folder.
        tuned (bool): Load ``ovseg.pth`` (the mask-prompt tuned tower and
            mask embedding) after ``weights.pth``. False keeps the
            contrastive tower with a zero mask embedding. Defaults to True.

    Returns:
        tuple: ``(open_clip model, tokenizer, MaskPromptedCLIP)``.
    """
    import open_clip

    from ...models.clip import build_mask_clip
    name = 'local-dir:' + out_dir
    model = open_clip.create_model(name)
    model.eval()
    tokenizer = open_clip.get_tokenizer(name)
    mask_clip = build_mask_clip(
        model_name=name,
        weights=osp.join(out_dir, 'weights.pth'),
        ovseg_checkpoint=osp.join(out_dir, 'ovseg.pth') if tuned else None,
        mask_prompt_depth=MASK_PROMPT_DEPTH)
    return model, tokenizer, mask_clip


# --------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------
def train_world_clip(world_dir: str,
                     out_dir: str,
                     seed: int = 0,
                     progress: bool = True,
                     steps: int = 600,
                     tune_steps: int = 200,
                     batch_size: int = 32,
                     max_images: Optional[int] = None,
                     cfg: Optional[dict] = None) -> dict:
    """Train the world CLIP and save it in the three layouts.

    Deterministic for a seed (same data, seed and thread count give the same
    weights).

    Args:
        world_dir (str): A generated world with its side file.
        out_dir (str): Output folder (see the module docstring).
        seed (int): Seed of the initialisation and the sampling.
            Defaults to 0.
        progress (bool): Show progress bars. Defaults to True.
        steps (int): Contrastive steps. Defaults to 600.
        tune_steps (int): Mask-prompt tuning steps. Defaults to 200.
        batch_size (int): Object regions (and as many scene regions) per
            step. Defaults to 32.
        max_images (int, optional): Use only the first images of the world.
            Defaults to None.
        cfg (dict, optional): open_clip model config. Defaults to
            :data:`WORLD_CLIP_CFG`.

    Returns:
        dict: Settings and the mean losses of the last 50 steps of each
        phase (``loss_contrastive``, ``loss_mask_prompt``), also written to
        ``out_dir/metrics.json``.
    """
    from tqdm import tqdm

    from ...models.clip import MaskPromptedCLIP
    cfg = copy.deepcopy(cfg or WORLD_CLIP_CFG)
    size = cfg['vision_cfg']['image_size']
    data = load_world_regions(world_dir, size, max_images, progress)
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    model = build_world_clip(cfg)
    tokens = _tokenize(data.phrases, cfg)
    num_phrases = len(data.phrases)
    pos_obj = _positives(data.object_phrases, num_phrases)
    pos_scene = _positives(data.scene_phrases, num_phrases)

    # (a) contrastive: both towers, plain CLIP on the regions
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.05)
    history_a = []
    bar = tqdm(range(steps), desc='world CLIP contrastive', unit='step',
               disable=not progress)
    for step in bar:
        for g in opt.param_groups:
            g['lr'] = _lr_at(step, steps, 1e-3, 50)
        b = _sample_batch(data, pos_obj, pos_scene, batch_size, gen, 0.25)
        img = F.normalize(model.encode_image(b.images), dim=-1)
        txt = F.normalize(model.encode_text(tokens), dim=-1)
        scale = model.logit_scale.exp().clamp(max=100)
        blank = F.normalize(model.encode_image(b.blank), dim=-1)
        loss = multi_positive_nce(img, txt, b.pos, scale) + \
            uniform_target_loss(blank, txt, scale)
        opt.zero_grad()
        loss.backward()
        opt.step()
        history_a.append(loss.item())
        if step % 20 == 0:
            bar.set_postfix(loss=f'{np.mean(history_a[-20:]):.3f}')
    model.eval()

    # (b) mask-prompt tuning: the vision tower with its mask prompts; the
    # text tower (and so every text feature) stays fixed
    with torch.no_grad():
        txt = F.normalize(model.encode_text(tokens), dim=-1)
        scale = model.logit_scale.exp().clamp(max=100)
    tuned = MaskPromptedCLIP(
        visual=copy.deepcopy(model.visual),
        mask_prompt_depth=MASK_PROMPT_DEPTH, frozen=False)
    tuned.train()
    opt = torch.optim.AdamW([
        dict(params=[tuned.mask_embedding], lr=5e-3, weight_decay=0.),
        dict(params=tuned.visual.parameters(), lr=1e-4, weight_decay=0.05),
    ])
    base_lrs = [g['lr'] for g in opt.param_groups]
    history_b = []
    bar = tqdm(range(tune_steps), desc='world CLIP mask prompts',
               unit='step', disable=not progress)
    for step in bar:
        for g, lr in zip(opt.param_groups, base_lrs):
            g['lr'] = _lr_at(step, tune_steps, lr, 20)
        b = _sample_batch(data, pos_obj, pos_scene, batch_size, gen, 0.0)
        img = F.normalize(tuned(b.images, b.masks), dim=-1)
        blank = F.normalize(tuned(b.blank, b.blank_masks), dim=-1)
        loss = multi_positive_nce(img, txt, b.pos, scale) + \
            uniform_target_loss(blank, txt, scale)
        opt.zero_grad()
        loss.backward()
        opt.step()
        history_b.append(loss.item())
        if step % 20 == 0:
            bar.set_postfix(loss=f'{np.mean(history_b[-20:]):.3f}')
    tuned.eval()

    _save_layouts(out_dir, model, cfg, tuned)
    metrics = dict(
        seed=seed, steps=steps, tune_steps=tune_steps,
        batch_size=batch_size, num_images=int(data.images.shape[0]),
        num_object_regions=int(data.objects.shape[0]),
        num_phrases=num_phrases, scenes=data.scenes,
        loss_contrastive_first=float(np.mean(history_a[:50] or [0.])),
        loss_contrastive=float(np.mean(history_a[-50:] or [0.])),
        loss_mask_prompt_first=float(np.mean(history_b[:50] or [0.])),
        loss_mask_prompt=float(np.mean(history_b[-50:] or [0.])))
    atomic_write_text(osp.join(out_dir, 'metrics.json'),
                      json.dumps(metrics, indent=2) + '\n')
    return metrics


# --------------------------------------------------------------------------
# Evaluation
# --------------------------------------------------------------------------
@torch.no_grad()
def _encode_prompts(model, tokenizer, phrases: Sequence[str]) -> Tensor:
    tok = tokenizer([WORLD_TEXT_PROMPT.replace('{}', p) for p in phrases])
    return F.normalize(model.encode_text(tok), dim=-1)


@torch.no_grad()
def _predict(encode, images: Tensor, masks: Optional[Tensor], txt: Tensor,
             chunk: int = 256) -> Tensor:
    preds = []
    for s in range(0, images.shape[0], chunk):
        m = None if masks is None else masks[s:s + chunk]
        feats = F.normalize(encode(images[s:s + chunk], m), dim=-1)
        preds.append((feats @ txt.t()).argmax(1))
    return torch.cat(preds)


def evaluate_world_clip(out_dir: str,
                        eval_world_dir: str,
                        max_images: Optional[int] = None,
                        progress: bool = False) -> dict:
    """Held-out zero-shot accuracy of a saved world CLIP.

    Regions of unseen images (exact masks, ImageNet-normalised whole frames
    at the CLIP size), classified against ``'a photo of {class}.'`` (the 20
    VOC classes) or ``'a photo of {scene word}.'`` (the world's scenes):

    * ``object_acc`` / ``scene_acc``: plain CLIP (``weights.pth``) on the
      object region ``m * X`` / the scene region ``(1 - union) * X`` (the
      CLIMS way);
    * ``masked_object_acc`` / ``masked_scene_acc``: the mask-prompted CLIP
      (``weights.pth`` + ``ovseg.pth``) on the same regions with their masks
      (the RITC way); ``masked_*_untuned``: the contrastive tower with a zero
      mask embedding (before mask-prompt tuning);
    * ``full_image_masked_{object,scene}_acc`` (and ``_untuned``): the
      whole image with the region mask as the only cue (OV-Seg's use; what
      mask-prompt tuning teaches);
    * ``blank_class_excess_{plain,masked}``: for an all-zero region (the FG
      region of a CAM at 0), the cosine of the nearest class prompt minus the
      mean over the classes (small: no class is favoured, so a CAM cannot
      collapse to zero and still match its class);
    * ``pair_fg_acc`` / ``pair_bg_acc``: per (image, class) pair, whether the
      tuned CLIP puts the object region nearer its class than its scene word,
      and the scene region nearer its scene word than the class (the choice
      L_FRC / L_BRC rely on).

    Args:
        out_dir (str): A :func:`train_world_clip` output folder.
        eval_world_dir (str): A world generated with another seed.
        max_images (int, optional): Use only the first images. Defaults to
            None.
        progress (bool): Show a progress bar. Defaults to False.

    Returns:
        dict: The accuracies (fractions), the chance levels
        (``object_chance``, ``scene_chance``) and the region counts.
    """
    model, tokenizer, tuned = load_world_clip(out_dir, tuned=True)
    _, _, untuned = load_world_clip(out_dir, tuned=False)
    size = tuned.image_size[0]
    data = load_world_regions(eval_world_dir, size, max_images, progress)
    cls_txt = _encode_prompts(model, tokenizer, VOC_CLASSES)
    scene_txt = _encode_prompts(model, tokenizer, data.scene_words)

    obj_x = normalize_images(data.images[data.object_image])
    obj_m = (data.objects > 0.5).float().unsqueeze(1)
    sc_x = normalize_images(data.images)
    sc_m = (data.union <= 0.5).float().unsqueeze(1)
    has_bg = sc_m.flatten(1).sum(1) >= 4
    sc_x, sc_m, scene = sc_x[has_bg], sc_m[has_bg], data.scene[has_bg]

    def plain(x, m):
        return model.encode_image(x)

    def acc(pred: Tensor, target: Tensor) -> float:
        return float((pred == target).float().mean())

    out = dict(num_object_regions=int(obj_x.shape[0]),
               num_scene_regions=int(sc_x.shape[0]),
               object_chance=1 / len(VOC_CLASSES),
               scene_chance=1 / len(data.scenes))
    cls = data.object_class
    out['object_acc'] = acc(_predict(plain, obj_x * obj_m, None, cls_txt),
                            cls)
    out['scene_acc'] = acc(_predict(plain, sc_x * sc_m, None, scene_txt),
                           scene)
    for name, enc in (('', tuned), ('_untuned', untuned)):
        out[f'masked_object_acc{name}'] = acc(
            _predict(enc, obj_x * obj_m, obj_m, cls_txt), cls)
        out[f'masked_scene_acc{name}'] = acc(
            _predict(enc, sc_x * sc_m, sc_m, scene_txt), scene)
        out[f'full_image_masked_object_acc{name}'] = acc(
            _predict(enc, obj_x, obj_m, cls_txt), cls)
        out[f'full_image_masked_scene_acc{name}'] = acc(
            _predict(enc, sc_x, sc_m, scene_txt), scene)

    # a blank region (what a flat CAM gives) must favour no class: the
    # largest excess of one class prompt's cosine over the mean, plain CLIP
    # and mask-prompted with a full mask (the FG of a CAM at 0)
    blank = torch.zeros(1, 3, size, size)
    with torch.no_grad():
        for name, v in (('plain', model.encode_image(blank)),
                        ('masked', tuned(blank, torch.ones(1, 1, size,
                                                           size)))):
            cos = F.normalize(v, dim=-1)[0] @ cls_txt.t()
            out[f'blank_class_excess_{name}'] = float(cos.max() - cos.mean())

    # pairs: class text vs the scene word of the pair's image
    pair_scene = data.scene[data.object_image]
    bg_m = 1 - obj_m
    with torch.no_grad():
        v_fg = F.normalize(tuned(obj_x * obj_m, obj_m), dim=-1)
        v_bg = F.normalize(tuned(obj_x * bg_m, bg_m), dim=-1)
    t_cls, t_scene = cls_txt[cls], scene_txt[pair_scene]
    out['pair_fg_acc'] = float(
        ((v_fg * t_cls).sum(1) > (v_fg * t_scene).sum(1)).float().mean())
    out['pair_bg_acc'] = float(
        ((v_bg * t_scene).sum(1) > (v_bg * t_cls).sum(1)).float().mean())
    return out
