"""Score saved CAM files against GT label PNGs at one threshold and a sweep.

    python tools/eval_cam.py --cam-dir work_dirs/cams \
        --gt-dir data/VOCdevkit/VOC2012/SegmentationClass \
        --split-file data/VOCdevkit/VOC2012/ImageSets/Segmentation/train.txt

A front of :func:`qaclims_mm.evaluation.evaluate_cams`: every file is read
once, all thresholds come out of that single pass (spec §6.2). Class names
come from ``--dataset`` (type or config) or, for a generic set,
``--num-classes``.
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

import qaclims_mm  # noqa: E402,F401
from qaclims_mm.evaluation import (DEFAULT_CAM_THRESHOLD,  # noqa: E402
                                   check_threshold, default_thresholds,
                                   evaluate_cams)
from qaclims_mm.utils.cli import (add_class_names_args,  # noqa: E402
                                  add_split_args, check_or_error,
                                  class_names_from_args, read_split_or_exit)


def _check_thresholds(args: argparse.Namespace) -> None:
    check_threshold(args.thr, '--thr')
    check_threshold(args.sweep[0], '--sweep START')
    check_threshold(args.sweep[1], '--sweep STOP')
    default_thresholds(*args.sweep)  # checks STEP > 0, STOP >= START


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    add_split_args(p, input_arg='--cam-dir', input_help='folder of CAM files')
    p.add_argument('--gt-dir', required=True, help='folder of GT PNGs')
    p.add_argument('--thr', type=float, default=DEFAULT_CAM_THRESHOLD,
                   help='reported background threshold')
    p.add_argument('--sweep', type=float, nargs=3, default=(0.05, 0.59, 0.01),
                   metavar=('START', 'STOP', 'STEP'),
                   help='threshold sweep, stop included (0.05 0.59 0.01)')
    p.add_argument('--no-sweep', action='store_true', help='score --thr only')
    add_class_names_args(p)
    p.add_argument('--cam-type', choices=('high_res', 'cam'),
                   default='high_res', help='CAM entry; cam (stride 4) is '
                   'upsampled 4x bilinearly and cropped to the GT first')
    p.add_argument('--ignore-index', type=int, default=255)
    args = p.parse_args(argv)
    check_or_error(p, lambda: _check_thresholds(args))
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    img_ids = read_split_or_exit(args.split_file)
    result = evaluate_cams(
        args.cam_dir, args.gt_dir, img_ids, class_names_from_args(args),
        args.thr,
        None if args.no_sweep else args.sweep, args.cam_type,
        args.ignore_index, osp.splitext(osp.basename(args.split_file))[0],
        progress=True)
    best = (f'{result["best_threshold"]:g} '
            f'(mIoU {result["best_mIoU"] * 100:.2f})')
    print(f'\n{len(img_ids)} images from {args.split_file}\n'
          f'{result["report"]}\nbest threshold: {best}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
