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
from qaclims_mm.utils.cli import (add_label_writer_args,  # noqa: E402
                                  add_split_args, check_or_error,
                                  dataset_palette, run_or_exit)
from qaclims_mm.utils.io import read_split  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    add_split_args(p, input_arg='--cam-dir', input_help='folder of CAM files')
    add_label_writer_args(p, nproc=0)
    p.add_argument('--thr', type=float, default=DEFAULT_CAM_THRESHOLD,
                   help=f'background threshold ({DEFAULT_CAM_THRESHOLD})')
    p.add_argument('--cam-type', choices=('high_res', 'cam'),
                   default='high_res', help='CAM entry (default: high_res)')
    args = p.parse_args(argv)
    check_or_error(p, lambda: check_threshold(args.thr, '--thr'))
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    img_ids = read_split(args.split_file)
    written = run_or_exit(
        write_pseudo_labels, args.cam_dir, img_ids, args.out_dir,
        threshold=args.thr, cam_type=args.cam_type,
        palette=dataset_palette(args), overwrite=args.overwrite,
        workers=args.nproc)
    out_dir = osp.abspath(args.out_dir)
    print(f'{written} PNG(s) written, {len(img_ids) - written} already '
          f"present, in {out_dir}\nTrain on them with the dataset's "
          f"data_prefix=dict(img_path='JPEGImages', seg_map_path='{out_dir}')")
    return 0


if __name__ == '__main__':
    sys.exit(main())
