"""The segmentation stage through tools/train.py and tools/test.py: every
shipped DeepLab config type, shrunk, on the synthetic VOC with its GT masks
standing in for pseudo masks."""
import argparse
import os
import os.path as osp
import re
import subprocess
import sys

import pytest
import torch
from train_logs import (PER_ITER_LOGGING, assert_loss_decreases,
                        assert_losses_finite, assert_same_weights,
                        assert_weights_changed, interrupted_copy,
                        train_records)

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIGS = osp.join(REPO, 'configs/deeplab')
V2 = osp.join(CONFIGS, 'deeplabv2_r101-os8-msc_1xb10-ga2-30k_'
              'voc12aug-pseudo-321x321.py')
V2_COCOINIT = osp.join(CONFIGS, 'deeplabv2_r101-os8-msc-cocoinit_1xb5-ga2-'
                       '20k_voc12aug-pseudo-321x321.py')
V3P = osp.join(CONFIGS, 'deeplabv3plus_r101-d8_4xb4-40k_'
               'voc12aug-pseudo-512x512.py')


def run_tool(*args: str) -> str:
    env = dict(os.environ, PYTHONUNBUFFERED='1')
    proc = subprocess.run([sys.executable, *args], cwd=REPO, env=env,
                          capture_output=True, text=True)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-5000:]
    return out


def data_options(voc_root: str) -> list:
    """Synthetic data, GT masks of train_aug as the 'pseudo masks'."""
    opts = [
        f'train_dataloader.dataset.data_root={voc_root}',
        'train_dataloader.dataset.data_prefix.seg_map_path='
        'SegmentationClassAug', 'train_dataloader.batch_size=2'
    ]
    for loader in ('train', 'val', 'test'):
        opts += [f'{loader}_dataloader.num_workers=0',
                 f'{loader}_dataloader.persistent_workers=False']
        if loader != 'train':
            # the first 3 val images are enough to exercise the metric
            opts += [f'{loader}_dataloader.dataset.data_root={voc_root}',
                     f'{loader}_dataloader.dataset.indices=3']
    return opts


SHORT = ['train_cfg.max_iters=2', 'train_cfg.val_interval=2',
         'param_scheduler.0.end=2', 'default_hooks.checkpoint.interval=2',
         *PER_ITER_LOGGING]
# 6 iterations (3 optimiser steps of the accumulation-2 v2 config), a
# checkpoint every 2nd, validation at the end; from random weights, BN
# statistics of the batch (the untrained frozen ones blow activations up)
V2_ITERS = 6
LONGER = ['train_cfg.max_iters=6', 'train_cfg.val_interval=6',
          'param_scheduler.0.end=6', 'default_hooks.checkpoint.interval=2',
          'default_hooks.checkpoint.max_keep_ckpts=3',
          'optim_wrapper.optimizer.lr=0.01', 'model.backbone.norm_eval=False',
          'randomness.seed=0',
          *PER_ITER_LOGGING]
# ResNet-18 with 8 base channels (64 output channels), 64x64 crops
TINY_V2 = [
    'model.backbone.depth=18', 'model.backbone.stem_channels=8',
    'model.backbone.base_channels=8', 'model.backbone.init_cfg=None',
    'model.decode_head.in_channels=64', 'model.data_preprocessor.size=(64,64)',
    'train_dataloader.dataset.pipeline.3.crop_size=(64,64)'
]
TINY_V3P = [
    'model.backbone.depth=18', 'model.backbone.stem_channels=16',
    'model.backbone.base_channels=8', 'model.backbone.init_cfg=None',
    'model.decode_head.in_channels=64', 'model.decode_head.channels=16',
    'model.decode_head.c1_in_channels=8', 'model.decode_head.c1_channels=8',
    'model.auxiliary_head.in_channels=32', 'model.auxiliary_head.channels=16',
    'model.data_preprocessor.size=(64,64)',
    'train_dataloader.dataset.pipeline.2.scale=(256,64)',
    'train_dataloader.dataset.pipeline.3.crop_size=(64,64)'
]


NO_VAL = ['train_cfg.val_begin=100']


def train(config, voc_root, work, tiny, *extra, schedule=SHORT):
    out = run_tool('tools/train.py', config, '--work-dir', work,
                   '--cfg-options', *data_options(voc_root), *schedule,
                   *tiny, *extra)
    with open(osp.join(work, 'last_checkpoint')) as f:
        return out, f.read().strip()


def initial_checkpoint(config, tiny, path):
    """The model before training (random ResNet-18), saved for load_from."""
    from mmengine.config import Config, DictAction
    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS
    cfg = Config.fromfile(config)
    options = argparse.Namespace()
    DictAction(option_strings=[], dest='o')(None, options, tiny)
    cfg.merge_from_dict(options.o)
    init_default_scope('mmseg')
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    torch.save({'state_dict': state}, path)
    return path, state


