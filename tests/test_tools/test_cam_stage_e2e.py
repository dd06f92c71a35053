"""The CAM stage through the real command-line tools, on synthetic data."""
import os
import os.path as osp
import subprocess
import sys

import numpy as np
import pytest

from qaclims_mm.utils.cam_file import load_cam
from qaclims_mm.utils.io import read_split

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DEMO_CONFIG = osp.join(
    REPO, 'configs/cam/cam_r18-os16_1xb16-12e_synthetic-voc-160x160.py')


def run_tool(*args: str) -> str:
    env = dict(os.environ, PYTHONUNBUFFERED='1')
    proc = subprocess.run([sys.executable, *args], cwd=REPO, env=env,
                          capture_output=True, text=True)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    return out


def data_options(voc_root: str, *extra: str) -> list:
    return ['--cfg-options', f'train_dataloader.dataset.data_root={voc_root}',
            f'test_dataloader.dataset.data_root={voc_root}',
            'train_dataloader.num_workers=0', 'test_dataloader.num_workers=0',
            *extra]


@pytest.fixture(scope='module')
def trained(synthetic_voc_root, tmp_path_factory):
    """Two epochs of the demo config through tools/train.py."""
    work = str(tmp_path_factory.mktemp('cam_work'))
    out = run_tool('tools/train.py', DEMO_CONFIG, '--work-dir', work,
                   *data_options(synthetic_voc_root, 'train_cfg.max_epochs=2',
                                 'param_scheduler.0.end=2',
                                 'train_dataloader.batch_size=8'))
    assert 'loss_cls' in out
    with open(osp.join(work, 'last_checkpoint')) as f:
        return work, f.read().strip()


def test_train_then_test_writes_cams_and_scores(trained, synthetic_voc_root,
                                                tmp_path):
    work, ckpt = trained
    cam_dir = str(tmp_path / 'cams')
    out = run_tool('tools/test.py', DEMO_CONFIG, ckpt, '--work-dir', work,
                   '--cam-dir', cam_dir, *data_options(synthetic_voc_root))
    train_ids = read_split(osp.join(synthetic_voc_root,
                                    'ImageSets/Segmentation/train.txt'))
    assert sorted(f[:-4] for f in os.listdir(cam_dir)) == sorted(train_ids)
    cam = load_cam(osp.join(cam_dir, train_ids[0] + '.npz'), num_classes=20)
    assert cam['high_res'].max() < 1 and cam['high_res'].min() >= 0
    assert 'mIoU' in out and 'best' in out.lower()
    # overlays from the config's SaveCAMHook
    assert len(os.listdir(osp.join(work, 'cam_vis'))) > 0


def test_resume_from_checkpoint(trained, synthetic_voc_root):
    """torch>=2.6 safe loading + MMEngine checkpoints: --resume works."""
    work, _ = trained
    out = run_tool('tools/train.py', DEMO_CONFIG, '--work-dir', work,
                   '--resume',
                   *data_options(synthetic_voc_root, 'train_cfg.max_epochs=3',
                                 'param_scheduler.0.end=3',
                                 'train_dataloader.batch_size=8'))
    assert 'resumed epoch: 2' in out.lower() or 'Epoch(train)   [3]' in out


def test_cams_for_a_split_without_masks(trained, synthetic_voc_root,
                                        tmp_path):
    """train_aug has no GT: CAMs are written, nothing crashes on scoring."""
    _, ckpt = trained
    cam_dir = str(tmp_path / 'aug')
    run_tool('tools/test.py', DEMO_CONFIG, ckpt, '--work-dir',
             str(tmp_path / 'w'), '--cam-dir', cam_dir,
             *data_options(
                 synthetic_voc_root,
                 'test_dataloader.dataset.ann_file=ImageSets/Segmentation/'
                 'train_aug.txt', 'test_dataloader.dataset.with_seg_map=False'))
    ids = read_split(osp.join(synthetic_voc_root,
                              'ImageSets/Segmentation/train_aug.txt'))
    assert len(os.listdir(cam_dir)) == len(ids)
    assert np.isfinite(load_cam(osp.join(cam_dir, ids[0] + '.npz'))['cam']).all()
