"""Benchmark: one-pass CAM threshold sweep vs. re-scoring every threshold.

Writes synthetic VOC-sized CAM files (``save_cam``) and GT label PNGs to a temp
folder, then scores the 55 thresholds of the official ``--eval_cam_best`` grid
in two ways:

(a) reference: for each threshold, re-read every CAM file and GT and score it
    with :func:`cams_to_label` + a bincount confusion matrix (what the
    official evaluation does, threshold by threshold);
(b) ours: read each file once and get all thresholds from
    :func:`sweep_confusion` (:func:`evaluate_cam_dir`).

The two per-threshold confusion matrices and mIoU curves must be identical.
The last line printed is ``speedup: <ref_time / ours>``.

Usage::

    python benchmarks/cam_sweep.py [--num-images 200] [--keep-dir DIR]
"""
import argparse
import os
import os.path as osp
import shutil
import sys
import tempfile
import time

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from qaclims_mm.datasets.class_names import VOC_PALETTE  # noqa: E402
from qaclims_mm.evaluation import (cams_to_label,  # noqa: E402
                                   confusion_matrix, confusion_to_scores,
                                   default_thresholds, evaluate_cam_dir)
from qaclims_mm.utils.label_io import label_to_png_bytes  # noqa: E402
from qaclims_mm.utils.cam_file import (find_cam_file, load_cam,  # noqa: E402
                                      save_cam)
from qaclims_mm.utils.io import atomic_write_bytes  # noqa: E402

NUM_CLASSES = 20
VOC_SIZES = ((375, 500), (500, 375), (333, 500), (281, 500), (366, 500))


def smooth_map(rng: np.random.Generator, height: int,
               width: int) -> np.ndarray:
    """A smooth non-negative random map: coarse noise, bicubic upsampling."""
    coarse = rng.random((rng.integers(3, 7), rng.integers(3, 7)))
    coarse = (coarse ** 3).astype(np.float32)  # a few bright blobs
    img = Image.fromarray(coarse, mode='F').resize((width, height),
                                                   Image.BICUBIC)
    return np.maximum(np.asarray(img, dtype=np.float32), 0)


def ignore_boundaries(label: np.ndarray, width: int = 2) -> np.ndarray:
    """Set a band of ``width`` pixels around label boundaries to 255."""
    edge = np.zeros(label.shape, dtype=bool)
    edge[:, 1:] |= label[:, 1:] != label[:, :-1]
    edge[1:, :] |= label[1:, :] != label[:-1, :]
    band = edge.copy()
    for shift in range(1, width + 1):
        band[shift:, :] |= edge[:-shift, :]
        band[:-shift, :] |= edge[shift:, :]
        band[:, shift:] |= edge[:, :-shift]
        band[:, :-shift] |= edge[:, shift:]
    out = label.copy()
    out[band] = 255
    return out


def make_data(root: str, num_images: int, seed: int = 0) -> list:
    """Write ``num_images`` CAM files and GT PNGs; return the image ids."""
    rng = np.random.default_rng(seed)
    cam_dir, gt_dir = osp.join(root, 'cams'), osp.join(root, 'gt')
    os.makedirs(cam_dir, exist_ok=True)
    os.makedirs(gt_dir, exist_ok=True)
    img_ids = []
    for i in range(num_images):
        img_id = f'2007_{i:06d}'
        height, width = VOC_SIZES[rng.integers(len(VOC_SIZES))]
        num_maps = int(rng.integers(1, 4))
        keys = np.sort(rng.choice(NUM_CLASSES, num_maps, replace=False))
        high_res = np.stack(
            [smooth_map(rng, height, width) for _ in range(num_maps)])
        high_res /= high_res.reshape(num_maps, -1).max(1)[:, None,
                                                            None] + 1e-5
        cam = high_res[:, ::4, ::4]  # [K, ceil(H/4), ceil(W/4)]
        save_cam(osp.join(cam_dir, img_id + '.npz'), keys, cam, high_res)
        # GT: the CAM labels at a random threshold, perturbed, + ignore bands
        noisy = high_res + 0.5 * np.stack(
            [smooth_map(rng, height, width) for _ in range(num_maps)])
        noisy += rng.normal(0, 0.05, noisy.shape).astype(np.float32)
        gt = cams_to_label(noisy, keys, float(rng.uniform(0.15, 0.45)))
        gt = ignore_boundaries(gt)
        gt[:3], gt[-3:] = 255, 255  # an ignored border
        atomic_write_bytes(
            osp.join(gt_dir, img_id + '.png'),
            label_to_png_bytes(gt, VOC_PALETTE + [[224, 224, 192]] * 235))
        img_ids.append(img_id)
    return img_ids


def read_gt(gt_dir: str, img_id: str) -> np.ndarray:
    with Image.open(osp.join(gt_dir, img_id + '.png')) as img:
        return np.asarray(img)


def reference_sweep(cam_dir: str, gt_dir: str, img_ids: list,
                    thresholds: np.ndarray) -> np.ndarray:
    """Threshold by threshold, re-reading every file: ``[T, N, N]``."""
    n = NUM_CLASSES + 1
    conf = np.zeros((len(thresholds), n, n), dtype=np.int64)
    for t, threshold in enumerate(thresholds):
        for img_id in img_ids:
            cam = load_cam(find_cam_file(cam_dir, img_id), NUM_CLASSES,
                           fields=('high_res', ))
            gt = read_gt(gt_dir, img_id)
            pred = cams_to_label(cam['high_res'], cam['keys'], threshold)
            conf[t] += confusion_matrix(gt, pred, n)
    return conf


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--num-images', type=int, default=200)
    parser.add_argument('--keep-dir', default=None,
                        help='write the synthetic data here and keep it '
                        '(default: a temp folder, removed afterwards)')
    args = parser.parse_args(argv)

    root = args.keep_dir or tempfile.mkdtemp(prefix='qaclims_cam_sweep_')
    try:
        start = time.perf_counter()
        img_ids = make_data(root, args.num_images)
        print(f'wrote {len(img_ids)} synthetic CAM files + GT PNGs to {root} '
              f'in {time.perf_counter() - start:.1f} s')
        cam_dir, gt_dir = osp.join(root, 'cams'), osp.join(root, 'gt')
        thresholds = default_thresholds()

        start = time.perf_counter()
        ours = evaluate_cam_dir(cam_dir, gt_dir, img_ids, thresholds,
                                NUM_CLASSES)
        ours_time = time.perf_counter() - start

        start = time.perf_counter()
        ref = reference_sweep(cam_dir, gt_dir, img_ids, thresholds)
        ref_time = time.perf_counter() - start

        ref_miou = confusion_to_scores(ref)['mIoU']
        ours_miou = confusion_to_scores(ours)['mIoU']
        assert np.array_equal(ref, ours), 'confusion matrices differ'
        assert np.array_equal(ref_miou, ours_miou, equal_nan=True), \
            'mIoU curves differ'
        best = int(np.nanargmax(ours_miou))
        print(f'{len(thresholds)} thresholds x {len(img_ids)} images; '
              f'best threshold {thresholds[best]:g} '
              f'(mIoU {ours_miou[best] * 100:.2f}); per-threshold mIoU '
              f'identical')
        print(f'reference (per threshold, re-read): {ref_time:.2f} s')
        print(f'one-pass sweep:                     {ours_time:.2f} s')
        print(f'speedup: {ref_time / ours_time:.1f}')
    finally:
        if args.keep_dir is None:
            shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())
