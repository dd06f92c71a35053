"""The CAM stage through the real command-line tools, on synthetic data."""
import os
import os.path as osp
import subprocess
import sys

import numpy as np
import pytest
import torch
from train_logs import (PER_ITER_LOGGING, assert_loss_decreases,
                        assert_losses_finite, assert_same_weights,
                        assert_weights_changed, interrupted_copy,
                        train_records)

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


# 3 epochs of 6 iterations (48 train_aug images, batches of 8), a checkpoint
# after each epoch, every iteration logged
EPOCHS = ['train_cfg.max_epochs=3', 'param_scheduler.0.end=3',
          'train_dataloader.batch_size=8',
          'default_hooks.checkpoint.interval=1', *PER_ITER_LOGGING]
ITERS_PER_EPOCH = 6


@pytest.fixture(scope='module')
def initial(tmp_path_factory):
    """The randomly initialised model, saved as the run's ``load_from``."""
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS
    init_default_scope('mmseg')
    torch.manual_seed(0)
    model = MODELS.build(Config.fromfile(DEMO_CONFIG).model)
    model.init_weights()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    path = str(tmp_path_factory.mktemp('cam_init') / 'init.pth')
    torch.save({'state_dict': state}, path)
    return path, state


@pytest.fixture(scope='module')
def trained(synthetic_voc_root, initial, tmp_path_factory):
    """Three uninterrupted epochs of the demo config through tools/train.py."""
    work = str(tmp_path_factory.mktemp('cam_work'))
    out = run_tool('tools/train.py', DEMO_CONFIG, '--work-dir', work,
                   *data_options(synthetic_voc_root, *EPOCHS,
                                 f'load_from={initial[0]}'))
    assert 'loss_cls' in out
    with open(osp.join(work, 'last_checkpoint')) as f:
        return work, f.read().strip()


def test_training_logs_finite_falling_losses_and_moves_weights(trained,
                                                                 initial):
    work, ckpt = trained
    records = train_records(work)
    assert [r['step'] for r in records] == list(
        range(1, 3 * ITERS_PER_EPOCH + 1))
    assert_losses_finite(records, ['loss_cls'])
    assert_loss_decreases(records, 'loss_cls', head=ITERS_PER_EPOCH,
                          tail=ITERS_PER_EPOCH)
    assert ckpt.endswith('epoch_3.pth')
    assert_weights_changed(initial[1], ckpt, [
        'backbone.layer2.0.conv1.weight', 'backbone.layer4.1.conv2.weight',
        'cam_head.classifier.weight'
    ])


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


def test_resume_is_exact_and_skips_a_truncated_checkpoint(
        trained, synthetic_voc_root, tmp_path):
    """A run killed while writing epoch_3.pth: --resume warns, continues from
    epoch_2.pth at iteration 13 and ends with the uninterrupted run's weights
    (same loss at every iteration)."""
    work, ckpt = trained
    resumed = interrupted_copy(work, 'epoch_2.pth', str(tmp_path / 'resumed'))
    with open(ckpt, 'rb') as f:
        head = f.read(os.path.getsize(ckpt) // 2)
    with open(osp.join(resumed, 'epoch_3.pth'), 'wb') as f:
        f.write(head)  # truncated, and named in last_checkpoint
    with open(osp.join(resumed, 'last_checkpoint'), 'w') as f:
        f.write(osp.join(resumed, 'epoch_3.pth'))
    out = run_tool('tools/train.py', DEMO_CONFIG, '--work-dir', resumed,
                   '--resume', *data_options(synthetic_voc_root, *EPOCHS))
    assert 'resuming from the previous one' in out
    records = train_records(resumed)
    first = 2 * ITERS_PER_EPOCH + 1
    assert [r['step'] for r in records] == list(
        range(first, 3 * ITERS_PER_EPOCH + 1))
    assert records[0]['epoch'] == 3
    uninterrupted = {r['step']: r['loss'] for r in train_records(work)}
    assert [r['loss'] for r in records] == [
        uninterrupted[r['step']] for r in records]
    assert_same_weights(ckpt, osp.join(resumed, 'epoch_3.pth'))


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


def test_stock_mmseg_tools_train_and_test_the_config(synthetic_voc_root,
                                                     initial, tmp_path):
    """MMSegmentation's own tools/train.py and tools/test.py (the ones pip
    installs under mmseg/.mim) run our config unchanged: the config's
    custom_imports register qaclims_mm."""
    import glob
    import json

    import mmseg
    stock = osp.join(osp.dirname(mmseg.__file__), '.mim', 'tools')
    work = str(tmp_path / 'stock')
    run_tool(osp.join(stock, 'train.py'), DEMO_CONFIG, '--work-dir', work,
             *data_options(synthetic_voc_root, 'train_cfg.max_epochs=1',
                           'param_scheduler.0.end=1',
                           'train_dataloader.batch_size=8',
                           f'load_from={initial[0]}', *PER_ITER_LOGGING))
    records = train_records(work)
    assert [r['step'] for r in records] == list(range(1, ITERS_PER_EPOCH + 1))
    assert_losses_finite(records, ('loss_cls', ))
    ckpt = osp.join(work, 'epoch_1.pth')
    assert_weights_changed(initial[1], ckpt, ['cam_head.classifier.weight'])
    run_tool(osp.join(stock, 'test.py'), DEMO_CONFIG, ckpt, '--work-dir',
             work, *data_options(synthetic_voc_root))
    # the stock test.py logs the metrics to <work>/<timestamp>/<timestamp>.json
    metrics = [json.load(open(p)) for p in sorted(glob.glob(
        osp.join(work, '*', '*.json'))) if 'mIoU' in open(p).read()]
    assert metrics, 'the stock tools/test.py logged no mIoU'
    assert 0 < metrics[-1]['mIoU'] < 100
    assert 0 < metrics[-1]['best_mIoU'] <= 100
