"""Score pseudo-mask PNGs against GT label PNGs (spec §6.6).

    python tools/eval_pseudo_masks.py --pseudo-dir work_dirs/sem_seg \
        --gt-dir $VOC/SegmentationClass \
        --split-file $VOC/ImageSets/Segmentation/train.txt \
        --settings 'random walk beta=10 exp=8 bg=0.20'

A front of :func:`qaclims_mm.evaluation.evaluate_pseudo_masks` (255 in a
pseudo mask counts as background, GT 255 is ignored). Class names come from
``--dataset`` (type or config) or, for a generic set, ``--num-classes``.
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

import qaclims_mm  # noqa: E402,F401
from qaclims_mm.evaluation.metrics.pseudo_mask_metric import (  # noqa: E402
    evaluate_pseudo_masks, format_pseudo_mask_report, summarize_pseudo_masks)
from qaclims_mm.utils.cli import (add_class_names_args,  # noqa: E402
                                  add_split_args, class_names_from_args,
                                  read_split_or_exit)


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    add_split_args(p, input_arg='--pseudo-dir', input_help='pseudo-mask PNGs')
    p.add_argument('--gt-dir', required=True, help='folder of GT PNGs')
    add_class_names_args(p)
    p.add_argument('--settings', default=None,
                   help='how the masks were made, for the report header')
    p.add_argument('--ignore-index', type=int, default=255)
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    img_ids = read_split_or_exit(args.split_file)
    names = class_names_from_args(args)
    conf = evaluate_pseudo_masks(args.pseudo_dir, args.gt_dir, img_ids,
                                 num_classes=len(names) - 1,
                                 ignore_index=args.ignore_index,
                                 progress=True)
    split = osp.splitext(osp.basename(args.split_file))[0]
    print(format_pseudo_mask_report(conf, names, args.settings, split,
                                    len(img_ids)))
    print(summarize_pseudo_masks(conf))
    return 0


if __name__ == '__main__':
    sys.exit(main())
