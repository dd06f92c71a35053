"""Benchmark: sparse random walk vs the official dense ``propagate_to_edge``.

For one image (default 375x500, the stride-4 grid 94x125 = 11,750 nodes) with
random CAMs and a random boundary map, the pseudo label is computed

(a) reference: :func:`dense_random_walk_reference`, the official algorithm (a
    dense N x N transition matrix squared eight times);
(b) ours: :func:`propagate_cams`, 256 sparse-matrix x K-map products.

Each runs in its own process, so that the peak resident memory (``VmHWM``) of
one does not hide the other's; the increase over the process's memory before
the walk (torch and the inputs) is reported too. Labels go through the same
:func:`rw_to_label` (upsample, global max, bg 0.2, argmax). The two walks are
equal in exact arithmetic; in fp32 a few near-tied pixels may differ.
The last line printed is ``speedup: <ref_time / ours>``.

Usage::

    python benchmarks/random_walk.py [--size 375 500] [--classes 3]
        [--device cpu|cuda] [--skip-dense]
"""
import argparse
import json
import os.path as osp
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from qaclims_mm.refine.random_walk import (  # noqa: E402
    propagate_cams, rw_to_label)
from qaclims_mm.testing import dense_random_walk_reference  # noqa: E402


def make_inputs(height: int, width: int, classes: int, seed: int = 0):
    """Smooth random CAMs ``[K, h, w]`` in [0, 1] and an edge map ``[h, w]``.

    The edge map is high on the boundaries of a random coarse partition of
    the grid (as IRN's boundaries are), plus low noise.
    """
    h, w = -(-height // 4), -(-width // 4)
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(1, classes, 5, 6, generator=g)**3
    cams = F.interpolate(coarse, size=(h, w), mode='bicubic',
                         align_corners=False)[0].clamp(min=0)
    cams = cams / (cams.amax(dim=(1, 2), keepdim=True) + 1e-5)
    regions = F.interpolate(torch.rand(1, 1, 7, 9, generator=g), size=(h, w),
                            mode='nearest')[0, 0]
    boundary = ((regions[1:, :] != regions[:-1, :])[:, :-1]
                | (regions[:, 1:] != regions[:, :-1])[:-1, :]).float()
    edge = 0.05 * torch.rand(h, w, generator=g)
    edge[:-1, :-1] = torch.maximum(edge[:-1, :-1], 0.95 * boundary)
    return cams.contiguous(), edge


def memory_mb() -> dict:
    """Current and peak resident memory of this process (Linux)."""
    out = {}
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith(('VmRSS', 'VmHWM')):
                key, value = line.split(':')
                out[key] = int(value.split()[0]) / 1024
    return out


def worker(args: argparse.Namespace) -> None:
    """Run one method, save its maps, print a JSON line of measurements."""
    cams, edge = make_inputs(*args.size, args.classes, args.seed)
    cams, edge = cams.to(args.device), edge.to(args.device)
    walk = (dense_random_walk_reference
            if args.worker == 'dense' else propagate_cams)
    if args.device.startswith('cuda'):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    before = memory_mb()['VmRSS']
    start = time.perf_counter()
    rw = walk(cams, edge, radius=5, beta=10, exp_times=8)
    if args.device.startswith('cuda'):
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    mem = memory_mb()
    result = dict(seconds=seconds, peak_rss_mb=mem['VmHWM'],
                  extra_rss_mb=mem['VmHWM'] - before)
    if args.device.startswith('cuda'):
        result['cuda_peak_mb'] = torch.cuda.max_memory_allocated() / 2**20
    np.save(args.out, rw.cpu().numpy())
    print(json.dumps(result))


def run_worker(method: str, args: argparse.Namespace, out: str) -> dict:
    cmd = [sys.executable, osp.abspath(__file__), '--worker', method,
           '--out', out, '--size', *map(str, args.size), '--classes',
           str(args.classes), '--seed', str(args.seed), '--device',
           args.device]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f'{method} worker failed:\n{proc.stderr[-3000:]}')
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--size', type=int, nargs=2, default=(375, 500),
                        metavar=('H', 'W'),
                        help='image size (default 375 500)')
    parser.add_argument('--classes', type=int, default=3)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--skip-dense', action='store_true',
                        help='time ours only (no comparison)')
    parser.add_argument('--worker', choices=['dense', 'sparse'],
                        help=argparse.SUPPRESS)
    parser.add_argument('--out', help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args)

    height, width = args.size
    h, w = -(-height // 4), -(-width // 4)
    print(f'image {height}x{width}, grid {h}x{w} = {h * w} nodes, '
          f'{args.classes} maps, device {args.device}, '
          f'torch threads {torch.get_num_threads()}')
    with tempfile.TemporaryDirectory() as tmp:
        ours = run_worker('sparse', args, osp.join(tmp, 'sparse.npy'))
        print(f'ours  (sparse, 256 products): {ours["seconds"]:.3f} s, '
              f'peak RSS {ours["peak_rss_mb"]:.0f} MB '
              f'(+{ours["extra_rss_mb"]:.0f} MB for the walk)')
        if args.skip_dense:
            return
        ref = run_worker('dense', args, osp.join(tmp, 'dense.npy'))
        print(f'dense (official, 8 squarings): {ref["seconds"]:.3f} s, '
              f'peak RSS {ref["peak_rss_mb"]:.0f} MB '
              f'(+{ref["extra_rss_mb"]:.0f} MB for the walk)')
        rw_ours = np.load(osp.join(tmp, 'sparse.npy'))
        rw_ref = np.load(osp.join(tmp, 'dense.npy'))
    keys = np.arange(args.classes)
    lab_ours = rw_to_label(torch.from_numpy(rw_ours), keys, (height, width))
    lab_ref = rw_to_label(torch.from_numpy(rw_ref), keys, (height, width))
    differ = int((lab_ours != lab_ref).sum())
    rel = np.abs(rw_ours - rw_ref).max() / max(np.abs(rw_ref).max(), 1e-12)
    print(f'memory ratio (peak RSS ours / dense): '
          f'{ours["peak_rss_mb"] / ref["peak_rss_mb"]:.3f}; walk-only '
          f'{ours["extra_rss_mb"] / max(ref["extra_rss_mb"], 1e-9):.4f}')
    print(f'max relative difference of the maps: {rel:.2e} (fp32 rounding: '
          f'256 sparse steps vs 8 dense squarings sum in different orders)')
    print(f'labels: {differ} of {lab_ref.size} pixels differ '
          f'({100 * (1 - differ / lab_ref.size):.4f} % agree)')
    print(f'speedup: {ref["seconds"] / ours["seconds"]:.1f}')


if __name__ == '__main__':
    main()
