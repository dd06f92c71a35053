"""A deterministic synthetic dataset in the PASCAL VOC 2012 + SBD layouts.

The smoke tests, the demo configs and the CPU tutorials need a dataset that
every converter, dataset class and metric of this package reads exactly like
the real one, but that is generated in seconds and carries no licence. This
module draws one:

* every one of the 20 VOC classes has its own silhouette, colours and texture
  (:data:`CLASS_STYLES`), with per-instance jitter of scale, aspect, rotation,
  mirroring, colour and brightness, so that a small CNN can learn the classes
  but not trivially;
* backgrounds are textured scenes drawn from :data:`CONTEXTS` (sky, water,
  grass, road, rail track, indoor, plain), and the scene is **correlated with
  the class** of the first object (boats mostly on water, cows on grass, sofas
  indoors, ...), which is what makes background false activation of CAMs a real
  effect on this data;
* the label maps are exact: every object is first rasterised as a mask and its
  texture is painted through that mask, so ``SegmentationClass`` and the SBD
  ``GTcls`` masks match the JPEG pixel for pixel (before JPEG compression);
* generation is deterministic: image ``k`` of a split uses its own generator
  seeded with ``[seed, split, k]``, so it does not depend on how many images
  the other splits hold, and the same arguments give byte-identical files.

The written layout (``<out_dir>`` = ``make_synthetic_voc(out_dir)``)::

    VOC2012/JPEGImages/<id>.jpg          every image (train, val, aug-only)
    VOC2012/Annotations/<id>.xml         every image, VOC XML schema
    VOC2012/SegmentationClass/<id>.png   train + val ids, palette PNG, 255 void
    VOC2012/ImageSets/Segmentation/{train,val,trainval}.txt
    VOC2012/ImageSets/Main/{train,val,trainval}.txt   train = train + aug
    SBD/cls/<id>.mat                     VOC-train + aug-only ids, GTcls struct
    SBD/img/<id>.jpg                     the same JPEG bytes as VOC2012
    SBD/{train,val}.txt                  SBD split (every 5th image in val)
"""
import functools
import io
import os
import os.path as osp
import shutil
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable, Dict, List, Sequence, Tuple

import cv2
import numpy as np
import scipy.io
import scipy.sparse
from PIL import Image

from ..utils.io import atomic_write_bytes, atomic_write_text
from .class_names import VOC_CLASSES, VOC_PALETTE, VOC_XML_NAMES

#: Background scene types, in a fixed order (context priors index into it).
CONTEXTS: Tuple[str, ...] = ('sky', 'water', 'grass', 'road', 'rail',
                             'indoor', 'plain')

#: Label of the "void" band around objects in ``SegmentationClass`` PNGs.
IGNORE_INDEX = 255

#: JPEG quality of every written image (fixed, so files are reproducible).
JPEG_QUALITY = 90

#: Split name -> the code mixed into each image's random seed.
SPLIT_CODES: Dict[str, int] = {'train': 0, 'val': 1, 'aug': 2}

# An id is f'{year}_{number:06d}': the year cycles through 2007..2012 and the
# number starts at a split-specific base, so ids never collide across splits.
_ID_YEARS = tuple(range(2007, 2013))
_ID_BASES = {'train': 0, 'val': 300000, 'aug': 600000}
_MAX_IMAGES_PER_SPLIT = 6 * 299999
_MIN_LONG_SIDE = 32
_LAYOUT_TRIES = 25
_MAT_HEADER = (b'MATLAB 5.0 MAT-file, Platform: posix, '
               b'Created by: qaclims-mm synthetic VOC').ljust(116, b' ')

ShapeFn = Callable[[np.ndarray, np.ndarray], np.ndarray]
RGB = Tuple[int, int, int]


# --------------------------------------------------------------------------
# Class appearance
# --------------------------------------------------------------------------
@dataclass(frozen=True)
class ClassStyle:
    """How one VOC class is drawn.

    Args:
        shape (str): Name of the silhouette in ``_SHAPES``.
        aspect (float): Width / height of the silhouette's box.
        colour (tuple): Primary RGB colour.
        colour2 (tuple): Secondary RGB colour (stripes, dots, screen, ...).
        texture (str): Texture name, see :func:`_texture_weight`.
        context (dict): Prior over :data:`CONTEXTS` when this class is the
            first object of an image (missing contexts get probability 0).
        max_rotation (float): Largest in-plane rotation, in degrees.
        frequency (float): Relative frequency of the class (VOC-like).
        period (float): Texture period as a fraction of the smaller half
            extent of the object. Defaults to 0.45.
        split_v (float): Split line (object coordinates, -1 top, 1 bottom)
            of the ``'split'`` texture. Defaults to 0.
        colour2_jitter (int): Per-instance jitter of ``colour2`` (e.g. the
            clothes of a person). Defaults to 15.
    """
    shape: str
    aspect: float
    colour: RGB
    colour2: RGB
    texture: str
    context: Dict[str, float]
    max_rotation: float = 15.0
    frequency: float = 1.0
    period: float = 0.45
    split_v: float = 0.0
    colour2_jitter: int = 15


def _prior(main: str, p: float) -> Dict[str, float]:
    """``main`` with probability ``p``, the other contexts share the rest."""
    rest = (1.0 - p) / (len(CONTEXTS) - 1)
    return {c: (p if c == main else rest) for c in CONTEXTS}


