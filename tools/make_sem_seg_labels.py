"""Pseudo masks by random walk on IRNet boundaries (spec §6.5).

    python tools/make_sem_seg_labels.py \
        configs/irn/irn_r50_1xb32-3e_voc12aug-512x512.py \
        work_dirs/irn_r50_1xb32-3e_voc12aug-512x512/epoch_3.pth \
        --cam-dir work_dirs/cams/train_aug \
        --out-dir data/VOCdevkit/VOC2012/sem_seg_rw

A front of :func:`qaclims_mm.refine.stages.make_rw_labels`. The images are
every image of the IRN config's ``train_dataloader.dataset`` split
(``--ann-file`` / ``--data-root`` override it); images without labels get an
all-background mask without a CAM file. Existing PNGs are skipped
(``--overwrite`` rewrites); settings go to ``<out-dir>/settings.json``.
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

import torch  # noqa: E402
from mmengine.config import DictAction  # noqa: E402

import qaclims_mm  # noqa: E402,F401
from qaclims_mm.refine.stages import (load_dataset_images,  # noqa: E402
                                      make_rw_labels)
from qaclims_mm.utils.config import load_config  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('config', help='IRNet config')
    p.add_argument('checkpoint', help='IRNet checkpoint (.pth)')
    p.add_argument('--cam-dir', required=True, help='folder of CAM files')
    p.add_argument('--out-dir', required=True, help='folder for the PNGs')
    p.add_argument('--ann-file', help='split list (default: the config\'s)')
    p.add_argument('--data-root', help='override the data root')
    p.add_argument('--bg-thr', type=float, default=0.2,
                   help='background score (default: 0.20)')
    p.add_argument('--device',
                   default='cuda' if torch.cuda.is_available() else 'cpu')
    p.add_argument('--overwrite', action='store_true',
                   help='rewrite existing PNGs (and other settings)')
    p.add_argument('--no-progress', action='store_true')
    p.add_argument('--cfg-options', nargs='+', action=DictAction,
                   help='override config settings, key=value')
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    cfg = load_config(args.config, args.cfg_options)
    images = load_dataset_images(cfg.train_dataloader.dataset,
                                 args.ann_file, args.data_root)
    try:
        result = make_rw_labels(
            args.cam_dir, images.img_dir, images.img_ids, args.out_dir,
            args.config, args.checkpoint, bg_threshold=args.bg_thr,
            palette=images.metainfo['palette'], img_suffix=images.img_suffix,
            device=args.device, overwrite=args.overwrite,
            progress=not args.no_progress, unlabeled=images.unlabeled)
    except ValueError as e:  # they name the image / folder / setting
        raise SystemExit(f'error: {e}') from None
    print(f'{result.written} PNG(s) written, {result.skipped} already '
          f'present, in {osp.abspath(args.out_dir)}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
