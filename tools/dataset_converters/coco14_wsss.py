"""Convert MS COCO 2014 to the WSSS layout read by ``COCO14WSSSDataset``.

Writes, under ``<coco_root>/wsss/``, the split lists ``{train,val}.txt``, the
image-level labels ``cls_labels_{train,val}.json`` and the semantic GT masks
``mask/{train,val}2014/<id>.png``. Resumable: rerun it after an interruption
and the existing masks are skipped.

Example::

    python tools/dataset_converters/coco14_wsss.py data/coco --nproc 8
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.abspath(osp.join(osp.dirname(__file__), '..', '..')))

from qaclims_mm.datasets.converters.coco14 import convert_coco14  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Write the WSSS split lists, image-level labels and '
        'semantic GT masks of MS COCO 2014.')
    parser.add_argument(
        'coco_root',
        help='COCO folder holding annotations/instances_{train,val}2014.json')
    parser.add_argument(
        '--splits', nargs='+', default=['train', 'val'],
        help='splits to convert (default: train val)')
    parser.add_argument(
        '--out-subdir', default='wsss',
        help='output folder relative to coco_root (default: wsss)')
    parser.add_argument(
        '--no-masks', action='store_true',
        help='write only the split lists and the labels, not the GT masks')
    parser.add_argument(
        '--nproc', type=int, default=0,
        help='worker processes for the masks (default: 0, in-process)')
    parser.add_argument(
        '--overwrite', action='store_true',
        help='rewrite masks that already exist (default: skip them)')
    parser.add_argument(
        '--quiet', action='store_true', help='no progress bar')
    return parser.parse_args(argv)


def main(argv=None) -> dict:
    args = parse_args(argv)
    summary = convert_coco14(
        args.coco_root,
        splits=args.splits,
        out_subdir=args.out_subdir,
        write_masks=not args.no_masks,
        num_workers=args.nproc,
        overwrite=args.overwrite,
        progress=not args.quiet)
    for split, info in summary.items():
        empty = info['empty_images']
        print(f'[{split}] {info["num_images"]} images, '
              f'{info["num_annotations"]} annotations '
              f'({info["num_crowd"]} crowd), '
              f'{info["num_empty"]} images without labels'
              + (f' (e.g. {", ".join(empty[:3])})' if empty else ''))
        print(f'  split list : {info["split_file"]}'
              f'{"" if info["split_file_written"] else " (unchanged)"}')
        print(f'  labels     : {info["labels_file"]}'
              f'{"" if info["labels_file_written"] else " (unchanged)"}')
        if info['mask_dir'] is not None:
            print(f'  masks      : {info["mask_dir"]} '
                  f'({info["masks_written"]} written, '
                  f'{info["masks_skipped"]} already there)')
    return summary


if __name__ == '__main__':
    main()
