"""Score pseudo-mask PNGs against GT label PNGs (spec §6.6).

The official rule: 255 in a pseudo mask counts as background, the confusion
matrix is restricted to the classes, GT 255 is ignored; IoU, mIoU and the
fp/fn rates are printed.

Example::

    VOC=data/VOCdevkit/VOC2012
    python tools/eval_pseudo_masks.py --pseudo-dir work_dirs/sem_seg \
        --gt-dir $VOC/SegmentationClass \
        --split-file $VOC/ImageSets/Segmentation/train.txt \
        --settings 'random walk beta=10 exp=8 bg=0.20'
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from qaclims_mm.datasets.class_names import (COCO_CLASSES,  # noqa: E402
                                             VOC_CLASSES)
from qaclims_mm.evaluation.metrics.pseudo_mask_metric import (  # noqa: E402
    evaluate_pseudo_masks, format_pseudo_mask_report, summarize_pseudo_masks)
from qaclims_mm.utils.io import read_split  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--pseudo-dir', required=True,
                        help='folder of <id>.png pseudo masks')
    parser.add_argument('--gt-dir', required=True,
                        help='folder of <id>.png GT labels '
                        '(SegmentationClass)')
    parser.add_argument('--split-file', required=True,
                        help='image-id list, one id per line')
    parser.add_argument('--num-classes', type=int, default=20,
                        help='object classes, background excluded '
                        '(default: 20)')
    parser.add_argument('--settings', default=None,
                        help='how the masks were made, stated in the report '
                        "header (e.g. 'random walk beta=10 exp=8 bg=0.20')")
    parser.add_argument('--ignore-index', type=int, default=255)
    return parser.parse_args(argv)


def class_names(num_classes: int) -> tuple:
    """Background plus the VOC / COCO names, or generic ones."""
    if num_classes == len(VOC_CLASSES):
        return ('background', ) + VOC_CLASSES
    if num_classes == len(COCO_CLASSES):
        return ('background', ) + COCO_CLASSES
    return ('background', ) + tuple(f'class{i}' for i in range(num_classes))


def main(argv=None) -> int:
    args = parse_args(argv)
    img_ids = read_split(args.split_file)
    if not img_ids:
        raise SystemExit(f'error: the split file {args.split_file} lists no '
                         f'image id; nothing to evaluate')
    conf = evaluate_pseudo_masks(args.pseudo_dir, args.gt_dir, img_ids,
                                 num_classes=args.num_classes,
                                 ignore_index=args.ignore_index,
                                 progress=True)
    split = osp.splitext(osp.basename(args.split_file))[0]
    print(format_pseudo_mask_report(conf, class_names(args.num_classes),
                                    args.settings, split, len(img_ids)))
    print(summarize_pseudo_masks(conf))
    return 0


if __name__ == '__main__':
    sys.exit(main())
