"""Pixel pairs within a radius and the straight paths between them (IRN).

IRNet (spec §6.4, §6.5) relates every pixel of a stride-4 grid to its
neighbours within a ``radius``. Each unordered pair is counted once, through a
*search direction* ``(dy, dx)`` taken from a half disc::

    dy == 0 and 0 < dx < radius,   or
    0 < dy < radius, |dx| < radius and dy**2 + dx**2 < radius**2

(radius 5: 34 directions; radius 10: 152). The *path* of a direction is the set
of grid points ``(y, x)`` of the bounding box of ``(0, 0)`` and ``(dy, dx)``
whose distance to the line through them is below one pixel; it contains both
ends. The affinity of a pair is ``1 - max(edge)`` over its path.

Directions are ordered as IRN orders them: grouped by path length (ascending),
in enumeration order within a group, so tensors laid out ``[..., D, M]`` line
up with the official ones. Pairs follow IRN's layout too: sources are the
pixels of the cropped grid ``rows [0, h - rf)``, ``cols [rf, w - rf)`` with
``rf = radius - 1``, so that every destination ``src + (dy, dx)`` lies inside
the grid and every direction has the same ``M`` pairs (the training layout).
:meth:`PathIndex.neighbour_affinity` pads the edge map with 1 instead, which
gives every pixel all its directions (affinity 0 where the partner is outside),
the random-walk layout.

Only numpy and torch are needed.
"""
from collections import OrderedDict
from functools import lru_cache
from typing import Callable, List, Tuple

import numpy as np
import torch
import torch.nn.functional as F


def _check_radius(radius: int) -> int:
    if int(radius) != radius or radius < 2:
        raise ValueError(f'radius must be an integer >= 2, got {radius!r}')
    return int(radius)


@lru_cache(maxsize=None)
def _directions_and_paths(radius: int) -> Tuple[np.ndarray, np.ndarray,
                                                np.ndarray]:
    """Directions ``[D, 2]``, padded paths ``[D, L, 2]``, lengths ``[D]``."""
    r = radius
    # IRN's enumeration: (0, 1..r-1), then rows dy = 1..r-1, dx ascending
    dy, dx = np.meshgrid(np.arange(r), np.arange(-r + 1, r), indexing='ij')
    dy, dx = dy.reshape(-1), dx.reshape(-1)
    keep = ((dy == 0) & (dx > 0)) | ((dy > 0) & (dy * dy + dx * dx < r * r))
    dirs = np.stack([dy[keep], dx[keep]], 1).astype(np.int64)  # [D, 2]

    # candidate path points: the y-major, x-ascending grid covering every box
    cy, cx = np.meshgrid(np.arange(r), np.arange(-r + 1, r), indexing='ij')
    cy, cx = cy.reshape(-1), cx.reshape(-1)  # [P]
    ddy, ddx = dirs[:, :1], dirs[:, 1:]  # [D, 1]
    in_box = ((cy >= 0) & (cy <= ddy) & (cx >= np.minimum(0, ddx))
              & (cx <= np.maximum(0, ddx)))
    # squared distance to the line, times the squared length (integers)
    cross = (ddy * cx - ddx * cy)**2
    on_path = in_box & (cross < ddy * ddy + ddx * ddx)  # [D, P]
    lengths = on_path.sum(1)

    # within a path: farthest point (the destination) first, stable
    key = np.where(on_path, -(np.abs(cy) + np.abs(cx)), np.iinfo(np.int64).max)
    order = np.argsort(key, axis=1, kind='stable')[:, :lengths.max()]
    paths = np.stack([cy[order], cx[order]], -1)  # [D, L, 2]
    pad = np.arange(lengths.max())[None] >= lengths[:, None]  # [D, L]
    paths = np.where(pad[..., None], paths[:, :1], paths)  # repeat the dst

    by_length = np.argsort(lengths, kind='stable')
    return dirs[by_length], paths[by_length], lengths[by_length]


