"""Write palette-PNG pseudo labels from saved CAM files (bg threshold, argmax).

    python tools/make_pseudo_labels.py --cam-dir work_dirs/cams \
        --split-file $VOC/ImageSets/Segmentation/train_aug.txt \
        --out-dir $VOC/PseudoLabelsCAM --thr 0.15

A front of :func:`qaclims_mm.refine.stages.write_pseudo_labels`: existing PNGs
are skipped (``--overwrite`` rewrites), the settings are recorded in
``<out-dir>/settings.json``; palette from ``--dataset`` (type or config).
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

import qaclims_mm  # noqa: E402,F401
from qaclims_mm.evaluation import (DEFAULT_CAM_THRESHOLD,  # noqa: E402
                                   check_threshold)
from qaclims_mm.refine.stages import write_pseudo_labels  # noqa: E402
from qaclims_mm.utils.io import read_split  # noqa: E402
from qaclims_mm.utils.metainfo import DEFAULT_DATASET, dataset_metainfo  # noqa


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--cam-dir', required=True, help='folder of CAM files')
    p.add_argument('--split-file', required=True, help='image-id list')
    p.add_argument('--out-dir', required=True, help='folder for the PNGs')
    p.add_argument('--thr', type=float, default=DEFAULT_CAM_THRESHOLD,
                   help=f'background threshold ({DEFAULT_CAM_THRESHOLD})')
    p.add_argument('--cam-type', choices=('high_res', 'cam'),
                   default='high_res', help='CAM entry (default: high_res)')
    p.add_argument('--dataset', default=DEFAULT_DATASET,
                   help='dataset type or config: palette and classes')
    p.add_argument('--nproc', type=int, default=0, help='CPU processes')
    p.add_argument('--overwrite', action='store_true',
                   help='rewrite existing PNGs (and other settings)')
    args = p.parse_args(argv)
    try:
        check_threshold(args.thr, '--thr')
    except ValueError as e:
        p.error(str(e))
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    img_ids = read_split(args.split_file)
    try:
        written = write_pseudo_labels(
            args.cam_dir, img_ids, args.out_dir, threshold=args.thr,
            cam_type=args.cam_type,
            palette=dataset_metainfo(args.dataset)['palette'],
            overwrite=args.overwrite, workers=args.nproc)
    except (OSError, ValueError) as e:  # they name the image / folder
        raise SystemExit(f'error: {e}') from None
    out_dir = osp.abspath(args.out_dir)
    print(f'{written} PNG(s) written, {len(img_ids) - written} already '
          f"present, in {out_dir}\nTrain on them with the dataset's "
          f"data_prefix=dict(img_path='JPEGImages', seg_map_path='{out_dir}')")
    return 0


if __name__ == '__main__':
    sys.exit(main())
