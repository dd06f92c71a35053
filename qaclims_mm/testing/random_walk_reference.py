"""The official dense random walk, kept to check and time the sparse one.

:func:`dense_random_walk_reference` is IRN's ``propagate_to_edge`` written
out (O(N²) memory, O(N³) time); :func:`qaclims_mm.refine.propagate_cams` is
the same walk with a sparse operator (``tests/test_refine/test_random_walk.py``
and ``benchmarks/random_walk.py`` compare the two).
"""
import numpy as np
import torch
import torch.nn.functional as F

from ..structures.path_index import PathIndex
from ..refine.random_walk import _check_inputs


def dense_random_walk_reference(cams: torch.Tensor,
                                edge: torch.Tensor,
                                radius: int = 5,
                                beta: float = 10.,
                                exp_times: int = 8) -> torch.Tensor:
    """The official dense ``propagate_to_edge`` (O(N²) memory, O(N³) time).

    Step by step as IRN: pad the edge map with 1 (``radius`` on the left,
    right and bottom), take the pair affinities of the padded grid, scatter
    them (and their transposes, and 1 on the diagonal) into a dense matrix of
    the padded grid, crop it back to the image nodes, raise to ``beta``,
    normalise columns, square ``exp_times`` times and multiply the
    ``(1 - edge)``-weighted CAMs by it.

    Args:
        cams (torch.Tensor): ``[K, h, w]``.
        edge (torch.Tensor): ``[h, w]``.
        radius (int): Defaults to 5.
        beta (float): Defaults to 10.
        exp_times (int): Defaults to 8.

    Returns:
        torch.Tensor: ``[K, h, w]``.
    """
    _check_inputs(cams, edge)
    k, h, w = cams.shape
    edge = edge.to(device=cams.device, dtype=cams.dtype)
    ver, hor = h + radius, w + 2 * radius
    path_index = PathIndex(radius)
    edge_padded = F.pad(edge, (radius, radius, 0, radius), value=1.0)
    aff = path_index.edge_to_affinity(edge_padded[None])[0]  # [D, M]
    src, dst = path_index.pair_indices(ver, hor)
    src_t = torch.as_tensor(np.broadcast_to(src, dst.shape).reshape(-1),
                            device=cams.device)
    dst_t = torch.as_tensor(dst.reshape(-1), device=cams.device)
    n_pad = ver * hor
    dense = torch.zeros(n_pad, n_pad, dtype=cams.dtype, device=cams.device)
    dense[src_t, dst_t] = aff.reshape(-1)
    dense[dst_t, src_t] = aff.reshape(-1)
    dense.fill_diagonal_(1.)
    dense = dense.view(ver, hor, ver, hor)[:-radius, radius:-radius,
                                           :-radius, radius:-radius]
    dense = dense.reshape(h * w, h * w)
    trans = dense.pow(beta)
    del dense
    trans = trans / trans.sum(dim=0, keepdim=True)
    for _ in range(exp_times):
        trans = trans @ trans
    x = (cams * (1 - edge)).reshape(k, h * w)
    return (x @ trans).reshape(k, h, w)
