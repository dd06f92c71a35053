"""Write IR labels (CRF-refined confident fg/bg seeds) from saved CAM files.

Spec §6.3: label = class where the CRF-refined CAM argmax at ``--fg-thr``
is foreground, 0 where even ``--bg-thr`` gives background, 255 in between.

Example::

    VOC=data/VOCdevkit/VOC2012
    python tools/make_ir_labels.py --cam-dir work_dirs/cams/train_aug \
        --img-dir $VOC/JPEGImages \
        --split-file $VOC/ImageSets/Segmentation/train_aug.txt \
        --out-dir work_dirs/ir_label --nproc 12

COCO: ``--num-classes 80 --img-dir data/coco2014/train2014`` (QA-CLIMS keeps
0.30 / 0.10; CLIMS used ``--fg-thr 0.35``). Re-running skips the PNGs that
exist (pass ``--overwrite`` to rewrite them). The settings are recorded in
``<out-dir>/settings.json``; a run with other settings into the same folder is
refused unless ``--overwrite``.
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from qaclims_mm.refine.ir_label import (check_ir_thresholds,  # noqa: E402
                                        make_ir_labels)
from qaclims_mm.utils.io import read_split  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--cam-dir', required=True,
                        help='folder of <id>.npz (or official <id>.npy) CAMs '
                        'with high_res maps')
    parser.add_argument('--img-dir', required=True,
                        help='folder of the images (JPEGImages)')
    parser.add_argument('--split-file', required=True,
                        help='image-id list, one id per line')
    parser.add_argument('--out-dir', required=True,
                        help='folder for the <id>.png IR labels')
    parser.add_argument('--fg-thr', type=float, default=0.30,
                        help='confident-foreground threshold (default: 0.30)')
    parser.add_argument('--bg-thr', type=float, default=0.10,
                        help='confident-background threshold (default: 0.10)')
    parser.add_argument('--num-classes', type=int, default=20,
                        help='object classes: 20 = VOC palette, otherwise '
                        'the COCO-style palette (default: 20)')
    parser.add_argument('--img-suffix', default='.jpg',
                        help='image file suffix (default: .jpg)')
    parser.add_argument('--nproc', type=int, default=1,
                        help='CPU processes (default: 1)')
    parser.add_argument('--overwrite', action='store_true',
                        help='rewrite PNGs that already exist (and a folder '
                        'made with other settings)')
    args = parser.parse_args(argv)
    try:
        check_ir_thresholds(args.fg_thr, args.bg_thr)
    except ValueError as e:
        parser.error(str(e).replace('fg_thr', '--fg-thr').replace(
            'bg_thr', '--bg-thr'))
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    img_ids = read_split(args.split_file)
    try:
        written = make_ir_labels(
            args.cam_dir, args.img_dir, img_ids, args.out_dir,
            fg_thr=args.fg_thr, bg_thr=args.bg_thr, num_workers=args.nproc,
            overwrite=args.overwrite, num_classes=args.num_classes,
            img_suffix=args.img_suffix)
    except (OSError, ValueError) as e:  # they name the image / folder
        raise SystemExit(f'error: {e}') from None
    print(f'{written} IR label(s) written, {len(img_ids) - written} already '
          f'present, in {osp.abspath(args.out_dir)} (fg_thr {args.fg_thr:g}, '
          f'bg_thr {args.bg_thr:g})')
    return 0


if __name__ == '__main__':
    sys.exit(main())
