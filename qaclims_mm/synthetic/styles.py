"""How the 20 VOC classes look: silhouette, colours, texture, scene prior.

:data:`CLASS_STYLES` gives every class its own look; :func:`texture_weight`
turns a style's texture name into the per-pixel blend of its two colours.
"""
from dataclasses import dataclass
from typing import Dict, Tuple

import numpy as np

#: Background scene types, in a fixed order (context priors index into it).
CONTEXTS: Tuple[str, ...] = ('sky', 'water', 'grass', 'road', 'rail',
                             'indoor', 'plain')

RGB = Tuple[int, int, int]


@dataclass(frozen=True)
class ClassStyle:
    """How one VOC class is drawn.

    Args:
        shape (str): Name of the silhouette in ``SHAPES``.
        aspect (float): Width / height of the silhouette's box.
        colour (tuple): Primary RGB colour.
        colour2 (tuple): Secondary RGB colour (stripes, dots, screen, ...).
        texture (str): Texture name, see :func:`texture_weight`.
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



def texture_weight(style: ClassStyle, u: np.ndarray, v: np.ndarray,
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