#: The look of the 20 VOC classes, in label order (see :data:`VOC_CLASSES`).
CLASS_STYLES: Tuple[ClassStyle, ...] = (
    ClassStyle('plane', 1.4, (226, 228, 236), (95, 105, 125), 'gradient',
               _prior('sky', 0.8), max_rotation=20),
    ClassStyle('bicycle', 2.0, (215, 30, 40), (250, 190, 190), 'solid',
               _prior('road', 0.8), max_rotation=10),
    ClassStyle('chevron', 1.6, (250, 205, 25), (200, 90, 10), 'dots',
               {**_prior('sky', 0.7), 'grass': 0.15, 'water': 0.1,
                'road': 0.0, 'rail': 0.0, 'indoor': 0.0, 'plain': 0.05},
               max_rotation=25, frequency=1.2, period=0.35),
    ClassStyle('boat', 1.3, (245, 245, 240), (190, 60, 35), 'split',
               _prior('water', 0.8), max_rotation=8, split_v=0.3),
    ClassStyle('bottle', 0.4, (30, 150, 65), (240, 240, 230), 'band',
               _prior('indoor', 0.75), max_rotation=8),
    ClassStyle('bus', 2.2, (255, 140, 0), (35, 35, 55), 'windows',
               _prior('road', 0.8), max_rotation=5),
    ClassStyle('car', 1.8, (30, 80, 220), (170, 200, 255), 'gradient',
               _prior('road', 0.8), max_rotation=6, frequency=1.5),
    ClassStyle('cat', 1.0, (125, 125, 130), (35, 35, 40), 'stripes_v',
               {'indoor': 0.4, 'plain': 0.25, 'grass': 0.25, 'road': 0.1},
               max_rotation=20, frequency=1.3, period=0.3),
    ClassStyle('chair', 0.8, (230, 80, 170), (140, 35, 100), 'stripes_h',
               _prior('indoor', 0.8), max_rotation=8, frequency=1.3,
               period=0.35),
    ClassStyle('cow', 1.5, (248, 248, 248), (25, 25, 25), 'patches',
               _prior('grass', 0.8), max_rotation=6),
    ClassStyle('table', 1.6, (235, 235, 235), (200, 35, 40), 'checker',
               _prior('indoor', 0.8), max_rotation=5, period=0.3),
    ClassStyle('dog', 1.5, (205, 165, 100), (115, 75, 35), 'gradient',
               {'grass': 0.35, 'indoor': 0.3, 'plain': 0.2, 'road': 0.15},
               max_rotation=10, frequency=1.3),
    ClassStyle('horse', 1.2, (105, 58, 28), (55, 28, 10), 'solid',
               _prior('grass', 0.8), max_rotation=6),
    ClassStyle('motorbike', 1.6, (0, 170, 170), (20, 20, 20), 'checker',
               _prior('road', 0.8), max_rotation=8, period=0.35),
    ClassStyle('person', 0.42, (240, 190, 155), (50, 60, 170), 'split',
               {'indoor': 0.25, 'road': 0.2, 'grass': 0.2, 'plain': 0.2,
                'water': 0.05, 'rail': 0.05, 'sky': 0.05},
               max_rotation=6, frequency=3.0, split_v=-0.56,
               colour2_jitter=70),
    ClassStyle('plant', 0.8, (35, 110, 35), (200, 95, 50), 'split',
               _prior('indoor', 0.8), max_rotation=6, split_v=0.38),
    ClassStyle('sheep', 1.3, (238, 230, 200), (165, 160, 145), 'dots',
               _prior('grass', 0.8), max_rotation=6, period=0.25),
    ClassStyle('sofa', 1.7, (120, 50, 170), (70, 25, 110), 'gradient',
               _prior('indoor', 0.8), max_rotation=5),
    ClassStyle('train', 3.0, (130, 20, 35), (235, 225, 190), 'stripes_h',
               _prior('rail', 0.8), max_rotation=5, period=0.5),
    ClassStyle('tv', 1.3, (25, 25, 30), (80, 150, 250), 'frame',
               _prior('indoor', 0.8), max_rotation=5),
)


# --------------------------------------------------------------------------
# Silhouettes. Each maps object coordinates (u right, v down, both in [-1, 1]
# over the object's box) to a boolean mask; vectorised over any array shape.
# --------------------------------------------------------------------------
def _ellipse(u: np.ndarray, v: np.ndarray, cu: float, cv: float, ru: float,
             rv: float) -> np.ndarray:
    return ((u - cu) / ru)**2 + ((v - cv) / rv)**2 <= 1.0


