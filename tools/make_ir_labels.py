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
from qaclims_mm.utils.cli import (add_label_writer_args,  # noqa: E402
                                  add_split_args, check_or_error,
                                  dataset_palette, run_or_exit)
from qaclims_mm.utils.io import read_split  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    add_split_args(p, input_arg='--cam-dir', input_help='folder of CAM files')
    add_label_writer_args(p, nproc=1)
    p.add_argument('--img-dir', required=True, help='folder of the images')
    p.add_argument('--fg-thr', type=float, default=0.30,
                   help='confident-foreground threshold (default: 0.30)')
    p.add_argument('--bg-thr', type=float, default=0.10,
                   help='confident-background threshold (default: 0.10)')
    p.add_argument('--img-suffix', default='.jpg', help='image suffix')
    args = p.parse_args(argv)
    check_or_error(p, lambda: check_ir_thresholds(args.fg_thr, args.bg_thr),
                   rename={'fg_thr': '--fg-thr', 'bg_thr': '--bg-thr'})
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    img_ids = read_split(args.split_file)
    written = run_or_exit(
        make_ir_labels, args.cam_dir, args.img_dir, img_ids, args.out_dir,
        fg_thr=args.fg_thr, bg_thr=args.bg_thr, num_workers=args.nproc,
        overwrite=args.overwrite, img_suffix=args.img_suffix,
        palette=dataset_palette(args))
    print(f'{written} IR label(s) written, {len(img_ids) - written} already '
          f'present, in {osp.abspath(args.out_dir)} (fg_thr {args.fg_thr:g}, '
          f'bg_thr {args.bg_thr:g})')
    return 0


if __name__ == '__main__':
    sys.exit(main())
