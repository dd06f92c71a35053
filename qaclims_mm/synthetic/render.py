"""Rendering one synthetic image with its exact labels.

Every object is first rasterised as a mask and its texture is painted through
that mask, so the class map and the VOC label map match the image pixel for
pixel; the scene is drawn from the first object's context prior.
"""
from dataclasses import dataclass
from typing import List, Tuple

import cv2
import numpy as np

from ..datasets.class_names import VOC_CLASSES
from .scenes import BACKGROUNDS, jitter
from .shapes import SHAPES, shape_fill
from .styles import CLASS_STYLES, CONTEXTS, texture_weight

#: Label of the "void" band around objects in ``SegmentationClass`` PNGs.
IGNORE_INDEX = 255

#: Version of what the generator draws. Bump it with ANY change to the
#: rendering (shapes, styles, scenes, layout, random draws) or to the
#: descriptions (:mod:`.describe`): the cached models of the synthetic world
#: (:mod:`.world`) are keyed by it and refuse data of another version.
#: ``tests/test_synthetic/test_synthetic_voc.py::test_rendering_is_pinned``
#: pins the rendering hash together with this number.
GENERATOR_VERSION = 1

_LAYOUT_TRIES = 25


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
    box_area = area_fraction * h * w / shape_fill(style.shape)
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
    mask = (np.abs(u) <= 1) & (np.abs(v) <= 1) & SHAPES[style.shape](u, v)
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
    colour = jitter(rng, style.colour, 15)
    colour2 = jitter(rng, style.colour2, style.colour2_jitter)
    period = max(3.0, style.period * min(place.a, place.b) *
                 rng.uniform(0.8, 1.25))
    phase = rng.uniform(0, 2 * np.pi)
    light = rng.uniform(0, 2 * np.pi)
    brightness = rng.uniform(0.8, 1.15)
    u, v = place.u[visible], place.v[visible]  # [N]
    t = texture_weight(style, u, v, u * place.a, v * place.b, period, phase)
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
    background = np.clip(BACKGROUNDS[context](rng, yy, xx), 0,
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
