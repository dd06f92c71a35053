"""Class silhouettes of the synthetic dataset.

Each silhouette maps object coordinates (u right, v down, both in [-1, 1] over
the object's box) to a boolean mask; vectorised over any array shape.
:data:`SHAPES` names them (the ``shape`` of a
:class:`~qaclims_mm.synthetic.styles.ClassStyle`).
"""
import functools
from typing import Callable, Dict

import numpy as np

ShapeFn = Callable[[np.ndarray, np.ndarray], np.ndarray]


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


SHAPES: Dict[str, ShapeFn] = {
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
def shape_fill(shape: str) -> float:
    """Fraction of its box that a silhouette covers (sizes objects by area)."""
    grid = np.linspace(-1, 1, 201)
    u, v = np.meshgrid(grid, grid)
    return float(SHAPES[shape](u, v).mean())