def search_directions(radius: int) -> np.ndarray:
    """The half-disc search directions ``[D, 2]`` (``dy, dx``), IRN order."""
    return _directions_and_paths(_check_radius(radius))[0].copy()


def direction_paths(radius: int) -> Tuple[np.ndarray, np.ndarray]:
    """Path points of every direction.

    Returns:
        tuple: ``paths`` int64 ``[D, L, 2]`` (``dy, dx`` offsets from the
        source; the destination first, short paths padded by repeating it)
        and ``lengths`` int64 ``[D]``.
    """
    _, paths, lengths = _directions_and_paths(_check_radius(radius))
    return paths.copy(), lengths.copy()


class PathIndex:
    """Flattened pair and path indices on ``h x w`` grids for one radius.

    Index tensors are cached per grid size and device (the ``cache_size``
    most recent ones), so a training loop at a fixed crop builds them once.

    Args:
        radius (int): Pairs closer than ``radius`` (Euclidean) are related.
            IRN uses 10 for training and 5 for the random walk.
        cache_size (int): Grid sizes whose index tensors are kept. Defaults
            to 4.
    """

    def __init__(self, radius: int, cache_size: int = 4) -> None:
        self.radius = _check_radius(radius)
        self.cache_size = cache_size
        self._cache: OrderedDict = OrderedDict()
        self.radius_floor = self.radius - 1
        self.directions, self.paths, self.lengths = _directions_and_paths(
            self.radius)
        # contiguous runs of directions with the same path length
        starts = np.flatnonzero(np.diff(self.lengths, prepend=-1))
        ends = np.append(starts[1:], len(self.lengths))
        self.length_groups: List[Tuple[int, int, int]] = [
            (int(s), int(e), int(self.lengths[s]))
            for s, e in zip(starts, ends)
        ]

    @property
    def num_directions(self) -> int:
        """``D``, the number of search directions."""
        return len(self.directions)

    def _cropped_hw(self, h: int, w: int) -> Tuple[int, int]:
        rf = self.radius_floor
        ch, cw = h - rf, w - 2 * rf
        if ch <= 0 or cw <= 0:
            raise ValueError(f'a {h}x{w} grid is too small for radius '
                             f'{self.radius} (needs h >= {rf + 1}, '
                             f'w >= {2 * rf + 1})')
        return ch, cw

    def src_indices(self, h: int, w: int) -> np.ndarray:
        """Flat indices ``[M]`` of the sources (IRN's cropped grid)."""
        ch, cw = self._cropped_hw(h, w)
        rf = self.radius_floor
        ys, xs = np.meshgrid(np.arange(ch), np.arange(rf, rf + cw),
                             indexing='ij')
        return (ys * w + xs).reshape(-1)

    def pair_indices(self, h: int, w: int) -> Tuple[np.ndarray, np.ndarray]:
        """Sources ``[M]`` and destinations ``[D, M]`` (flat, row-major)."""
        src = self.src_indices(h, w)
        step = self.directions[:, 0] * w + self.directions[:, 1]
        return src, src[None] + step[:, None]

    def path_indices(self, h: int, w: int) -> List[np.ndarray]:
        """Flat indices of the path points, one array per length group.

        Returns:
            list[np.ndarray]: For each ``(start, end, L)`` of
            :attr:`length_groups`, int64 ``[end - start, L, M]``.
        """
        src = self.src_indices(h, w)
        out = []
        for start, end, length in self.length_groups:
            p = self.paths[start:end, :length]  # [n, L, 2]
            step = p[..., 0] * w + p[..., 1]  # [n, L]
            out.append(src[None, None] + step[..., None])
        return out

    def in_bounds_pairs(self, h: int,
                        w: int) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every pair of an ``h x w`` grid once (both ends inside).

        Returns:
            tuple: ``src`` ``[P]``, ``dst`` ``[P]`` (flat indices) and the
            direction index of each pair ``[P]``, ordered by direction, then
            source.
        """
        ys, xs = np.meshgrid(np.arange(h), np.arange(w), indexing='ij')
        ys, xs = ys.reshape(1, -1), xs.reshape(1, -1)
        ty = ys + self.directions[:, :1]
        tx = xs + self.directions[:, 1:]
        valid = (ty < h) & (tx >= 0) & (tx < w)  # [D, hw]
        d_idx, s_idx = np.nonzero(valid)
        src = (ys * w + xs)[0, s_idx]
        dst = (ty * w + tx)[d_idx, s_idx]
        return src, dst, d_idx

    # -------------------------------------------------------------- tensors
    def _cached(self, key: tuple, build: Callable):
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        value = build()
        if self.cache_size > 0:
            self._cache[key] = value
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        return value

    def _path_tensors(self, h: int, w: int,
                      device: torch.device) -> List[torch.Tensor]:
        return self._cached(
            ('path', h, w, str(device)), lambda: [
                torch.as_tensor(i, device=device)
                for i in self.path_indices(h, w)
            ])

    def _pair_tensors(self, h: int, w: int,
                      device: torch.device) -> Tuple[torch.Tensor, ...]:
        return self._cached(
            ('pair', h, w, str(device)), lambda: tuple(
                torch.as_tensor(i, device=device)
                for i in self.pair_indices(h, w)))

    def edge_to_affinity(self, edge: torch.Tensor) -> torch.Tensor:
        """Pair affinities ``1 - max(edge on the path)`` (training layout).

        Args:
            edge (torch.Tensor): ``[B, h, w]`` boundary probabilities.

        Returns:
            torch.Tensor: ``[B, D, M]`` (differentiable).
        """
        b, h, w = edge.shape
        flat = edge.reshape(b, h * w)
        affs = []
        for idx_t in self._path_tensors(h, w, edge.device):  # a few groups
            n, length, m = idx_t.shape
            path_vals = flat[:, idx_t.reshape(-1)].view(b, n, length, m)
            affs.append(1 - path_vals.max(dim=2).values)
        return torch.cat(affs, dim=1)

    def neighbour_affinity(self, edge: torch.Tensor) -> torch.Tensor:
        """Affinity of every pixel with each direction (random-walk layout).

        The edge map is padded with 1 (left, right and bottom) as in IRN's
        ``propagate_to_edge``, so a partner outside the grid gets affinity 0.

        Args:
            edge (torch.Tensor): ``[h, w]`` or ``[B, h, w]``.

        Returns:
            torch.Tensor: ``[D, h, w]`` (or ``[B, D, h, w]``): entry
            ``[d, y, x]`` is the affinity of ``(y, x)`` and
            ``(y + dy_d, x + dx_d)``.
        """
        squeeze = edge.dim() == 2
        edge3 = edge[None] if squeeze else edge
        b, h, w = edge3.shape
        rf = self.radius_floor
        padded = F.pad(edge3, (rf, rf, 0, rf), mode='constant', value=1.0)
        aff = self.edge_to_affinity(padded).view(b, -1, h, w)
        return aff[0] if squeeze else aff

    def to_displacement(self, dp: torch.Tensor) -> torch.Tensor:
        """``dp(src) - dp(dst)`` for every pair: ``[B, C, D, M]``.

        Args:
            dp (torch.Tensor): ``[B, C, h, w]`` displacement field.
        """
        b, c, h, w = dp.shape
        src_t, dst_t = self._pair_tensors(h, w, dp.device)
        flat = dp.reshape(b, c, h * w)
        return flat[..., src_t].unsqueeze(2) - flat[..., dst_t]

    def displacement_targets(self, device=None) -> torch.Tensor:
        """The directions as a ``[1, 2, D, 1]`` float tensor (``dy; dx``)."""
        return torch.as_tensor(self.directions.T, dtype=torch.float32,
                               device=device)[None, :, :, None]
