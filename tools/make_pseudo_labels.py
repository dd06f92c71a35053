"""Write palette-PNG pseudo labels from saved CAM files (bg threshold, argmax).

Example::

    VOC=data/VOCdevkit/VOC2012
    python tools/make_pseudo_labels.py --cam-dir work_dirs/cams \
        --split-file $VOC/ImageSets/Segmentation/train_aug.txt \
        --out-dir $VOC/PseudoLabelsCAM --thr 0.15

Re-running skips the PNGs that exist (pass ``--overwrite`` to rewrite them).
The settings are recorded in ``<out-dir>/settings.json``; a run with other
settings into the same folder is refused unless ``--overwrite``.
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from qaclims_mm.datasets.class_names import (VOC_PALETTE,  # noqa: E402
                                             coco_palette)
from qaclims_mm.evaluation.cam_sweep import check_threshold  # noqa: E402
from qaclims_mm.refine.pseudo_label import write_pseudo_labels  # noqa: E402
from qaclims_mm.utils.io import read_split  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--cam-dir', required=True,
                        help='folder of <id>.npz (or official <id>.npy) CAMs')
    parser.add_argument('--split-file', required=True,
                        help='image-id list, one id per line')
    parser.add_argument('--out-dir', required=True,
                        help='folder for the <id>.png labels')
    parser.add_argument('--thr', type=float, default=0.15,
                        help='background threshold (default: 0.15)')
    parser.add_argument('--cam-type', choices=('high_res', 'cam'),
                        default='high_res',
                        help='CAM entry to use (default: high_res, full '
                        'resolution)')
    parser.add_argument('--num-classes', type=int, default=20,
                        help='object classes: 20 = VOC palette, otherwise '
                        'the COCO-style palette (default: 20)')
    parser.add_argument('--overwrite', action='store_true',
                        help='rewrite PNGs that already exist (and a folder '
                        'made with other settings)')
    args = parser.parse_args(argv)
    try:
        check_threshold(args.thr, '--thr')
    except ValueError as e:
        parser.error(str(e))
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    palette = (VOC_PALETTE if args.num_classes == 20 else
               coco_palette(args.num_classes + 1))
    img_ids = read_split(args.split_file)
    try:
        written = write_pseudo_labels(
            args.cam_dir, img_ids, args.out_dir, threshold=args.thr,
            cam_type=args.cam_type, palette=palette,
            num_classes=args.num_classes, overwrite=args.overwrite)
    except (FileNotFoundError, ValueError) as e:
        raise SystemExit(f'error: {e}') from None
    out_dir = osp.abspath(args.out_dir)
    print(f'{written} PNG(s) written, {len(img_ids) - written} already '
          f'present, in {out_dir}')
    print("Train on them by pointing the dataset's seg_map_path there, e.g. "
          "data_prefix=dict(img_path='JPEGImages', "
          f"seg_map_path='{out_dir}') (mmseg joins a relative seg_map_path "
          "to data_root; an absolute one is used as is).")
    return 0


if __name__ == '__main__':
    sys.exit(main())