def _shape_plane(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    av = np.abs(v)
    fuselage = (av <= 0.16) & (u >= -0.92) | _ellipse(u, v, -0.9, 0, 0.1, 0.16)
    wings = (u >= -0.25 + 0.35 * av) & (u <= 0.1 + 0.35 * av)
    tail = (u >= 0.68 + 0.56 * av) & (av <= 0.45)
    return fuselage | wings | tail


def _shape_bicycle(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    rr = ((np.abs(u) - 0.5) / 0.48)**2 + ((v - 0.05) / 0.95)**2
    wheels = (rr <= 1.0) & (rr >= 0.58**2)
    top_tube = (np.abs(v + 0.3) <= 0.12) & (np.abs(u) <= 0.5)
    chain_stay = (np.abs(v - 0.05) <= 0.1) & (np.abs(u) <= 0.5)
    seat_post = (np.abs(u + 0.1) <= 0.07) & (v >= -0.65) & (v <= 0.05)
    fork = (np.abs(u - 0.45) <= 0.07) & (v >= -0.8) & (v <= 0.05)
    return wheels | top_tube | chain_stay | seat_post | fork


def _shape_chevron(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    au = np.abs(u)
    wings = np.abs(v - (-0.55 + 1.1 * au)) <= 0.22 + 0.25 * (1 - au)
    return wings | _ellipse(u, v, 0, -0.35, 0.3, 0.45)


def _shape_boat(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    hull = (v >= 0.3) & (np.abs(u) <= 1 - 0.45 * (v - 0.3) / 0.7)
    sail = (v < 0.3) & (u >= -0.05) & (u <= -0.05 + 0.75 * (v + 1) / 1.3)
    mast = (np.abs(u + 0.08) <= 0.06) & (v < 0.3)
    return hull | sail | mast


def _shape_bottle(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    half_width = np.clip(0.38 + 0.62 * (v + 0.55) / 0.3, 0.38, 1.0)
    return (np.abs(u) <= half_width) & (v >= -0.95)


def _shape_bus(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    return (u * u)**3 + (v * v)**3 <= 1.0


def _shape_car(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    body = (v >= -0.2) & (v <= 0.62)
    cabin = (v < -0.2) & (np.abs(u + 0.05) <= 0.32 + 0.3 * (v + 1) / 0.8)
    wheels = _ellipse(np.abs(u), v, 0.6, 0.62, 0.2, 0.38)
    return body | cabin | wheels


def _shape_cat(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    head = _ellipse(u, v, 0, 0.25, 0.95, 0.75)
    ears = (v <= -0.2) & (np.abs(np.abs(u) - 0.55) <= 0.32 * (v + 1) / 0.8)
    return head | ears


def _shape_chair(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    back = (u <= -0.5) & (v <= 0.2)
    seat = (v >= -0.1) & (v <= 0.2)
    legs = (v > 0.2) & ((np.abs(u + 0.82) <= 0.14)
                        | (np.abs(u - 0.84) <= 0.14))
    return back | seat | legs


def _quadruped(u: np.ndarray, v: np.ndarray, body_v: float, body_rv: float,
               leg_hw: float, neck_hw: float, tail: bool) -> np.ndarray:
    body = _ellipse(u, v, -0.05, body_v, 0.78, body_rv)
    head = _ellipse(u, v, 0.78, -0.62, 0.22, 0.3)
    legs = (v >= body_v) & (
        (np.abs(u + 0.55) <= leg_hw) | (np.abs(u + 0.3) <= leg_hw)
        | (np.abs(u - 0.32) <= leg_hw) | (np.abs(u - 0.56) <= leg_hw))
    s = (body_v - v) / (body_v + 0.62)  # 0 at the body, 1 at the head
    neck = (s >= 0) & (s <= 1) & (np.abs(u - (0.45 + 0.33 * s)) <= neck_hw)
    mask = body | head | legs | neck
    if tail:
        mask |= (u <= -0.7) & (np.abs(v - (body_v - 0.25 + 1.6 * (u + 0.7)))
                               <= 0.1)
    return mask


def _shape_table(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    return (v <= -0.6) | (np.abs(np.abs(u) - 0.82) <= 0.12)


def _shape_motorbike(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    wheels = _ellipse(np.abs(u), v, 0.62, 0.42, 0.36, 0.58)
    body = (v >= -0.4) & (v <= 0.25) & (np.abs(u) <= 0.6)
    bars = (np.abs(u - 0.55) <= 0.08) & (v >= -0.95) & (v <= -0.3)
    return wheels | body | bars


def _shape_person(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    head = _ellipse(u, v, 0, -0.78, 0.42, 0.22)
    torso = (v >= -0.55) & (v <= 0.25) & (np.abs(u) <= 0.85)
    legs = (v > 0.25) & (np.abs(np.abs(u) - 0.32) <= 0.26)
    return head | torso | legs


def _shape_plant(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    du, dv = u / 0.95, (v + 0.3) / 0.68
    foliage = np.hypot(du, dv) <= 0.82 + 0.18 * np.cos(7 * np.arctan2(dv, du))
    pot = (v >= 0.38) & (np.abs(u) <= 0.5 - 0.18 * (v - 0.38) / 0.62)
    return foliage | pot


def _shape_sheep(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    du, dv = u / 0.9, (v + 0.12) / 0.78
    fleece = np.hypot(du, dv) <= 0.86 + 0.14 * np.cos(10 * np.arctan2(dv, du))
    legs = (v >= 0.4) & (np.abs(np.abs(u) - 0.42) <= 0.1)
    return fleece | legs | _ellipse(u, v, 0.82, -0.2, 0.18, 0.28)


def _shape_sofa(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    au = np.abs(u)
    back = (v <= 0.1) & (v >= -0.85) & (au <= 0.82)
    arms = (au >= 0.72) & (v >= -0.35) & (v <= 0.7)
    seat = (v >= 0.05) & (v <= 0.7)
    legs = (v > 0.7) & (np.abs(au - 0.86) <= 0.08)
    return back | arms | seat | legs


def _shape_train(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    body = (np.abs(v) <= 0.85) & (u <= 0.8)
    nose = (u > 0.8) & _ellipse(u, v, 0.8, 0, 0.2, 0.85)
    bogies = (v > 0.85) & ((np.abs(u + 0.6) <= 0.15)
                           | (np.abs(u - 0.5) <= 0.15))
    return body | nose | bogies


def _shape_tv(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    stand = (v > 0.75) & (np.abs(u) <= 0.2) | (v > 0.9) & (np.abs(u) <= 0.5)
    return (v <= 0.75) | stand


_SHAPES: Dict[str, ShapeFn] = {
    'plane': _shape_plane,
    'bicycle': _shape_bicycle,
    'chevron': _shape_chevron,
    'boat': _shape_boat,
    'bottle': _shape_bottle,
    'bus': _shape_bus,
    'car': _shape_car,
    'cat': _shape_cat,
    'chair': _shape_chair,
    'cow': functools.partial(_quadruped, body_v=-0.1, body_rv=0.42,
                             leg_hw=0.09, neck_hw=0.15, tail=False),
    'table': _shape_table,
    'dog': functools.partial(_quadruped, body_v=0.0, body_rv=0.32,
                             leg_hw=0.08, neck_hw=0.13, tail=True),
    'horse': functools.partial(_quadruped, body_v=-0.2, body_rv=0.28,
                               leg_hw=0.07, neck_hw=0.12, tail=True),
    'motorbike': _shape_motorbike,
    'person': _shape_person,
    'plant': _shape_plant,
    'sheep': _shape_sheep,
    'sofa': _shape_sofa,
    'train': _shape_train,
    'tv': _shape_tv,
}


@functools.lru_cache(maxsize=None)
def _shape_fill(shape: str) -> float:
    """Fraction of its box that a silhouette covers (sizes objects by area)."""
    grid = np.linspace(-1, 1, 201)
    u, v = np.meshgrid(grid, grid)
    return float(_SHAPES[shape](u, v).mean())


def _texture_weight(style: ClassStyle, u: np.ndarray, v: np.ndarray,
                    pu: np.ndarray, pv: np.ndarray, period: float,
                    phase: float) -> np.ndarray:
    """Blend weight of ``colour2`` (0 = ``colour``, 1 = ``colour2``).

    ``u, v`` are object coordinates in [-1, 1]; ``pu, pv`` the same axes in
    pixels, so stripes, dots and checks keep a pixel period.
    """
    name = style.texture
    if name == 'solid':
        return np.zeros_like(u)
    if name == 'gradient':
        return np.clip((v + 1) / 2, 0, 1)
    if name == 'stripes_h':
        return (np.sin(2 * np.pi * pv / period + phase) > 0).astype(u.dtype)
    if name == 'stripes_v':
        return (np.sin(2 * np.pi * pu / period + phase) > 0).astype(u.dtype)
    if name == 'checker':
        cells = np.floor(pu / period + phase) + np.floor(pv / period + phase)
        return (cells % 2).astype(u.dtype)
    if name == 'dots':
        du = (pu / period + phase) % 1 - 0.5
        dv = (pv / period + phase) % 1 - 0.5
        return (du * du + dv * dv < 0.09).astype(u.dtype)
    if name == 'patches':
        s = period * 0.6
        field = (np.sin(pu / s * 1.7 + phase)
                 + np.sin(pv / s * 1.3 + 2 * phase)
                 + np.sin((pu - pv) / s + 3 * phase))
        return (field > 0.9).astype(u.dtype)
    if name == 'frame':
        screen = (np.abs(u) <= 0.82) & (v >= -0.8) & (v <= 0.58)
        return screen.astype(u.dtype)
    if name == 'windows':
        rows = (v >= -0.7) & (v <= -0.1) & (np.abs(u) <= 0.9)
        return (rows & ((u * 4 + phase) % 1 >= 0.25)).astype(u.dtype)
    if name == 'band':
        return (np.abs(v - 0.3) <= 0.28).astype(u.dtype)
    if name == 'split':
        return (v >= style.split_v).astype(u.dtype)
    raise KeyError(f'unknown texture {name!r}')


# --------------------------------------------------------------------------
# Backgrounds
# --------------------------------------------------------------------------
def _smooth_noise(rng: np.random.Generator, h: int, w: int,
                  cells: Tuple[int, int]) -> np.ndarray:
    """Low-frequency noise (about unit variance), ``cells`` = (rows, cols)."""
    grid = rng.standard_normal((cells[0] + 1, cells[1] + 1)).astype(np.float32)
    field = cv2.resize(grid, (w, h), interpolation=cv2.INTER_CUBIC)
    return field / (field.std() + 1e-6)


def _jitter(rng: np.random.Generator, rgb: Sequence[float],
            amount: float) -> np.ndarray:
    offset = rng.uniform(-amount, amount, 3).astype(np.float32)
    return np.asarray(rgb, np.float32) + offset


def _mix(c0: np.ndarray, c1: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Per-pixel blend ``c0 * (1 - t) + c1 * t`` -> [H, W, 3]."""
    t = t[..., None]
    return c0 * (1 - t) + c1 * t


def _bg_sky(rng: np.random.Generator, yy: np.ndarray,
            xx: np.ndarray) -> np.ndarray:
    h, w = yy.shape
    img = _mix(_jitter(rng, (70, 130, 215), 20), _jitter(rng, (175, 210, 240),
                                                           15), yy / h)
    cover = rng.uniform(0.3, 1.0)
    clouds = np.clip(_smooth_noise(rng, h, w, (3, 5)) * 0.7 - 1 + cover, 0, 1)
    return _mix(img, _jitter(rng, (245, 245, 250), 8), clouds)


def _sky_band(rng: np.random.Generator, img: np.ndarray, yy: np.ndarray,
              xx: np.ndarray, p: float) -> np.ndarray:
    """With probability ``p``, replace the top 12-32% of ``img`` by sky."""
    if rng.random() < p:
        horizon = int(rng.uniform(0.12, 0.32) * yy.shape[0])
        img[:horizon] = _bg_sky(rng, yy, xx)[:horizon]
    return img


def _bg_water(rng: np.random.Generator, yy: np.ndarray,
              xx: np.ndarray) -> np.ndarray:
    h, w = yy.shape
    img = _mix(_jitter(rng, (60, 130, 190), 15), _jitter(rng, (20, 65, 130),
                                                          15), yy / h)
    period = max(3.0, rng.uniform(0.05, 0.09) * h)
    sway = np.sin(2 * np.pi * xx / (rng.uniform(0.4, 0.9) * w)
                  + rng.uniform(0, 2 * np.pi))
    waves = np.sin(2 * np.pi * yy / period + 1.5 * sway)
    img += (18 * waves)[..., None]
    glints = (waves > 0.8) & (_smooth_noise(rng, h, w, (4, 6)) > 0.5)
    img = _mix(img, np.float32([215, 230, 245]), 0.5 * glints)
    img += rng.normal(0, 4, (h, w, 1)).astype(np.float32)
    return _sky_band(rng, img, yy, xx, 0.4)


def _bg_grass(rng: np.random.Generator, yy: np.ndarray,
              xx: np.ndarray) -> np.ndarray:
    h, w = yy.shape
    base = _jitter(rng, (70, 135, 45), 20)
    patches = _smooth_noise(rng, h, w, (3, 4))
    img = _mix(np.broadcast_to(base, (h, w, 3)), _jitter(rng, (150, 160, 60),
                                                          15),
               np.clip(patches * 0.4, 0, 1))
    blades = cv2.blur(rng.standard_normal((h, w)).astype(np.float32), (1, 5))
    img += (35 * blades)[..., None] * np.float32([0.6, 1.0, 0.4])
    return _sky_band(rng, img, yy, xx, 0.35)


def _bg_road(rng: np.random.Generator, yy: np.ndarray,
             xx: np.ndarray) -> np.ndarray:
    h, w = yy.shape
    img = np.broadcast_to(_jitter(rng, (88, 88, 92), 12), (h, w, 3)).copy()
    img += (8 * _smooth_noise(rng, h, w, (3, 4)))[..., None]
    img += rng.normal(0, 9, (h, w, 1)).astype(np.float32)
    line_y = rng.uniform(0.45, 0.85) * h
    slope = rng.uniform(-0.15, 0.15)
    dist = np.abs(yy - line_y - slope * (xx - w / 2))
    dashes = np.sin(2 * np.pi * xx / (0.15 * w) + rng.uniform(0, 6.3)) > 0
    paint = (220, 220, 215) if rng.random() < 0.6 else (230, 190, 40)
    img[(dist <= max(1.0, 0.015 * h)) & dashes] = paint
    if rng.random() < 0.5:  # pavement along the top
        kerb = int(rng.uniform(0.1, 0.3) * h)
        tiles = ((xx // max(4, w // 12) + yy // max(4, h // 8)) % 2)[:kerb]
        img[:kerb] = _jitter(rng, (165, 162, 155), 10) - 12 * tiles[..., None]
    return img


def _bg_rail(rng: np.random.Generator, yy: np.ndarray,
             xx: np.ndarray) -> np.ndarray:
    h, w = yy.shape
    img = np.broadcast_to(_jitter(rng, (125, 115, 100), 12), (h, w, 3)).copy()
    img += rng.normal(0, 22, (h, w, 1)).astype(np.float32)  # ballast speckle
    centre = rng.uniform(0.45, 0.8) * h
    gauge = rng.uniform(0.14, 0.22) * h
    d = yy - centre - rng.uniform(-0.1, 0.1) * (xx - w / 2)
    spacing = max(4.0, rng.uniform(0.06, 0.1) * w)
    sleepers = (np.abs(d) <= 0.85 * gauge) & (
        (xx / spacing + rng.uniform(0, 1)) % 1 < 0.35)
    img[sleepers] = _jitter(rng, (95, 65, 45), 10)
    rails = np.abs(np.abs(d) - gauge / 2) <= max(1.0, 0.015 * h)
    img[rails] = (72, 72, 78)
    img[rails & (np.abs(d) < gauge / 2)] = (175, 175, 182)  # polished edge
    return _sky_band(rng, img, yy, xx, 0.3)


_WALL_COLOURS = ((225, 215, 190), (210, 210, 205), (235, 225, 160),
                 (200, 220, 195), (225, 195, 185))


def _bg_indoor(rng: np.random.Generator, yy: np.ndarray,
               xx: np.ndarray) -> np.ndarray:
    h, w = yy.shape
    wall = _jitter(rng, _WALL_COLOURS[rng.integers(len(_WALL_COLOURS))], 10)
    img = np.broadcast_to(wall, (h, w, 3)).copy()
    img += (10 * _smooth_noise(rng, h, w, (2, 3)))[..., None]  # lighting
    if rng.random() < 0.5:  # wallpaper stripes
        img += (7 * np.sign(np.sin(2 * np.pi * xx / max(4.0, 0.06 * w))))[...,
                                                                          None]
    horizon = int(rng.uniform(0.55, 0.8) * h)
    floor_y, floor_x = yy[horizon:], xx[horizon:]
    if rng.random() < 0.6:  # wooden planks
        grain = cv2.blur(rng.standard_normal(floor_y.shape).astype(np.float32),
                         (9, 1))
        seams = (floor_y % max(3, h // 14)) < 1
        floor = np.broadcast_to(_jitter(rng, (150, 105, 65), 15),
                                floor_y.shape + (3, )).copy()
        floor += (14 * grain - 40 * seams)[..., None]
    else:  # tiles
        cell = max(4, w // 10)
        check = (floor_x // cell + floor_y // cell) % 2
        floor = _mix(_jitter(rng, (190, 190, 185), 10),
                     _jitter(rng, (120, 120, 118), 10), check)
        floor[(floor_x % cell < 1) | (floor_y % cell < 1)] = (80, 80, 80)
    img[horizon:] = floor
    img[max(0, horizon - 2):horizon] = (240, 240, 235)  # skirting board
    return img


def _bg_plain(rng: np.random.Generator, yy: np.ndarray,
              xx: np.ndarray) -> np.ndarray:
    h, w = yy.shape
    base = rng.uniform(60, 220) + rng.uniform(-25, 25, 3).astype(np.float32)
    angle = rng.uniform(0, 2 * np.pi)
    ramp = (np.cos(angle) * xx / w + np.sin(angle) * yy / h) * 30
    img = base.astype(np.float32) + ramp[..., None]
    return img + rng.normal(0, 4, (h, w, 1)).astype(np.float32)


_BACKGROUNDS = {
    'sky': _bg_sky,
    'water': _bg_water,
    'grass': _bg_grass,
    'road': _bg_road,
    'rail': _bg_rail,
    'indoor': _bg_indoor,
    'plain': _bg_plain,
}


# --------------------------------------------------------------------------
# One image
# --------------------------------------------------------------------------
@dataclass
class SyntheticObject:
    """One drawn object instance.

    Args:
        class_index (int): 0-based VOC class index.
        bbox (tuple): ``(xmin, ymin, xmax, ymax)``, 1-based inclusive pixel
            coordinates of the instance mask, as in VOC XML.
        truncated (bool): Whether the object is cut by the image border.
        visible_pixels (int): Pixels of the instance not hidden by later ones.
    """
    class_index: int
    bbox: Tuple[int, int, int, int]
    truncated: bool
    visible_pixels: int


@dataclass
class SyntheticImage:
    """One rendered image with its exact labels.

    Args:
        image (np.ndarray): ``[H, W, 3]`` uint8 RGB image (before JPEG).
        background (np.ndarray): ``[H, W, 3]`` uint8 background alone; equals
            ``image`` wherever ``class_map == 0``.
        class_map (np.ndarray): ``[H, W]`` uint8, 0 background, 1..20 classes
            (the SBD ``GTcls.Segmentation``).
        seg_map (np.ndarray): ``class_map`` with a void band (255) along every
            object outline (the VOC ``SegmentationClass``).
        objects (list[SyntheticObject]): The instances in drawing order.
        context (str): The background scene, one of :data:`CONTEXTS`.
    """
    image: np.ndarray
    background: np.ndarray
    class_map: np.ndarray
    seg_map: np.ndarray
    objects: List[SyntheticObject]
    context: str

    @property
    def labels(self) -> Tuple[int, ...]:
        """Sorted 0-based class indices present in the image."""
        return tuple(sorted({o.class_index for o in self.objects}))


@dataclass
class _Placement:
    class_index: int
    u: np.ndarray  # [H, W] object coordinates
    v: np.ndarray
    a: float  # half width in pixels
    b: float  # half height in pixels
    mask: np.ndarray  # [H, W] bool, the full instance


_CLASS_FREQUENCY = np.array([s.frequency for s in CLASS_STYLES])
_CONTEXT_PRIORS = np.array(
    [[s.context.get(c, 0.0) for c in CONTEXTS] for s in CLASS_STYLES])
_CONTEXT_PRIORS /= _CONTEXT_PRIORS.sum(1, keepdims=True)


def _sample_classes(rng: np.random.Generator,
                    max_objects: int) -> Tuple[List[int], int]:
    """Object classes (one entry per instance) and the context index.

    Most images hold one class, some two or three (as in VOC). The scene is
    drawn from the first class's context prior; further classes favour that
    scene, so that e.g. cows meet sheep on grass.
    """
    first = int(rng.choice(len(CLASS_STYLES),
                           p=_CLASS_FREQUENCY / _CLASS_FREQUENCY.sum()))
    context = int(rng.choice(len(CONTEXTS), p=_CONTEXT_PRIORS[first]))
    r = rng.random()
    num_classes = min(max_objects, 1 + int(r > 0.62) + int(r > 0.9))
    classes = [first]
    affinity = _CLASS_FREQUENCY * (0.1 + _CONTEXT_PRIORS[:, context])
    while len(classes) < num_classes:
        weights = affinity.copy()
        weights[classes] = 0
        classes.append(int(rng.choice(len(weights),
                                      p=weights / weights.sum())))
    instances = list(classes)
    for cls in classes:  # a few repeated instances (people most often)
        extra_p = 0.35 if VOC_CLASSES[cls] == 'person' else 0.15
        if len(instances) < max_objects and rng.random() < extra_p:
            instances.append(cls)
    order = rng.permutation(len(instances))
    return [instances[i] for i in order], context


def _place(rng: np.random.Generator, class_index: int, h: int, w: int,
           yy: np.ndarray, xx: np.ndarray, crowded: bool) -> _Placement:
    """Sample size, pose and position of one instance and rasterise it."""
    style = CLASS_STYLES[class_index]
    area_fraction = rng.uniform(0.08, 0.25) if crowded else rng.uniform(
        0.1, 0.4)
    aspect = style.aspect * np.exp(rng.uniform(-0.2, 0.2))
    box_area = area_fraction * h * w / _shape_fill(style.shape)
    a = 0.5 * np.sqrt(box_area * aspect)
    b = 0.5 * np.sqrt(box_area / aspect)
    shrink = min(1.0, 0.48 * w / a, 0.48 * h / b)
    a, b = a * shrink, b * shrink
    theta = np.deg2rad(rng.uniform(-style.max_rotation, style.max_rotation))
    cos, sin = np.cos(theta), np.sin(theta)
    flip = -1.0 if rng.random() < 0.5 else 1.0
    # keep at least ~60% of the rotated box inside the image
    rx, ry = abs(a * cos) + abs(b * sin), abs(a * sin) + abs(b * cos)
    lo_x, lo_y = min(0.6 * rx, w / 2), min(0.6 * ry, h / 2)
    cx, cy = rng.uniform(lo_x, w - lo_x), rng.uniform(lo_y, h - lo_y)
    dx, dy = xx + 0.5 - cx, yy + 0.5 - cy  # pixel centres
    u = flip * (dx * cos + dy * sin) / a
    v = (-dx * sin + dy * cos) / b
    mask = (np.abs(u) <= 1) & (np.abs(v) <= 1) & _SHAPES[style.shape](u, v)
    return _Placement(class_index, u, v, float(a), float(b), mask)


def _void_band(instance_map: np.ndarray) -> np.ndarray:
    """Pixels next to a different instance id (a 2-px band on each outline)."""
    kernel = np.ones((3, 3), np.uint8)
    return cv2.dilate(instance_map, kernel) != cv2.erode(instance_map, kernel)


def _layout(rng: np.random.Generator, classes: List[int], h: int, w: int,
            yy: np.ndarray,
            xx: np.ndarray) -> Tuple[List[_Placement], np.ndarray, np.ndarray]:
    """Place the instances so that each stays visible and labelled.

    Every instance must keep >= 35% of its pixels after later instances are
    drawn over it, and >= 3 labelled pixels outside the void band (so its
    class is in the PNG). Failing layouts are resampled; if that keeps
    failing, the last instance is dropped.
    """
    classes = list(classes)
    while True:
        for _ in range(_LAYOUT_TRIES):
            crowded = len(classes) > 1
            places = [_place(rng, c, h, w, yy, xx, crowded) for c in classes]
            instance_map = np.zeros((h, w), np.uint8)
            for i, p in enumerate(places):
                instance_map[p.mask] = i + 1
            void = _void_band(instance_map)
            ok = True
            for i, p in enumerate(places):
                visible = instance_map == i + 1
                if (visible.sum() < max(8, 0.35 * p.mask.sum())
                        or (visible & ~void).sum() < 3):
                    ok = False
                    break
            if ok:
                return places, instance_map, void
        if len(classes) == 1:
            raise RuntimeError(
                f'could not place a {VOC_CLASSES[classes[0]]} in a {w}x{h} '
                f'image; use a larger min_long')
        classes.pop()


def _paint(rng: np.random.Generator, img: np.ndarray, place: _Placement,
           visible: np.ndarray) -> None:
    """Paint the textured, shaded object into ``img`` through ``visible``."""
    style = CLASS_STYLES[place.class_index]
    colour = _jitter(rng, style.colour, 15)
    colour2 = _jitter(rng, style.colour2, style.colour2_jitter)
    period = max(3.0, style.period * min(place.a, place.b) *
                 rng.uniform(0.8, 1.25))
    phase = rng.uniform(0, 2 * np.pi)
    light = rng.uniform(0, 2 * np.pi)
    brightness = rng.uniform(0.8, 1.15)
    u, v = place.u[visible], place.v[visible]  # [N]
    t = _texture_weight(style, u, v, u * place.a, v * place.b, period, phase)
    rgb = colour * (1 - t[:, None]) + colour2 * t[:, None]  # [N, 3]
    shade = brightness * (1 + 0.15 * (u * np.cos(light) + v * np.sin(light)))
    rgb = rgb * shade[:, None] + rng.normal(0, 5, (u.size, 1))
    img[visible] = rgb


def render_synthetic_image(rng: np.random.Generator,
                           min_long: int = 96,
                           max_long: int = 128,
                           max_objects: int = 3) -> SyntheticImage:
    """Draw one image with its class map, VOC label map and objects.

    Args:
        rng (np.random.Generator): The image's own generator; the result is
            a pure function of its state.
        min_long (int): Smallest long side in pixels. Defaults to 96.
        max_long (int): Largest long side in pixels. Defaults to 128.
        max_objects (int): Most object instances per image. Defaults to 3.

    Returns:
        SyntheticImage: The image and its exact labels.
    """
    long_side = int(rng.integers(min_long, max_long + 1))
    short_side = max(1, int(round(long_side * rng.uniform(0.68, 0.8))))
    # about 70% landscape, like VOC
    h, w = ((short_side, long_side) if rng.random() < 0.7 else
            (long_side, short_side))
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)

    classes, context_index = _sample_classes(rng, max_objects)
    places, instance_map, void = _layout(rng, classes, h, w, yy, xx)
    context = CONTEXTS[context_index]
    background = np.clip(_BACKGROUNDS[context](rng, yy, xx), 0,
                         255).round().astype(np.uint8)

    img = background.astype(np.float32)
    class_map = np.zeros((h, w), np.uint8)
    objects = []
    for i, place in enumerate(places):
        visible = instance_map == i + 1
        _paint(rng, img, place, visible)
        class_map[visible] = place.class_index + 1
        rows, cols = np.nonzero(place.mask)
        touches_border = (rows.min() == 0 or cols.min() == 0
                          or rows.max() == h - 1 or cols.max() == w - 1)
        objects.append(
            SyntheticObject(
                class_index=place.class_index,
                bbox=(int(cols.min()) + 1, int(rows.min()) + 1,
                      int(cols.max()) + 1, int(rows.max()) + 1),
                truncated=bool(touches_border),
                visible_pixels=int(visible.sum())))
    image = np.clip(img, 0, 255).round().astype(np.uint8)
    seg_map = class_map.copy()
    seg_map[void] = IGNORE_INDEX
    return SyntheticImage(image, background, class_map, seg_map, objects,
                          context)


# --------------------------------------------------------------------------
# File formats
# --------------------------------------------------------------------------
def voc_colormap(num_entries: int = 256) -> np.ndarray:
    """The PASCAL VOC colour map (bit-interleaved), ``[num_entries, 3]``.

    Entries 0..20 equal :data:`VOC_PALETTE`; entry 255 is (224, 224, 192).
    """
    from ..utils.label_io import label_colormap
    return np.asarray(label_colormap(num_entries), dtype=np.uint8)


_PNG_PALETTE = voc_colormap(256)
assert _PNG_PALETTE[:len(VOC_PALETTE)].tolist() == VOC_PALETTE


def encode_jpeg(image: np.ndarray) -> bytes:
    """RGB ``[H, W, 3]`` uint8 -> JPEG bytes (quality :data:`JPEG_QUALITY`)."""
    buf = io.BytesIO()
    Image.fromarray(image, 'RGB').save(
        buf, format='JPEG', quality=JPEG_QUALITY, subsampling='4:2:0',
        optimize=False)
    return buf.getvalue()


def encode_label_png(seg_map: np.ndarray) -> bytes:
    """``[H, W]`` uint8 labels -> palette PNG bytes with the VOC colour map."""
    h, w = seg_map.shape
    png = Image.frombytes('P', (w, h), np.ascontiguousarray(seg_map).tobytes())
    png.putpalette(_PNG_PALETTE.flatten().tolist())
    buf = io.BytesIO()
    png.save(buf, format='PNG')
    return buf.getvalue()


def encode_sbd_mat(class_map: np.ndarray) -> bytes:
    """``[H, W]`` class map -> SBD ``cls/*.mat`` bytes (``GTcls`` struct).

    ``GTcls.Segmentation`` is the class map (no void), ``Boundaries`` a 20x1
    cell of sparse outlines and ``CategoriesPresent`` a uint8 column of the
    1-based classes. The MAT header's creation date is replaced by a fixed
    text, so the bytes are reproducible.
    """
    h, w = class_map.shape
    present = np.unique(class_map)
    present = present[present > 0].astype(np.uint8)
    kernel = np.ones((3, 3), np.uint8)
    boundaries = np.empty((len(VOC_CLASSES), 1), dtype=object)
    for k in range(len(VOC_CLASSES)):
        boundaries[k, 0] = scipy.sparse.csc_matrix((h, w), dtype=bool)
    for c in present:  # at most a few classes per image
        mask = (class_map == c).astype(np.uint8)
        outline = mask.astype(bool) & ~cv2.erode(mask, kernel).astype(bool)
        boundaries[c - 1, 0] = scipy.sparse.csc_matrix(outline)
    gt_cls = {
        'Segmentation': np.ascontiguousarray(class_map, np.uint8),
        'Boundaries': boundaries,
        'CategoriesPresent': present.reshape(-1, 1),
    }
    buf = io.BytesIO()
    scipy.io.savemat(buf, {'GTcls': gt_cls}, do_compression=True)
    data = bytearray(buf.getvalue())
    data[:len(_MAT_HEADER)] = _MAT_HEADER
    return bytes(data)


def voc_annotation_xml(image_id: str, width: int, height: int,
                       objects: Sequence[SyntheticObject],
                       segmented: bool) -> str:
    """The VOC ``Annotations/<id>.xml`` text of one image."""
    lines = [
        '<annotation>', '\t<folder>VOC2012</folder>',
        f'\t<filename>{image_id}.jpg</filename>', '\t<source>',
        '\t\t<database>qaclims-mm synthetic VOC</database>', '\t</source>',
        '\t<size>', f'\t\t<width>{width}</width>',
        f'\t\t<height>{height}</height>', '\t\t<depth>3</depth>', '\t</size>',
        f'\t<segmented>{int(segmented)}</segmented>'
    ]
    for obj in objects:
        xmin, ymin, xmax, ymax = obj.bbox
        lines += [
            '\t<object>', f'\t\t<name>{VOC_XML_NAMES[obj.class_index]}</name>',
            '\t\t<pose>Unspecified</pose>',
            f'\t\t<truncated>{int(obj.truncated)}</truncated>',
            '\t\t<difficult>0</difficult>', '\t\t<bndbox>',
            f'\t\t\t<xmin>{xmin}</xmin>', f'\t\t\t<ymin>{ymin}</ymin>',
            f'\t\t\t<xmax>{xmax}</xmax>', f'\t\t\t<ymax>{ymax}</ymax>',
            '\t\t</bndbox>', '\t</object>'
        ]
    lines.append('</annotation>')
    return '\n'.join(lines) + '\n'


def synthetic_image_id(split: str, index: int) -> str:
    """The VOC-style id (``'2009_300002'``) of image ``index`` of ``split``.

    Ids are unique across the ``'train'``, ``'val'`` and ``'aug'`` splits and
    do not depend on the number of images in any split.
    """
    year = _ID_YEARS[index % len(_ID_YEARS)]
    return f'{year}_{_ID_BASES[split] + index // len(_ID_YEARS) + 1:06d}'


# --------------------------------------------------------------------------
# The dataset
# --------------------------------------------------------------------------
def _check_args(num_train: int, num_val: int, num_aug: int, min_long: int,
                max_long: int, seed: int, max_objects: int) -> None:
    for name, value, least in (('num_train', num_train, 1),
                               ('num_val', num_val, 1),
                               ('num_aug', num_aug, 0),
                               ('max_objects', max_objects, 1),
                               ('seed', seed, 0)):
        if int(value) != value or value < least:
            raise ValueError(f'{name} must be an integer >= {least}, '
                             f'got {value!r}')
    for name, value in (('num_train', num_train), ('num_val', num_val),
                        ('num_aug', num_aug)):
        if value > _MAX_IMAGES_PER_SPLIT:
            raise ValueError(f'{name} must be <= {_MAX_IMAGES_PER_SPLIT}, '
                             f'got {value}')
    if min_long < _MIN_LONG_SIDE:
        raise ValueError(f'min_long must be >= {_MIN_LONG_SIDE} pixels, '
                         f'got {min_long}')
    if min_long > max_long:
        raise ValueError(f'min_long ({min_long}) must not exceed max_long '
                         f'({max_long})')


def _prepare_out_dir(out_dir: str, overwrite: bool) -> None:
    if osp.exists(out_dir) and not osp.isdir(out_dir):
        raise FileExistsError(f'output path {out_dir} exists and is not a '
                              f'folder')
    if osp.isdir(out_dir) and os.listdir(out_dir):
        if not overwrite:
            raise FileExistsError(
                f'output folder {out_dir} is not empty; pass overwrite=True '
                f'(--overwrite) to regenerate the dataset there')
        for sub in ('VOC2012', 'SBD'):  # only what this generator writes
            if osp.isdir(osp.join(out_dir, sub)):
                shutil.rmtree(osp.join(out_dir, sub))
    os.makedirs(out_dir, exist_ok=True)


def make_synthetic_voc(out_dir: str,
                       num_train: int = 24,
                       num_val: int = 12,
                       num_aug: int = 24,
                       min_long: int = 96,
                       max_long: int = 128,
                       seed: int = 0,
                       max_objects: int = 3,
                       progress: bool = True,
                       overwrite: bool = False) -> Dict[str, object]:
    """Write a synthetic PASCAL VOC 2012 + SBD look-alike to ``out_dir``.

    VOC ``train`` and ``val`` images get ``SegmentationClass`` PNGs; VOC
    ``train`` and the aug-only images get SBD ``cls/*.mat`` masks (so the
    usual ``train_aug`` = SBD + VOC train - VOC val works); every image gets a
    JPEG and an XML annotation. See the module docstring for the layout.

    Args:
        out_dir (str): Output folder; ``VOC2012/`` and ``SBD/`` are created
            in it.
        num_train (int): VOC segmentation train images (>= 1). Defaults to 24.
        num_val (int): VOC segmentation val images (>= 1). Defaults to 12.
        num_aug (int): Extra images with SBD masks only. Defaults to 24.
        min_long (int): Smallest image long side, >= 32. Defaults to 96.
        max_long (int): Largest image long side. Defaults to 128.
        seed (int): Dataset seed (>= 0). Defaults to 0.
        max_objects (int): Most object instances per image. Defaults to 3.
        progress (bool): Show a progress bar. Defaults to True.
        overwrite (bool): Allow a non-empty ``out_dir``; its ``VOC2012/`` and
            ``SBD/`` folders are deleted and regenerated (nothing else is
            touched). Defaults to False.

    Returns:
        dict: A summary with keys ``out_dir``, ``voc_root``, ``sbd_root``,
        ``train_ids``, ``val_ids``, ``aug_ids``, ``sbd_train_ids``,
        ``sbd_val_ids`` (sorted id lists), ``num_images`` (int),
        ``contexts`` (id -> scene name in :data:`CONTEXTS`) and ``labels``
        (id -> sorted tuple of 0-based class indices).

    Raises:
        ValueError: For a bad count, size or seed.
        FileExistsError: When ``out_dir`` is not empty and ``overwrite`` is
            False (the message names the folder).
    """
    from tqdm import tqdm

    _check_args(num_train, num_val, num_aug, min_long, max_long, seed,
                max_objects)
    _prepare_out_dir(out_dir, overwrite)
    voc_root = osp.join(out_dir, 'VOC2012')
    sbd_root = osp.join(out_dir, 'SBD')
    for folder in (osp.join(voc_root, 'JPEGImages'),
                   osp.join(voc_root, 'Annotations'),
                   osp.join(voc_root, 'SegmentationClass'),
                   osp.join(voc_root, 'ImageSets', 'Segmentation'),
                   osp.join(voc_root, 'ImageSets', 'Main'),
                   osp.join(sbd_root, 'cls'), osp.join(sbd_root, 'img')):
        os.makedirs(folder, exist_ok=True)

    ids: Dict[str, List[str]] = {'train': [], 'val': [], 'aug': []}
    sbd_ids: Dict[str, List[str]] = {'train': [], 'val': []}
    contexts: Dict[str, str] = {}
    labels: Dict[str, Tuple[int, ...]] = {}
    counts = {'train': num_train, 'val': num_val, 'aug': num_aug}
    total = num_train + num_val + num_aug
    pending: List[Future] = []

    # Files are written by a small thread pool: each atomic write ends with an
    # fsync, which would otherwise dominate the run time.
    with ThreadPoolExecutor(max_workers=8) as pool, \
            tqdm(total=total, desc='synthetic VOC', unit='img',
                 disable=not progress) as bar:

        def write(path: str, data: bytes) -> None:
            pending.append(pool.submit(atomic_write_bytes, path, data))

        for split, count in counts.items():
            for index in range(count):
                image_id = synthetic_image_id(split, index)
                rng = np.random.default_rng([seed, SPLIT_CODES[split], index])
                sample = render_synthetic_image(rng, min_long, max_long,
                                                max_objects)
                h, w = sample.class_map.shape
                jpeg = encode_jpeg(sample.image)
                write(osp.join(voc_root, 'JPEGImages', f'{image_id}.jpg'),
                      jpeg)
                xml = voc_annotation_xml(image_id, w, h, sample.objects,
                                         segmented=split != 'aug')
                write(osp.join(voc_root, 'Annotations', f'{image_id}.xml'),
                      xml.encode('utf-8'))
                if split != 'aug':
                    write(
                        osp.join(voc_root, 'SegmentationClass',
                                 f'{image_id}.png'),
                        encode_label_png(sample.seg_map))
                if split != 'val':
                    write(osp.join(sbd_root, 'cls', f'{image_id}.mat'),
                          encode_sbd_mat(sample.class_map))
                    write(osp.join(sbd_root, 'img', f'{image_id}.jpg'), jpeg)
                    sbd_split = 'val' if index % 5 == 4 else 'train'
                    sbd_ids[sbd_split].append(image_id)
                ids[split].append(image_id)
                contexts[image_id] = sample.context
                labels[image_id] = sample.labels
                bar.update(1)
        for future in pending:
            future.result()  # re-raise the first failed write

    def write_list(path: str, id_list: List[str]) -> None:
        atomic_write_text(path, ''.join(f'{i}\n' for i in sorted(id_list)))

    seg_sets = osp.join(voc_root, 'ImageSets', 'Segmentation')
    main_sets = osp.join(voc_root, 'ImageSets', 'Main')
    write_list(osp.join(seg_sets, 'train.txt'), ids['train'])
    write_list(osp.join(seg_sets, 'val.txt'), ids['val'])
    write_list(osp.join(seg_sets, 'trainval.txt'), ids['train'] + ids['val'])
    write_list(osp.join(main_sets, 'train.txt'), ids['train'] + ids['aug'])
    write_list(osp.join(main_sets, 'val.txt'), ids['val'])
    write_list(
        osp.join(main_sets, 'trainval.txt'),
        ids['train'] + ids['val'] + ids['aug'])
    write_list(osp.join(sbd_root, 'train.txt'), sbd_ids['train'])
    write_list(osp.join(sbd_root, 'val.txt'), sbd_ids['val'])

    return {
        'out_dir': out_dir,
        'voc_root': voc_root,
        'sbd_root': sbd_root,
        'train_ids': sorted(ids['train']),
        'val_ids': sorted(ids['val']),
        'aug_ids': sorted(ids['aug']),
        'sbd_train_ids': sorted(sbd_ids['train']),
        'sbd_val_ids': sorted(sbd_ids['val']),
        'num_images': total,
        'contexts': contexts,
        'labels': labels,
    }
