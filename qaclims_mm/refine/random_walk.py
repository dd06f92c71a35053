"""Random-walk propagation of CAMs on IRNet boundaries (spec §6.5).

The official ``propagate_to_edge`` (IRN ``misc/indexing.py``) builds, for the
``N = h * w`` nodes of the stride-4 grid, a dense ``N x N`` affinity matrix
``A`` (``A[i, j] = 1 - max edge on the path i -> j`` for pairs closer than
``radius``, 1 on the diagonal, 0 elsewhere), the transition matrix
``T = A**beta / colsum(A**beta)`` and ``T**(2**exp_times)`` by repeated
squaring, and returns ``x @ T**256`` for the CAMs ``x = cam * (1 - edge)``.
For a 500x375 image that is an 11,750² matrix squared eight times.

Since ``A`` is symmetric, one step ``x @ T`` is ``(S x) / deg`` with ``S`` the
sparse ``A**beta`` (69 non-zeros per row at radius 5) and ``deg`` its row sums.
:func:`propagate_cams` applies that step ``2**exp_times`` times with a sparse
CSR matrix (``torch.sparse``; cuSPARSE on GPU), batched over the K maps: the
same result in exact arithmetic, with memory linear in ``N`` and about
``256 * 69 * N * K`` multiply-adds instead of ``8 * 2 * N**3``.
:func:`qaclims_mm.testing.dense_random_walk_reference` is the official dense
algorithm, kept for tests and ``benchmarks/random_walk.py``. In fp32 the two
orders of summation differ by rounding only; labels agree except at a handful
of near-tied pixels.
"""
import contextlib
import warnings
from typing import Iterator, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
import torch
import torch.nn.functional as F

from ..structures.path_index import PathIndex

Device = Union[str, torch.device, None]


def _check_inputs(cams: torch.Tensor, edge: torch.Tensor) -> None:
    if cams.dim() != 3:
        raise ValueError(f'cams must be [K, h, w], got {tuple(cams.shape)}')
    if edge.dim() != 2 or tuple(edge.shape) != tuple(cams.shape[-2:]):
        raise ValueError(f'edge must be [h, w] = {tuple(cams.shape[-2:])} '
                         f'(the CAM grid), got {tuple(edge.shape)}')