def losses_logged(out: str) -> set:
    return set(re.findall(r'(decode\S*\.loss_\w+|aux\S*\.loss_\w+):', out))


V2_LOSSES = [
    f'decode_{n}.loss_balanced_ce'
    for n in ('scale1.0', 'scale0.5', 'scale0.75', 'max')
]


@pytest.fixture(scope='module')
def trained_v2(synthetic_voc_root, tmp_path_factory):
    root = tmp_path_factory.mktemp('deeplabv2')
    init, state = initial_checkpoint(V2, TINY_V2, str(root / 'init.pth'))
    work = str(root / 'work')
    out, ckpt = train(V2, synthetic_voc_root, work, TINY_V2,
                      f'load_from={init}', schedule=LONGER)
    return out, ckpt, work, state


def test_v2_trains_with_a_balanced_loss_per_msc_output(trained_v2):
    out, ckpt, work, initial = trained_v2
    assert osp.isfile(ckpt) and ckpt.endswith(f'iter_{V2_ITERS}.pth')
    assert losses_logged(out) == set(V2_LOSSES)
    records = train_records(work)
    assert [r['step'] for r in records] == list(range(1, V2_ITERS + 1))
    assert_losses_finite(records, V2_LOSSES)
    assert_loss_decreases(records, head=2, tail=2)
    assert_weights_changed(initial, ckpt, [
        'backbone.layer4.1.conv2.weight',
        'decode_head.convs.0.weight'
    ])
    # validation on VOC val GT at the end of training, CRF off by default
    assert 'MSCEncoderDecoder: dense CRF post-processing: OFF' in out
    assert 0. <= miou(out) <= 100.


def test_v2_resume_is_exact(trained_v2, synthetic_voc_root, tmp_path):
    """Killed after iteration 2: --resume replays the data of iterations 1-2,
    logs iterations 3.. with the uninterrupted run's losses and ends with its
    weights."""
    _, ckpt, work, _ = trained_v2
    resumed = interrupted_copy(work, 'iter_2.pth', str(tmp_path / 'resumed'))
    run_tool('tools/train.py', V2, '--work-dir', resumed, '--resume',
             '--cfg-options', *data_options(synthetic_voc_root), *LONGER,
             *TINY_V2)
    records = train_records(resumed)
    assert [r['step'] for r in records] == list(range(3, V2_ITERS + 1))
    uninterrupted = {r['step']: r['loss'] for r in train_records(work)}
    assert [r['loss'] for r in records] == [
        uninterrupted[r['step']] for r in records]
    assert_same_weights(ckpt, osp.join(resumed, f'iter_{V2_ITERS}.pth'))


def test_v2_cocoinit_trains_with_plain_ce(synthetic_voc_root, tmp_path):
    out, _ = train(V2_COCOINIT, synthetic_voc_root, str(tmp_path), TINY_V2,
                   *NO_VAL)
    assert losses_logged(out) == {
        f'decode_{n}.loss_ce'
        for n in ('scale1.0', 'scale0.5', 'scale0.75', 'max')
    }


def test_v3plus_trains(synthetic_voc_root, tmp_path):
    out, _ = train(V3P, synthetic_voc_root, str(tmp_path), TINY_V3P, *NO_VAL)
    assert losses_logged(out) == {'decode.loss_ce', 'aux.loss_ce'}


def miou(out: str) -> float:
    m = re.search(r'mIoU: ([\d.]+)', out)
    assert m, out[-3000:]
    return float(m.group(1))


@pytest.mark.parametrize('crf', [False, True])
def test_v2_test_with_and_without_crf(trained_v2, synthetic_voc_root,
                                      tmp_path, crf):
    _, ckpt, _, _ = trained_v2
    pred_dir = tmp_path / 'pred'
    out = run_tool('tools/test.py', V2, ckpt, '--work-dir', str(tmp_path),
                   '--out', str(pred_dir), '--cfg-options',
                   *data_options(synthetic_voc_root), *TINY_V2,
                   f'model.test_cfg.crf={crf}')
    state = 'ON' if crf else 'OFF'
    assert f'MSCEncoderDecoder: dense CRF post-processing: {state}' in out
    assert 0. <= miou(out) <= 100.
    assert len(os.listdir(pred_dir)) == 3  # the first 3 val images


def test_v2_tta_applies_the_crf_once(trained_v2, synthetic_voc_root,
                                     tmp_path):
    _, ckpt, _, _ = trained_v2
    out = run_tool('tools/test.py', V2, ckpt, '--tta', '--work-dir',
                   str(tmp_path), '--cfg-options',
                   *data_options(synthetic_voc_root), *TINY_V2,
                   'model.test_cfg.crf=True',
                   'test_dataloader.dataset.indices=1')  # 12 passes / image
    assert 'DenseCRFSegTTAModel: dense CRF post-processing: ON' in out
    assert 'MSCEncoderDecoder: dense CRF' not in out  # no per-pass line
    assert 0. <= miou(out) <= 100.
