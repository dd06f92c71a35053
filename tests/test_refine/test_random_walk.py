"""Sparse random walk vs the official dense algorithm (spec §6.5)."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from qaclims_mm.refine.random_walk import (propagate_cams, rw_pseudo_label,
                                           rw_to_label, transition_operator)
from qaclims_mm.testing import dense_random_walk_reference


def brute_dense_transition(edge, radius, beta):
    """T[i, j] = A[i, j]**beta / sum_i A[i, j]**beta, from first principles."""
    h, w = edge.shape
    n = h * w
    a = np.zeros((n, n))
    for i in range(n):
        yi, xi = divmod(i, w)
        for j in range(n):
            yj, xj = divmod(j, w)
            dy, dx = yj - yi, xj - xi
            if i == j:
                a[i, j] = 1
            elif dy * dy + dx * dx < radius * radius:
                # points of the pair's bounding box within 1 px of the line
                best = 0.
                for y in range(min(yi, yj), max(yi, yj) + 1):
                    for x in range(min(xi, xj), max(xi, xj) + 1):
                        off = (dy * (x - xi) - dx * (y - yi))**2
                        if off < dy * dy + dx * dx:
                            best = max(best, edge[y, x])
                a[i, j] = 1 - best
    a = a**beta
    return a / a.sum(0, keepdims=True)


def test_transition_operator_is_transposed_official_matrix():
    rng = np.random.default_rng(1)
    edge = rng.random((5, 6))
    t = brute_dense_transition(edge, radius=3, beta=3)
    op = transition_operator(torch.from_numpy(edge), radius=3, beta=3)
    np.testing.assert_allclose(op.to_dense().numpy(), t.T, atol=1e-12)


@pytest.mark.parametrize('radius,exp_times', [(3, 3), (5, 5)])
def test_propagate_equals_dense_reference(radius, exp_times):
    g = torch.Generator().manual_seed(0)
    cams = torch.rand(3, 11, 14, generator=g, dtype=torch.float64)
    edge = torch.rand(11, 14, generator=g, dtype=torch.float64)**3
    ours = propagate_cams(cams, edge, radius, beta=10, exp_times=exp_times)
    ref = dense_random_walk_reference(cams, edge, radius, beta=10,
                                      exp_times=exp_times)
    torch.testing.assert_close(ours, ref, rtol=1e-10, atol=1e-12)
    # and the reference is x(1-edge) @ T**(2**exp_times) of the brute T
    t = brute_dense_transition(edge.numpy(), radius, 10)
    x = (cams * (1 - edge)).reshape(3, -1).numpy()
    expect = x @ np.linalg.matrix_power(t, 2**exp_times)
    np.testing.assert_allclose(ref.reshape(3, -1).numpy(), expect, rtol=1e-8,
                               atol=1e-12)


def test_propagation_stops_at_edges_and_chunks_agree():
    # a vertical wall of edge=1 splits the grid: mass cannot cross it
    edge = torch.zeros(12, 16)
    edge[:, 8] = 1.
    cams = torch.zeros(2, 12, 16)
    cams[0, 5, 2] = 1.
    cams[1] = torch.rand(12, 16)
    out = propagate_cams(cams, edge, exp_times=6)
    assert out[0, :, 9:].abs().max() == 0
    assert out[0, :, :8].min() > 0  # spread over the left half
    chunked = propagate_cams(cams, edge, exp_times=6, chunk_size=1)
    torch.testing.assert_close(out, chunked)


def test_rw_to_label_official_steps():
    rw = torch.zeros(2, 3, 4)
    rw[0, 0, 0] = 4.
    rw[1, 2, 3] = 2.
    keys = [4, 11]
    label = rw_to_label(rw, keys, (10, 13), bg_thr=0.2)
    up = F.interpolate(rw[None], scale_factor=4, mode='bilinear',
                       align_corners=False)[0, :, :10, :13]
    up = up / up.max()
    scores = torch.cat([torch.full((1, 10, 13), 0.2), up])
    expect = np.array([0, 5, 12])[scores.argmax(0).numpy()]
    assert label.dtype == np.uint8 and label.shape == (10, 13)
    np.testing.assert_array_equal(label, expect)
    assert set(np.unique(label)) == {0, 5, 12}
    # no class / no activation: background
    assert not rw_to_label(torch.zeros(0, 3, 4), [], (10, 13)).any()
    assert not rw_to_label(torch.zeros(1, 3, 4), [3], (10, 13)).any()
    with pytest.raises(ValueError, match='keys'):
        rw_to_label(rw, [1], (10, 13))


def test_rw_pseudo_label_sparse_matches_dense_labels():
    rng = np.random.default_rng(3)
    h, w = 15, 19
    cam = rng.random((2, h, w)).astype(np.float32)
    edge = (rng.random((h, w)) ** 4).astype(np.float32)
    entry = dict(keys=np.array([0, 7]), cam=cam)
    ours = rw_pseudo_label(entry, edge, (58, 75))
    ref = rw_to_label(
        dense_random_walk_reference(torch.from_numpy(cam),
                                    torch.from_numpy(edge)), entry['keys'],
        (58, 75))
    assert ours.shape == (58, 75)
    assert (ours == ref).mean() > 0.999
    assert set(np.unique(ours)) <= {0, 1, 8}
    with pytest.raises(ValueError, match='edge must be'):
        rw_pseudo_label(entry, edge[:-1], (58, 75))
    empty = dict(keys=np.zeros(0, np.int64), cam=np.zeros((0, h, w)))
    assert not rw_pseudo_label(empty, edge, (58, 75)).any()
