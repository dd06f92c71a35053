"""The main job: the whole CAM stage, end to end, with the standard tools.

1. data: generate the synthetic VOC-format dataset if ``--data-root`` has none
   (``make_synthetic_voc.py --preset demo``), then convert it like real VOC
   (``voc12_wsss.py``: XML labels, train_aug, SegmentationClassAug);
2. train the baseline CAM network (``tools/train.py``);
3. infer multi-scale + flip CAMs of the ``train`` split, score them (CAM mIoU
   at 0.15 and the best threshold of the sweep) and write overlays
   (``tools/test.py``);
4. write threshold pseudo labels from the CAMs (``make_pseudo_labels.py``).

Every step prints the exact command it runs, so the same commands can be used
on real VOC: ``python tools/run_cam_demo.py --data-root data/VOCdevkit/..``
with ``--config configs/cam/cam_r50-os16_1xb16-5e_voc12aug-512x512.py``.
"""
import argparse
import os
import os.path as osp
import subprocess
import sys
import time

REPO = osp.abspath(osp.join(osp.dirname(__file__), '..'))
DEMO_CONFIG = 'configs/cam/cam_r18-os16_1xb16-12e_synthetic-voc-160x160.py'


def run(cmd: list) -> None:
    print('\n$ ' + ' '.join(cmd), flush=True)
    start = time.time()
    subprocess.run(cmd, cwd=REPO, check=True)
    print(f'  ({time.time() - start:.0f} s)', flush=True)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--data-root', default='data/synthetic_voc',
                        help='folder holding VOC2012/ (and SBD/); the '
                        'synthetic set is generated here if absent')
    parser.add_argument('--config', default=DEMO_CONFIG)
    parser.add_argument('--work-dir', default='work_dirs/cam_demo')
    parser.add_argument('--skip-train', action='store_true',
                        help='reuse the last checkpoint in --work-dir')
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    py = sys.executable
    voc = osp.join(args.data_root, 'VOC2012')
    if not osp.isfile(osp.join(REPO, voc, 'cls_labels.json')):
        if not osp.isdir(osp.join(REPO, voc, 'JPEGImages')):
            run([py, 'tools/dataset_converters/make_synthetic_voc.py',
                 '--out-dir', args.data_root, '--preset', 'demo'])
        run([py, 'tools/dataset_converters/voc12_wsss.py', voc,
             '--sbd-root', osp.join(args.data_root, 'SBD')])
    data_opt = ['--cfg-options',
                f'train_dataloader.dataset.data_root={voc}',
                f'test_dataloader.dataset.data_root={voc}']
    if not args.skip_train:
        run([py, 'tools/train.py', args.config, '--work-dir', args.work_dir]
            + data_opt)
    with open(osp.join(REPO, args.work_dir, 'last_checkpoint')) as f:
        checkpoint = f.read().strip()
    cam_dir = osp.join(args.work_dir, 'cams', 'train')
    run([py, 'tools/test.py', args.config, checkpoint, '--work-dir',
         args.work_dir, '--cam-dir', osp.abspath(osp.join(REPO, cam_dir))]
        + data_opt)
    labels_dir = osp.join(args.work_dir, 'pseudo_labels', 'train')
    run([py, 'tools/make_pseudo_labels.py', '--cam-dir', cam_dir,
         '--split-file', osp.join(voc, 'ImageSets', 'Segmentation',
                                  'train.txt'),
         '--out-dir', labels_dir, '--thr', '0.15'])
    print('\nCAM stage done:'
          f'\n  checkpoint     {checkpoint}'
          f'\n  CAM files      {cam_dir}/<img_id>.npz'
          f'\n  CAM overlays   {osp.join(args.work_dir, "cam_vis")}/*.jpg'
          f'\n  pseudo labels  {labels_dir}/<img_id>.png'
          '\n  (the CAM mIoU table is printed above by tools/test.py)')


if __name__ == '__main__':
    os.environ.setdefault('PYTHONUNBUFFERED', '1')
    main()