@contextlib.contextmanager
def _cpu_threads(device: torch.device,
                 num_threads: Optional[int]) -> Iterator[None]:
    """Temporarily set torch's intra-op threads for CPU work."""
    if device.type != 'cpu' or not num_threads:
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(num_threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def transition_operator(edge: torch.Tensor,
                        radius: int = 5,
                        beta: float = 10.) -> torch.Tensor:
    """The one-step random-walk operator as a sparse CSR ``[N, N]`` matrix.

    Row ``i`` holds ``A[i, j]**beta / deg[i]`` for ``j`` within ``radius`` of
    ``i`` (``i`` itself included, with affinity 1), so that ``op @ x`` equals
    the official ``x @ T`` for a column vector ``x``.

    Args:
        edge (torch.Tensor): ``[h, w]`` boundary probabilities in [0, 1].
        radius (int): Neighbourhood radius. Defaults to 5.
        beta (float): Affinity exponent. Defaults to 10.

    Returns:
        torch.Tensor: Sparse CSR ``[h * w, h * w]`` on ``edge``'s device.
    """
    h, w = edge.shape
    n = h * w
    path_index = PathIndex(radius)
    aff = path_index.neighbour_affinity(edge).pow(beta)  # [D, h, w]
    src, dst, d_idx = path_index.in_bounds_pairs(h, w)
    src_t = torch.as_tensor(src, device=edge.device)
    dst_t = torch.as_tensor(dst, device=edge.device)
    vals = aff.reshape(len(path_index.directions), n)[
        torch.as_tensor(d_idx, device=edge.device), src_t]
    diag = torch.arange(n, device=edge.device)
    rows = torch.cat([src_t, dst_t, diag])
    cols = torch.cat([dst_t, src_t, diag])
    weights = torch.cat([vals, vals, torch.ones_like(diag, dtype=vals.dtype)])
    deg = torch.zeros(n, dtype=vals.dtype, device=edge.device)
    deg.index_add_(0, rows, weights)
    weights = weights / deg[rows]
    op = torch.sparse_coo_tensor(
        torch.stack([rows, cols]), weights, (n, n),
        check_invariants=False).coalesce()
    with warnings.catch_warnings():  # "sparse CSR support is in beta"
        warnings.simplefilter('ignore', UserWarning)
        return op.to_sparse_csr()


def propagate_cams(cams: torch.Tensor,
                   edge: torch.Tensor,
                   radius: int = 5,
                   beta: float = 10.,
                   exp_times: int = 8,
                   chunk_size: Optional[int] = None,
                   cpu_threads: Optional[int] = 1) -> torch.Tensor:
    """Propagate CAMs by a ``2**exp_times``-step random walk (sparse).

    Computes the official ``propagate_to_edge``: the CAMs are multiplied by
    ``1 - edge``, then walked ``2**exp_times`` steps on the boundary-aware
    transition matrix, on ``cams``'s device and in its dtype.

    Args:
        cams (torch.Tensor): ``[K, h, w]`` stride-4 CAMs.
        edge (torch.Tensor): ``[h, w]`` boundary map of the same grid.
        radius (int): Neighbourhood radius. Defaults to 5.
        beta (float): Affinity exponent. Defaults to 10.
        exp_times (int): ``log2`` of the number of steps. Defaults to 8.
        chunk_size (int, optional): Maps walked together (bounds memory for
            images with many classes). Defaults to all K at once.
        cpu_threads (int, optional): Intra-op threads for the walk on CPU.
            The steps are small sparse products whose cost is dominated by
            thread start-up: one thread is the fastest for VOC-sized grids,
            by 10x and more on a busy machine. ``None`` keeps torch's
            setting. Defaults to 1 (restored afterwards).

    Returns:
        torch.Tensor: ``[K, h, w]`` propagated maps.
    """
    _check_inputs(cams, edge)
    k, h, w = cams.shape
    edge = edge.to(device=cams.device, dtype=cams.dtype)
    if k == 0:
        return cams.clone()
    with _cpu_threads(cams.device, cpu_threads):
        op = transition_operator(edge, radius, beta)
        x = (cams * (1 - edge)).reshape(k, h * w).t()  # [N, K]
        chunk = chunk_size or k
        outs = []
        for start in range(0, k, chunk):
            y = x[:, start:start + chunk].contiguous()
            for _ in range(2**exp_times):
                y = op @ y
            outs.append(y)
        return torch.cat(outs, 1).t().reshape(k, h, w)


def rw_to_label(rw: torch.Tensor,
                keys: Sequence[int],
                image_hw: Tuple[int, int],
                bg_thr: float = 0.2,
                stride: int = 4) -> np.ndarray:
    """Random-walk maps to a label map, as the official script does.

    Upsample ``stride``× (bilinear), crop to the image, divide by the global
    maximum over all classes, prepend a background plane of ``bg_thr``, take
    the argmax and map through ``keys + 1`` (0 is background).

    Args:
        rw (torch.Tensor): ``[K, h, w]`` propagated maps.
        keys (Sequence[int]): 0-based class index of each map.
        image_hw (tuple[int, int]): ``(H, W)`` of the image.
        bg_thr (float): Background score. Defaults to 0.2
            (``sem_seg_bg_thres``).
        stride (int): The CAM stride. Defaults to 4.

    Returns:
        np.ndarray: uint8 ``[H, W]`` labels. All background when there is no
        class or no activation (the official code would divide by zero).
    """
    height, width = int(image_hw[0]), int(image_hw[1])
    keys_arr = np.asarray(keys, dtype=np.int64).reshape(-1)
    if rw.shape[0] != keys_arr.size:
        raise ValueError(f'{rw.shape[0]} maps but {keys_arr.size} keys')
    if rw.shape[-2] * stride < height or rw.shape[-1] * stride < width:
        raise ValueError(f'maps of {tuple(rw.shape[-2:])} at stride {stride} '
                         f'do not cover an image of {(height, width)}')
    label = np.zeros((height, width), dtype=np.uint8)
    if keys_arr.size == 0:
        return label
    up = F.interpolate(rw[None].float(), scale_factor=stride, mode='bilinear',
                       align_corners=False)[0, :, :height, :width]
    peak = up.max()
    if not peak > 0:
        return label
    up = up / peak
    scores = F.pad(up, (0, 0, 0, 0, 1, 0), value=bg_thr)
    pred = scores.argmax(dim=0).cpu().numpy()
    lut = np.concatenate([[0], keys_arr + 1]).astype(np.uint8)
    return lut[pred]


def rw_pseudo_label(cam_entry: Mapping[str, np.ndarray],
                    edge: Union[np.ndarray, torch.Tensor],
                    image_hw: Tuple[int, int],
                    bg_thr: float = 0.2,
                    radius: int = 5,
                    beta: float = 10.,
                    exp_times: int = 8,
                    device: Device = None) -> np.ndarray:
    """The pseudo label of one image from its CAM file entry and edge map.

    Args:
        cam_entry (Mapping): A loaded CAM file (``keys`` ``[K]`` and ``cam``
            ``[K, h, w]``, see :mod:`qaclims_mm.utils.cam_file`).
        edge (np.ndarray | torch.Tensor): ``[h, w]`` IRNet boundary map.
        image_hw (tuple[int, int]): ``(H, W)`` of the image.
        bg_thr (float): Background score. Defaults to 0.2.
        radius (int): Random-walk radius. Defaults to 5.
        beta (float): Affinity exponent. Defaults to 10.
        exp_times (int): ``log2`` of the number of steps. Defaults to 8.
        device (str | torch.device, optional): Where to walk. Defaults to
            ``edge``'s device (CPU for numpy input).

    Returns:
        np.ndarray: uint8 ``[H, W]`` labels (0 background, ``key + 1``).
    """
    edge_t = torch.as_tensor(edge)
    device = device if device is not None else edge_t.device
    edge_t = edge_t.to(device=device, dtype=torch.float32)
    cams = torch.as_tensor(np.asarray(cam_entry['cam']), dtype=torch.float32,
                           device=device)
    if cams.dim() == 3 and cams.shape[0] == 0:
        cams = cams.new_zeros((0, ) + tuple(edge_t.shape))
    rw = propagate_cams(cams, edge_t, radius=radius, beta=beta,
                        exp_times=exp_times)
    return rw_to_label(rw, cam_entry['keys'], image_hw, bg_thr)
