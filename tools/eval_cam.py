"""Score saved CAM files against GT label PNGs at one threshold and a sweep.

Every CAM file and GT label is read once; the confusion matrices of all
thresholds come out of that single pass (spec §6.2; the official
``--eval_cam_best`` re-reads everything per threshold).

Example::

    python tools/eval_cam.py --cam-dir work_dirs/cams \
        --gt-dir data/VOCdevkit/VOC2012/SegmentationClass \
        --split-file data/VOCdevkit/VOC2012/ImageSets/Segmentation/train.txt
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

import numpy as np  # noqa: E402

from qaclims_mm.datasets.class_names import (COCO_CLASSES,  # noqa: E402
                                             VOC_CLASSES)
from qaclims_mm.evaluation.cam_sweep import (check_threshold,  # noqa: E402
                                             default_thresholds,
                                             evaluate_cam_dir,
                                             format_sweep_report,
                                             sweep_summary)
from qaclims_mm.utils.io import read_split  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--cam-dir', required=True,
                        help='folder of <id>.npz (or official <id>.npy) CAMs')
    parser.add_argument('--gt-dir', required=True,
                        help='folder of <id>.png GT labels '
                        '(SegmentationClass)')
    parser.add_argument('--split-file', required=True,
                        help='image-id list, one id per line')
    parser.add_argument('--thr', type=float, default=0.15,
                        help='reported background threshold (default: 0.15)')
    parser.add_argument('--sweep', type=float, nargs=3, default=None,
                        metavar=('START', 'STOP', 'STEP'),
                        help='threshold sweep, stop included (default: 0.05 '
                        '0.59 0.01)')
    parser.add_argument('--no-sweep', action='store_true',
                        help='score --thr only')
    parser.add_argument('--num-classes', type=int, default=20,
                        help='object classes, background excluded '
                        '(default: 20)')
    parser.add_argument('--cam-type', choices=('high_res', 'cam'),
                        default='high_res',
                        help='CAM entry to score (default: high_res, as the '
                        'official evaluation); cam (stride 4) is upsampled '
                        '4x bilinearly and cropped to the GT size first')
    parser.add_argument('--ignore-index', type=int, default=255)
    args = parser.parse_args(argv)
    try:
        check_threshold(args.thr, '--thr')
        if args.sweep is not None:
            check_threshold(args.sweep[0], '--sweep START')
            check_threshold(args.sweep[1], '--sweep STOP')
            default_thresholds(*args.sweep)  # checks STEP > 0, STOP >= START
    except ValueError as e:
        parser.error(str(e))
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.no_sweep:
        thresholds = np.array([args.thr])
    else:
        sweep = args.sweep or (0.05, 0.59, 0.01)
        thresholds = np.unique(np.round(np.append(
            default_thresholds(*sweep), args.thr), 10))
    img_ids = read_split(args.split_file)
    if not img_ids:
        raise SystemExit(f'error: the split file {args.split_file} lists no '
                         f'image id; nothing to evaluate')
    conf = evaluate_cam_dir(args.cam_dir, args.gt_dir, img_ids, thresholds,
                            num_classes=args.num_classes,
                            cam_type=args.cam_type,
                            ignore_index=args.ignore_index, progress=True)
    if args.num_classes == len(VOC_CLASSES):
        names = ('background', ) + VOC_CLASSES
    elif args.num_classes == len(COCO_CLASSES):
        names = ('background', ) + COCO_CLASSES
    else:
        names = ('background', ) + tuple(
            f'class{i}' for i in range(args.num_classes))
    split = osp.splitext(osp.basename(args.split_file))[0]
    print()
    print(f'{len(img_ids)} images from {args.split_file}')
    print(format_sweep_report(conf, thresholds, args.thr, names, split=split,
                              cam_type=args.cam_type))
    summary = sweep_summary(conf, thresholds, args.thr)
    print(f'best threshold: {summary["best_threshold"]:g} '
          f'(mIoU {summary["scores_at_best"]["mIoU"] * 100:.2f})')
    return 0


if __name__ == '__main__':
    sys.exit(main())
