"""Textured background scenes, one per context of :data:`CONTEXTS`.

Every scene is a function ``(rng, yy, xx) -> [H, W, 3] float32`` of the
image's generator and pixel grid; :data:`BACKGROUNDS` maps a context name to
its scene.
"""
from typing import Sequence, Tuple

import cv2
import numpy as np


def _smooth_noise(rng: np.random.Generator, h: int, w: int,
                  cells: Tuple[int, int]) -> np.ndarray:
    """Low-frequency noise (about unit variance), ``cells`` = (rows, cols)."""
    grid = rng.standard_normal((cells[0] + 1, cells[1] + 1)).astype(np.float32)
    field = cv2.resize(grid, (w, h), interpolation=cv2.INTER_CUBIC)
    return field / (field.std() + 1e-6)


def jitter(rng: np.random.Generator, rgb: Sequence[float],
           amount: float) -> np.ndarray:
    """``rgb`` with a uniform offset in ``[-amount, amount]`` per channel.

    Args:
        rng (np.random.Generator): The image's generator (3 draws).
        rgb (Sequence[float]): Base colour.
        amount (float): Largest offset per channel.

    Returns:
        np.ndarray: float32 ``[3]`` colour (not clipped).
    """
    offset = rng.uniform(-amount, amount, 3).astype(np.float32)
    return np.asarray(rgb, np.float32) + offset


def _mix(c0: np.ndarray, c1: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Per-pixel blend ``c0 * (1 - t) + c1 * t`` -> [H, W, 3]."""
    t = t[..., None]
    return c0 * (1 - t) + c1 * t


def _bg_sky(rng: np.random.Generator, yy: np.ndarray,
            xx: np.ndarray) -> np.ndarray:
    h, w = yy.shape
    img = _mix(jitter(rng, (70, 130, 215), 20), jitter(rng, (175, 210, 240),
                                                           15), yy / h)
    cover = rng.uniform(0.3, 1.0)
    clouds = np.clip(_smooth_noise(rng, h, w, (3, 5)) * 0.7 - 1 + cover, 0, 1)
    return _mix(img, jitter(rng, (245, 245, 250), 8), clouds)


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
    img = _mix(jitter(rng, (60, 130, 190), 15), jitter(rng, (20, 65, 130),
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
    base = jitter(rng, (70, 135, 45), 20)
    patches = _smooth_noise(rng, h, w, (3, 4))
    img = _mix(np.broadcast_to(base, (h, w, 3)), jitter(rng, (150, 160, 60),
                                                          15),
               np.clip(patches * 0.4, 0, 1))
    blades = cv2.blur(rng.standard_normal((h, w)).astype(np.float32), (1, 5))
    img += (35 * blades)[..., None] * np.float32([0.6, 1.0, 0.4])
    return _sky_band(rng, img, yy, xx, 0.35)


def _bg_road(rng: np.random.Generator, yy: np.ndarray,
             xx: np.ndarray) -> np.ndarray:
    h, w = yy.shape
    img = np.broadcast_to(jitter(rng, (88, 88, 92), 12), (h, w, 3)).copy()
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
        img[:kerb] = jitter(rng, (165, 162, 155), 10) - 12 * tiles[..., None]
    return img


def _bg_rail(rng: np.random.Generator, yy: np.ndarray,
             xx: np.ndarray) -> np.ndarray:
    h, w = yy.shape
    img = np.broadcast_to(jitter(rng, (125, 115, 100), 12), (h, w, 3)).copy()
    img += rng.normal(0, 22, (h, w, 1)).astype(np.float32)  # ballast speckle
    centre = rng.uniform(0.45, 0.8) * h
    gauge = rng.uniform(0.14, 0.22) * h
    d = yy - centre - rng.uniform(-0.1, 0.1) * (xx - w / 2)
    spacing = max(4.0, rng.uniform(0.06, 0.1) * w)
    sleepers = (np.abs(d) <= 0.85 * gauge) & (
        (xx / spacing + rng.uniform(0, 1)) % 1 < 0.35)
    img[sleepers] = jitter(rng, (95, 65, 45), 10)
    rails = np.abs(np.abs(d) - gauge / 2) <= max(1.0, 0.015 * h)
    img[rails] = (72, 72, 78)
    img[rails & (np.abs(d) < gauge / 2)] = (175, 175, 182)  # polished edge
    return _sky_band(rng, img, yy, xx, 0.3)


_WALL_COLOURS = ((225, 215, 190), (210, 210, 205), (235, 225, 160),
                 (200, 220, 195), (225, 195, 185))


def _bg_indoor(rng: np.random.Generator, yy: np.ndarray,
               xx: np.ndarray) -> np.ndarray:
    h, w = yy.shape
    wall = jitter(rng, _WALL_COLOURS[rng.integers(len(_WALL_COLOURS))], 10)
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
        floor = np.broadcast_to(jitter(rng, (150, 105, 65), 15),
                                floor_y.shape + (3, )).copy()
        floor += (14 * grain - 40 * seams)[..., None]
    else:  # tiles
        cell = max(4, w // 10)
        check = (floor_x // cell + floor_y // cell) % 2
        floor = _mix(jitter(rng, (190, 190, 185), 10),
                     jitter(rng, (120, 120, 118), 10), check)
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


#: Context name -> scene function ``(rng, yy, xx) -> [H, W, 3] float32``.
BACKGROUNDS = {
    'sky': _bg_sky,
    'water': _bg_water,
    'grass': _bg_grass,
    'road': _bg_road,
    'rail': _bg_rail,
    'indoor': _bg_indoor,
    'plain': _bg_plain,
}
