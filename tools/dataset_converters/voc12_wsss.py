"""Prepare PASCAL VOC 2012 (+ SBD) for WSSS training and evaluation.

Example::

    python tools/dataset_converters/voc12_wsss.py data/VOCdevkit/VOC2012 \
        --sbd-root data/benchmark_RELEASE/dataset

writes ``cls_labels.json`` (image-level labels from the XML annotations),
``ImageSets/Segmentation/train_aug.txt`` and ``SegmentationClassAug/``.
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.abspath(osp.join(osp.dirname(__file__), '..', '..')))

from qaclims_mm.datasets.converters.voc12 import convert_voc12  # noqa: E402


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[1])
    parser.add_argument('voc_root', help='VOCdevkit/VOC2012 folder')
    parser.add_argument('--sbd-root', help='SBD "dataset" folder (cls/*.mat, '
                        'train.txt, val.txt); needed for train_aug')
    parser.add_argument('--out-root', help='output folder (default: voc_root)')
    parser.add_argument('--no-masks', action='store_true',
                        help='do not write SegmentationClassAug')
    parser.add_argument('--overwrite', action='store_true',
                        help='rewrite masks that already exist')
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    summary = convert_voc12(args.voc_root, sbd_root=args.sbd_root,
                            out_root=args.out_root,
                            write_masks=not args.no_masks,
                            overwrite=args.overwrite)
    for key, value in summary.items():
        print(f'{key:>16}: {value}')


if __name__ == '__main__':
    main()
