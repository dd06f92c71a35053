"""PathIndex against a brute-force enumeration of IRN's pairs and paths."""
import numpy as np
import pytest
import torch

from qaclims_mm.structures.path_index import (PathIndex, direction_paths,
                                          search_directions)


def brute_directions(radius):
    """IRN's half disc, enumerated the slow way, with each direction's path."""
    dirs = [(0, x) for x in range(1, radius)]
    dirs += [(y, x) for y in range(1, radius)
             for x in range(-radius + 1, radius) if x * x + y * y < radius**2]
    paths = []
    for dy, dx in dirs:
        pts = []
        for y in range(min(0, dy), max(0, dy) + 1):
            for x in range(min(0, dx), max(0, dx) + 1):
                # distance from (y, x) to the line through 0 and (dy, dx)
                if (dy * x - dx * y)**2 / (dy * dy + dx * dx) < 1:
                    pts.append((y, x))
        pts.sort(key=lambda p: -abs(p[0]) - abs(p[1]))
        paths.append(pts)
    # IRN groups directions by path length (stable)
    order = sorted(range(len(dirs)), key=lambda i: len(paths[i]))
    return [dirs[i] for i in order], [paths[i] for i in order]


@pytest.mark.parametrize('radius', [2, 3, 5, 10])
def test_directions_and_paths_match_brute_force(radius):
    dirs, paths = brute_directions(radius)
    assert search_directions(radius).tolist() == [list(d) for d in dirs]
    got_paths, lengths = direction_paths(radius)
    assert lengths.tolist() == [len(p) for p in paths]
    for d, pts in enumerate(paths):
        got = [tuple(p) for p in got_paths[d, :lengths[d]].tolist()]
        assert got[0] == dirs[d]  # destination first
        assert sorted(got) == sorted(pts)
        # padding repeats the destination, so a max over the path is unchanged
        assert (got_paths[d, lengths[d]:] == got_paths[d, 0]).all()


def test_known_counts_and_small_case():
    assert len(search_directions(5)) == 34
    assert len(search_directions(10)) == 152
    assert sorted(map(tuple, search_directions(2).tolist())) == [
        (0, 1), (1, -1), (1, 0), (1, 1)]
    paths, lengths = direction_paths(3)
    # (2, 2): the box corners (0, 2) and (2, 0) are 2**0.5 px off the line
    d = search_directions(3).tolist().index([2, 2])
    got = {tuple(p) for p in paths[d, :lengths[d]].tolist()}
    assert got == {(0, 0), (0, 1), (1, 0), (1, 1), (1, 2), (2, 1), (2, 2)}


@pytest.mark.parametrize('hw', [(6, 7), (9, 12)])
def test_in_bounds_pairs_are_all_pairs_once(hw):
    h, w = hw
    radius = 3
    pi = PathIndex(radius)
    src, dst, d_idx = pi.in_bounds_pairs(h, w)
    got = {(int(s), int(t)) for s, t in zip(src, dst)}
    assert len(got) == len(src)  # no duplicate
    expect = set()
    for y0 in range(h):
        for x0 in range(w):
            for y1 in range(h):
                for x1 in range(w):
                    a, b = y0 * w + x0, y1 * w + x1
                    if a < b and (y1 - y0)**2 + (x1 - x0)**2 < radius**2:
                        expect.add((a, b))
    assert got == expect
    dirs = pi.directions[d_idx]
    assert np.array_equal(dst - src, dirs[:, 0] * w + dirs[:, 1])


def test_pair_indices_irn_cropped_layout():
    h, w, radius = 8, 11, 3
    pi = PathIndex(radius)
    src, dst = pi.pair_indices(h, w)
    rf = radius - 1
    expect_src = [y * w + x for y in range(h - rf) for x in range(rf, w - rf)]
    assert src.tolist() == expect_src
    for d, (dy, dx) in enumerate(pi.directions.tolist()):
        assert dst[d].tolist() == [s + dy * w + dx for s in expect_src]
    with pytest.raises(ValueError, match='too small'):
        pi.pair_indices(2, 11)


def brute_affinity(edge, radius, pad):
    """[D, h, w]: 1 - max edge on each path; partners outside -> 0."""
    dirs, paths = brute_directions(radius)
    h, w = edge.shape
    out = np.zeros((len(dirs), h, w), np.float32)
    for d, pts in enumerate(paths):
        for y in range(h):
            for x in range(w):
                vals = []
                for py, px in pts:
                    yy, xx = y + py, x + px
                    inside = 0 <= yy < h and 0 <= xx < w
                    vals.append(edge[yy, xx] if inside else pad)
                out[d, y, x] = 1 - max(vals)
    return out


def test_neighbour_affinity_matches_brute_force():
    rng = np.random.default_rng(0)
    edge = rng.random((7, 9)).astype(np.float32)
    pi = PathIndex(3)
    got = pi.neighbour_affinity(torch.from_numpy(edge)).numpy()
    np.testing.assert_allclose(got, brute_affinity(edge, 3, 1.0), atol=1e-7)
    # batched input, and the training layout is its crop
    batch = torch.from_numpy(np.stack([edge, edge[::-1].copy()]))
    full = pi.neighbour_affinity(batch)
    np.testing.assert_allclose(full[1].numpy(),
                               brute_affinity(edge[::-1], 3, 1.0), atol=1e-7)
    train = pi.edge_to_affinity(batch)  # [2, D, M]
    np.testing.assert_allclose(
        train.numpy(), full[:, :, :7 - 2, 2:9 - 2].reshape(2, 12, -1),
        atol=1e-7)


def test_displacement_layout():
    h, w = 6, 8
    pi = PathIndex(2)
    dp = torch.randn(1, 2, h, w)
    disp = pi.to_displacement(dp)  # [1, 2, D, M]
    src, dst = pi.pair_indices(h, w)
    flat = dp.view(1, 2, -1)
    for d in range(pi.num_directions):
        torch.testing.assert_close(disp[0, :, d],
                                   flat[0][:, src] - flat[0][:, dst[d]])
    tgt = pi.displacement_targets()
    assert tgt.shape == (1, 2, pi.num_directions, 1)
    assert tgt[0, :, :, 0].T.tolist() == pi.directions.tolist()
