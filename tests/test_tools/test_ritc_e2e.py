"""QA-CLIMS and CLIMS training iterations through tools/train.py.

The corpus is built with the QAPE library from answer records, its text cache
with ``tools/build_text_cache.py``; CLIP is a tiny random open_clip model saved
to disk, so the real loading code runs.
"""
import os
import os.path as osp
import subprocess
import sys

import pytest
import torch
from train_logs import (assert_loss_decreases, assert_losses_finite,
                        assert_weights_changed, train_records)

from qaclims_mm.datasets.labels_file import load_labels_file
from qaclims_mm.qape import build_corpus, build_question_set, save_corpus
from qaclims_mm.datasets.class_names import VOC_CLASSES
from qaclims_mm.testing import (TINY_CLIP_TEXT, TINY_CLIP_VISION,
                                save_tiny_clip)

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
VISION, TEXT = TINY_CLIP_VISION, TINY_CLIP_TEXT


def run(*args: str) -> str:
    proc = subprocess.run([sys.executable, *args], cwd=REPO,
                          capture_output=True, text=True,
                          env=dict(os.environ, PYTHONUNBUFFERED='1'))
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    return out


@pytest.fixture(scope='module')
def assets(synthetic_voc_root, tmp_path_factory):
    root = tmp_path_factory.mktemp('ritc')
    text_dir = root / 'text'
    save_tiny_clip(str(root / 'clip.pt'), str(text_dir))
    # a corpus for every labelled pair; one pair's BG answers are all its own
    # class name, so it has no BG text left and the losses skip it
    labels = load_labels_file(osp.join(synthetic_voc_root, 'cls_labels.json'))
    records = []
    for i, (img_id, idx) in enumerate(sorted(labels.items())):
        for c in idx:
            name = VOC_CLASSES[c]
            bg = ([name] * 10 if i == 0 else
                  ['sky', 'water', 'grass', 'road', 'wall', 'sky', 'tree',
                   'field', 'room', 'street'])
            records.append(dict(img_id=img_id, class_name=name,
                                fg=['big', 'small', name, 'old', 'new', 'red'],
                                bg=bg))
    corpus = build_corpus(records, build_question_set())
    save_corpus(str(root / 'corpus.json'), corpus)
    run('tools/build_text_cache.py', '--corpus', str(root / 'corpus.json'),
        '--model', f'local-dir:{text_dir}', '--out', str(root / 'cache'),
        '--classes', 'voc')
    # the CLIMS class / background prompts, as README "CLIMS" builds them
    run('tools/build_text_cache.py', '--clims-prompts', '--classes', 'voc',
        '--model', f'local-dir:{text_dir}', '--out',
        str(root / 'clims_prompts'))
    return dict(root=root, clip=str(root / 'clip.pt'), text=str(text_dir),
                cache=str(root / 'cache'),
                clims_prompts=str(root / 'clims_prompts'))


def write_config(path, base, voc_root, overrides: str,
                 batch_size: int = 2, qa_cache: str = None) -> str:
    """A shrunk config over ``base``: the inherited training pipeline with
    smaller sizes (and the test's QA cache, if any); training sees the same
    ``batch_size`` images every iteration (one batch, differently
    augmented), so its loss must fall."""
    with open(path, 'w') as f:
        f.write(f"""
_base_ = [{base!r}]
data_root = {voc_root!r}
load_from = None
small = dict(RandomLongSideResize=dict(long_range=(64, 96)),
             RandomCropWithPad=dict(crop_size=64),
             LoadQACorpus=dict(cache_prefix={qa_cache!r}))
train_pipeline = [dict(t, **small.get(t['type'], {{}}))
                  for t in _base_.train_pipeline]
train_dataloader = dict(batch_size={batch_size}, num_workers=0,
                        persistent_workers=False,
                        dataset=dict(data_root=data_root,
                                     indices={batch_size},
                                     pipeline=train_pipeline))
test_dataloader = dict(num_workers=0, persistent_workers=False,
                       dataset=dict(data_root=data_root))
randomness = dict(seed=0)
# a visible fall of the loss within a few iterations
optim_wrapper = dict(optimizer=dict(lr=0.01))
log_processor = dict(window_size=1)  # one unsmoothed record per iteration
{overrides}
""")
    return str(path)


def save_initial_checkpoint(cfg_path: str, path: str) -> dict:
    """Build the config's model (random backbone) and save it as the
    ``load_from`` of the run: the weights the run starts from."""
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS
    init_default_scope('mmseg')
    torch.manual_seed(0)
    model = MODELS.build(Config.fromfile(cfg_path).model)
    model.init_weights()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    torch.save({'state_dict': state}, path)
    return state


