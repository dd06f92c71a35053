"""The segmentation stage through tools/train.py and tools/test.py: every
shipped DeepLab config type, shrunk, on the synthetic VOC with its GT masks
standing in for pseudo masks."""
import os
import os.path as osp
import re
import subprocess
import sys

import pytest

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
         'default_hooks.logger.interval=1']
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


def train(config, voc_root, work, tiny, *extra):
    out = run_tool('tools/train.py', config, '--work-dir', work,
                   '--cfg-options', *data_options(voc_root), *SHORT, *tiny,
                   *extra)
    with open(osp.join(work, 'last_checkpoint')) as f:
        return out, f.read().strip()


def losses_logged(out: str) -> set:
    return set(re.findall(r'(decode\S*\.loss_\w+|aux\S*\.loss_\w+):', out))


@pytest.fixture(scope='module')
def trained_v2(synthetic_voc_root, tmp_path_factory):
    work = str(tmp_path_factory.mktemp('deeplabv2'))
    out, ckpt = train(V2, synthetic_voc_root, work, TINY_V2)
    return out, ckpt


def test_v2_trains_with_a_balanced_loss_per_msc_output(trained_v2):
    out, ckpt = trained_v2
    assert osp.isfile(ckpt) and ckpt.endswith('iter_2.pth')
    assert losses_logged(out) == {
        f'decode_{n}.loss_balanced_ce'
        for n in ('scale1.0', 'scale0.5', 'scale0.75', 'max')
    }
    assert 'Iter(train) [2/2]' in out
    # validation on VOC val GT at the end of training, CRF off by default
    assert 'MSCEncoderDecoder: dense CRF post-processing: OFF' in out
    assert 0. <= miou(out) <= 100.


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
    _, ckpt = trained_v2
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
    _, ckpt = trained_v2
    out = run_tool('tools/test.py', V2, ckpt, '--tta', '--work-dir',
                   str(tmp_path), '--cfg-options',
                   *data_options(synthetic_voc_root), *TINY_V2,
                   'model.test_cfg.crf=True',
                   'test_dataloader.dataset.indices=1')  # 12 passes / image
    assert 'DenseCRFSegTTAModel: dense CRF post-processing: ON' in out
    assert 'MSCEncoderDecoder: dense CRF' not in out  # no per-pass line
    assert 0. <= miou(out) <= 100.
