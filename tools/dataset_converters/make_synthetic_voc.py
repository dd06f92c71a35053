"""Generate a synthetic PASCAL VOC 2012 + SBD look-alike dataset.

The output has the exact folder layout of ``VOCdevkit/VOC2012`` and of the SBD
``dataset/`` folder, so the converters and dataset classes read it like the
real data (see :mod:`qaclims_mm.synthetic`).

Presets (:mod:`qaclims_mm.synthetic.presets`; explicit flags override them):
``test`` (default; 60 images, about a second) and ``demo`` (540 images, the
data of the synthetic pipelines, ``configs/pipelines/*synthetic*``).

Example::

    python tools/dataset_converters/make_synthetic_voc.py --preset demo \\
        --out-dir data/synthetic_voc
"""
import argparse
import os.path as osp
import sys
from typing import List, Optional

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, REPO_ROOT)

from qaclims_mm.synthetic import (PRESETS, make_synthetic_voc,  # noqa: E402
                                  preset_args)


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Generate a synthetic PASCAL VOC 2012 + SBD dataset')
    parser.add_argument('--out-dir', default='data/synthetic_voc',
                        help='output folder (VOC2012/ and SBD/ go in it)')
    parser.add_argument('--preset', choices=sorted(PRESETS), default='test',
                        help='size preset; explicit flags override it')
    parser.add_argument('--num-train', type=int,
                        help='VOC segmentation train images')
    parser.add_argument('--num-val', type=int,
                        help='VOC segmentation val images')
    parser.add_argument('--num-aug', type=int,
                        help='extra images with SBD masks only')
    parser.add_argument('--min-long', type=int, help='smallest long side (px)')
    parser.add_argument('--max-long', type=int, help='largest long side (px)')
    parser.add_argument('--max-objects', type=int, default=3,
                        help='most object instances per image')
    parser.add_argument('--seed', type=int, default=0, help='dataset seed')
    parser.add_argument('--overwrite', action='store_true',
                        help='regenerate into a non-empty --out-dir')
    parser.add_argument('--no-progress', action='store_true',
                        help='hide the progress bar')
    args = parser.parse_args(argv)
    for key, value in preset_args(args.preset).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    return args


def main(argv: Optional[List[str]] = None) -> dict:
    args = parse_args(argv)
    summary = make_synthetic_voc(
        args.out_dir,
        num_train=args.num_train,
        num_val=args.num_val,
        num_aug=args.num_aug,
        min_long=args.min_long,
        max_long=args.max_long,
        seed=args.seed,
        max_objects=args.max_objects,
        progress=not args.no_progress,
        overwrite=args.overwrite)
    print(f'wrote {summary["num_images"]} images: '
          f'{len(summary["train_ids"])} train, {len(summary["val_ids"])} val, '
          f'{len(summary["aug_ids"])} aug-only '
          f'(SBD {len(summary["sbd_train_ids"])} train / '
          f'{len(summary["sbd_val_ids"])} val)\n'
          f'  VOC root: {summary["voc_root"]}\n'
          f'  SBD root: {summary["sbd_root"]}')
    return summary


if __name__ == '__main__':
    main()