# trainable in every variant (the stem is frozen by the RITC schedule)
MOVING = ['cam_head.classifier.weight']


QACLIMS_ITERS = 6
QACLIMS_CONFIGS = {
    'r18': ('qaclims_r50-os16_2xb4-19830it_voc12aug-512x512.py',
            "backbone=dict(depth=18), cam_head=dict(in_channels=512,"),
    'convnext': ('qaclims_convnext-atto_2xb4-19830it_voc12aug-512x512.py',
                 "cam_head=dict("),
}


@pytest.mark.parametrize('variant', sorted(QACLIMS_CONFIGS))
def test_qaclims_iterations_and_cam_inference(assets, synthetic_voc_root,
                                              variant):
    """3 iterations of the QA-CLIMS config (and of its other-backbone
    variant), then CAM inference with the trained checkpoint."""
    name, model_start = QACLIMS_CONFIGS[variant]
    base = osp.join(REPO, 'configs/qaclims', name)
    cfg = write_config(
        assets['root'] / f'qaclims_{variant}.py', base, synthetic_voc_root,
        f"""
model = dict(
    {model_start} clip_input_size=32,
                  clip=dict(model_name='tiny', model_cfg={VISION!r},
                            weights={assets['clip']!r},
                            ovseg_checkpoint=None)))
train_cfg = dict(max_iters=ITERS)
param_scheduler = [dict(type='PolyLR', power=0.9, eta_min=0., begin=0,
                        end=ITERS, by_epoch=False)]
default_hooks = dict(logger=dict(interval=1),
                     checkpoint=dict(interval=ITERS))
""".replace('ITERS', str(QACLIMS_ITERS)), qa_cache=assets['cache'])
    init = str(assets['root'] / f'init_{variant}.pth')
    initial = save_initial_checkpoint(cfg, init)
    work = str(assets['root'] / f'work_qaclims_{variant}')
    run('tools/train.py', cfg, '--work-dir', work, '--cfg-options',
        f'load_from={init}')
    records = train_records(work)
    assert [r['step'] for r in records] == list(range(1, QACLIMS_ITERS + 1))
    assert_losses_finite(records, ('loss_frc', 'loss_brc', 'loss_reg'))
    # the tiny random CLIP leaves the contrastive terms nearly flat; the
    # total still falls on this one batch
    assert_loss_decreases(records, head=2, tail=2)
    ckpt_path = osp.join(work, f'iter_{QACLIMS_ITERS}.pth')
    assert_weights_changed(initial, ckpt_path, MOVING)
    ckpt = torch.load(ckpt_path, map_location='cpu', weights_only=False)
    keys = ckpt['state_dict'].keys()
    assert 'cam_head.classifier.weight' in keys
    assert not any('clip' in k for k in keys)  # the frozen CLIP is not saved
    cam_dir = str(assets['root'] / f'cams_{variant}')
    run('tools/test.py', cfg, ckpt_path, '--work-dir',
        work, '--cam-dir', cam_dir)
    assert len(os.listdir(cam_dir)) > 0


def test_clims_iterations(assets, synthetic_voc_root):
    base = osp.join(REPO, 'configs/clims/'
                    'clims_r50-os16_1xb16-15e_voc12aug-512x512.py')
    cfg = write_config(
        assets['root'] / 'clims.py', base, synthetic_voc_root,
        f"""
model = dict(
    backbone=dict(depth=18),
    cam_head=dict(in_channels=512, clip_input_size=32,
                  clip=dict(model_name='tiny', model_cfg={VISION!r},
                            weights={assets['clip']!r}),
                  text_source=dict(cache={assets['clims_prompts']!r})))
train_cfg = dict(max_epochs=6)  # of one batch each
param_scheduler = [dict(type='PolyLR', power=0.9, eta_min=0., begin=0,
                        end=6, by_epoch=True, convert_to_iter_based=True)]
default_hooks = dict(logger=dict(interval=1))
""", batch_size=8)
    init = str(assets['root'] / 'init_clims.pth')
    initial = save_initial_checkpoint(cfg, init)
    work = str(assets['root'] / 'work_clims')
    run('tools/train.py', cfg, '--work-dir', work, '--cfg-options',
        f'load_from={init}')
    records = train_records(work)
    assert [r['step'] for r in records] == list(range(1, 7))
    assert_losses_finite(records,
                         ('loss_otm', 'loss_btm', 'loss_cbs', 'loss_reg'))
    # the CBS hinge only switches on as OTM pulls the foreground towards its
    # class text, so the total rises at first: check the main objective
    assert_loss_decreases(records, 'loss_otm', head=2, tail=2)
    assert_weights_changed(initial, osp.join(work, 'epoch_6.pth'), MOVING)
