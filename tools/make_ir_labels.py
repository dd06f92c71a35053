"""Write IR labels (CRF-refined confident fg/bg seeds) from saved CAM files.

    python tools/make_ir_labels.py --cam-dir work_dirs/cams/train_aug \
        --img-dir $VOC/JPEGImages \
        --split-file $VOC/ImageSets/Segmentation/train_aug.txt \
        --out-dir work_dirs/ir_label --nproc 12

Spec §6.3; a front of :func:`qaclims_mm.refine.stages.make_ir_labels`. COCO:
``--dataset COCO14WSSSDataset --img-dir data/coco2014/train2014`` (QA-CLIMS
keeps 0.30 / 0.10; CLIMS used ``--fg-thr 0.35``). Existing PNGs are skipped
(``--overwrite`` rewrites); settings go to ``<out-dir>/settings.json``.
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

import qaclims_mm  # noqa: E402,F401
from qaclims_mm.refine.ir_label import check_ir_thresholds  # noqa: E402
from qaclims_mm.refine.stages import make_ir_labels  # noqa: E402
from qaclims_mm.utils.io import read_split  # noqa: E402
from qaclims_mm.utils.metainfo import DEFAULT_DATASET, dataset_metainfo  # noqa


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--cam-dir', required=True, help='folder of CAM files')
    p.add_argument('--img-dir', required=True, help='folder of the images')
    p.add_argument('--split-file', required=True, help='image-id list')
    p.add_argument('--out-dir', required=True, help='folder for the PNGs')
    p.add_argument('--fg-thr', type=float, default=0.30,
                   help='confident-foreground threshold (default: 0.30)')
    p.add_argument('--bg-thr', type=float, default=0.10,
                   help='confident-background threshold (default: 0.10)')
    p.add_argument('--dataset', default=DEFAULT_DATASET,
                   help='dataset type or config: palette and classes')
    p.add_argument('--img-suffix', default='.jpg', help='image suffix')
    p.add_argument('--nproc', type=int, default=1, help='CPU processes')
    p.add_argument('--overwrite', action='store_true',
                   help='rewrite existing PNGs (and other settings)')
    args = p.parse_args(argv)
    try:
        check_ir_thresholds(args.fg_thr, args.bg_thr)
    except ValueError as e:
        p.error(str(e).replace('fg_thr', '--fg-thr').replace(
            'bg_thr', '--bg-thr'))
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    img_ids = read_split(args.split_file)
    try:
        written = make_ir_labels(
            args.cam_dir, args.img_dir, img_ids, args.out_dir,
            fg_thr=args.fg_thr, bg_thr=args.bg_thr, num_workers=args.nproc,
            overwrite=args.overwrite, img_suffix=args.img_suffix,
            palette=dataset_metainfo(args.dataset)['palette'])
    except (OSError, ValueError) as e:  # they name the image / folder
        raise SystemExit(f'error: {e}') from None
    print(f'{written} IR label(s) written, {len(img_ids) - written} already '
          f'present, in {osp.abspath(args.out_dir)} (fg_thr {args.fg_thr:g}, '
          f'bg_thr {args.bg_thr:g})')
    return 0


if __name__ == '__main__':
    sys.exit(main())
