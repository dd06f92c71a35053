"""Pseudo masks by random walk on IRNet boundaries (spec §6.5).

For every image of the split: IRNet's boundary map (scale 1.0 + flip), then
the stride-4 CAMs of ``--cam-dir`` times ``(1 - edge)`` walked 256 steps
(:func:`qaclims_mm.refine.random_walk.propagate_cams`), upsampled, divided by
their global maximum, background 0.20, argmax: a palette PNG in
MMSegmentation's label format (0 background, ``key + 1`` for a class) in ``--out-dir``.

Example::

    python tools/make_sem_seg_labels.py \
        configs/irn/irn_r50_1xb32-3e_voc12aug-512x512.py \
        work_dirs/irn_r50_1xb32-3e_voc12aug-512x512/epoch_3.pth \
        --cam-dir work_dirs/cams/train_aug \
        --out-dir data/VOCdevkit/VOC2012/sem_seg_rw

The split, image folder and data root are the config's ``infer_dataloader``
(``--ann-file`` / ``--data-root`` override them); the random-walk settings are
its ``random_walk`` dict (``--bg-thr`` overrides the threshold). Images
without labels get an all-background mask without reading a CAM file (a CAM
file without maps gives the same). Re-running skips the PNGs that exist
(``--overwrite`` rewrites them); the settings are recorded in
``<out-dir>/settings.json`` and a run with other settings into the same folder
is refused unless ``--overwrite``.
"""
import argparse
import os
import os.path as osp
import sys
import time

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from mmengine.config import DictAction  # noqa: E402
from mmengine.dataset import pseudo_collate  # noqa: E402
from mmengine.registry import init_default_scope  # noqa: E402
from mmengine.runner import load_checkpoint  # noqa: E402

import qaclims_mm  # noqa: E402,F401  (registers components, offline env)
from qaclims_mm.refine.pseudo_label import label_to_png_bytes  # noqa: E402
from qaclims_mm.evaluation.cam_sweep import check_threshold  # noqa: E402
from qaclims_mm.refine.irn_inference import (DEFAULT_RW_CFG,  # noqa: E402
                                             random_walk_label)
from qaclims_mm.utils.cam_file import find_cam_file, load_cam  # noqa: E402
from qaclims_mm.utils.config import load_config  # noqa: E402
from qaclims_mm.utils.io import atomic_write_bytes  # noqa: E402
from qaclims_mm.utils.output_settings import (  # noqa: E402
    claim_output_dir, release_output_dir)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config', help='IRNet config')
    parser.add_argument('checkpoint', help='IRNet checkpoint (.pth)')
    parser.add_argument('--cam-dir', required=True,
                        help='folder of <id>.npz (or official <id>.npy) CAMs')
    parser.add_argument('--out-dir', required=True,
                        help='folder for the <id>.png pseudo masks')
    parser.add_argument('--ann-file',
                        help='split list (default: the config\'s '
                        'infer_dataloader.dataset.ann_file)')
    parser.add_argument('--data-root', help='override the data root')
    parser.add_argument('--bg-thr', type=float,
                        help='background score (default: the config\'s '
                        'random_walk.bg_thr, 0.20)')
    parser.add_argument('--device',
                        default='cuda' if torch.cuda.is_available() else 'cpu',
                        help='device for IRNet and the walk (default: cuda '
                        'if available)')
    parser.add_argument('--num-workers', type=int, default=2,
                        help='image-loading workers (default: 2)')
    parser.add_argument('--overwrite', action='store_true',
                        help='rewrite PNGs that already exist')
    parser.add_argument('--no-progress', action='store_true')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings, key=value')
    return parser.parse_args(argv)


def build_dataset(cfg, args):
    from mmseg.registry import DATASETS
    if 'infer_dataloader' not in cfg:
        raise KeyError(f'{args.config} has no infer_dataloader (the edge '
                       f'inference split and pipeline)')
    ds_cfg = cfg.infer_dataloader.dataset.copy()
    if args.ann_file:
        ds_cfg.ann_file = args.ann_file
    if args.data_root:
        ds_cfg.data_root = args.data_root
    return DATASETS.build(ds_cfg)


def main(argv=None) -> int:
    args = parse_args(argv)
    cfg = load_config(args.config, args.cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    from mmseg.registry import MODELS
    rw_cfg = dict(DEFAULT_RW_CFG)
    rw_cfg.update(cfg.get('random_walk', {}))
    if args.bg_thr is not None:
        rw_cfg['bg_thr'] = args.bg_thr
    try:
        check_threshold(rw_cfg['bg_thr'], '--bg-thr / random_walk.bg_thr')
    except ValueError as e:
        raise SystemExit(f'error: {e}') from None

    dataset = build_dataset(cfg, args)
    palette = dataset.metainfo['palette']
    num_classes = len(dataset.metainfo['classes']) - 1
    os.makedirs(args.out_dir, exist_ok=True)
    settings = dict(writer='random_walk', cam_dir=osp.abspath(args.cam_dir),
                    irn_config=osp.abspath(args.config),
                    irn_checkpoint=osp.abspath(args.checkpoint),
                    random_walk=rw_cfg, num_classes=num_classes)
    try:
        claim_output_dir(args.out_dir, settings, args.overwrite)
    except ValueError as e:
        raise SystemExit(f'error: {e}') from None
    ids = [dataset.get_data_info(i)['img_id'] for i in range(len(dataset))]
    todo = [
        i for i, img_id in enumerate(ids) if args.overwrite
        or not osp.isfile(osp.join(args.out_dir, img_id + '.png'))
    ]
    print(f'{len(ids)} images in the split, {len(ids) - len(todo)} already '
          f'done, {len(todo)} to do')
    if not todo:
        release_output_dir(args.out_dir, settings)
        return 0

    if not osp.isfile(args.checkpoint):
        raise FileNotFoundError(f'checkpoint not found: {args.checkpoint}')
    model = MODELS.build(cfg.model)
    load_checkpoint(model, args.checkpoint, map_location='cpu',
                    revise_keys=[(r'^module\.', '')], strict=True)
    model.to(args.device).eval()

    loader = torch.utils.data.DataLoader(
        torch.utils.data.Subset(dataset, todo), batch_size=1,
        shuffle=False, num_workers=args.num_workers,
        collate_fn=pseudo_collate)
    bar = None
    if not args.no_progress:
        from mmengine.utils import ProgressBar
        bar = ProgressBar(len(todo))
    start = time.time()
    with torch.no_grad():
        for batch in loader:
            data = model.data_preprocessor(batch, False)
            sample = model.predict(data['inputs'], data['data_samples'])[0]
            img_id = sample.metainfo['img_id']
            ori = sample.metainfo['ori_shape']
            image_hw = (int(ori[0]), int(ori[1]))
            if not sample.metainfo.get('img_labels'):
                label = np.zeros(image_hw, dtype=np.uint8)
            else:
                cam = load_cam(find_cam_file(args.cam_dir, img_id),
                               num_classes=num_classes, fields=('cam', ))
                label = random_walk_label(cam, sample.pred_edge.data[0],
                                          image_hw, rw_cfg, img_id,
                                          device=args.device)
            atomic_write_bytes(
                osp.join(args.out_dir, img_id + '.png'),
                label_to_png_bytes(label, palette))
            if bar is not None:
                bar.update()
    if bar is not None:
        print()
    release_output_dir(args.out_dir, settings)
    print(f'{len(todo)} PNG(s) written to {osp.abspath(args.out_dir)} in '
          f'{time.time() - start:.1f} s')
    return 0


if __name__ == '__main__':
    sys.exit(main())
