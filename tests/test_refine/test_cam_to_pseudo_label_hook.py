"""CAMToPseudoLabelHook through a real tools/test.py run of the demo config."""
import os
import os.path as osp
import subprocess
import sys

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from PIL import Image

from qaclims_mm.datasets.class_names import VOC_PALETTE
from qaclims_mm.evaluation.cam_labels import cams_to_label
from qaclims_mm.refine.ir_label import (crf_threshold_label, make_ir_label,
                                        read_rgb)
from qaclims_mm.utils.label_io import IGNORE_COLOR
from qaclims_mm.utils.cam_file import load_cam
from qaclims_mm.utils.io import read_split

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
IRN_CONFIG = osp.join(REPO, 'configs/irn/irn_r50_1xb32-3e_voc12aug-512x512.py')
R18_CHANNELS = (64, 64, 128, 256, 512)
DEMO_CONFIG = osp.join(
    REPO, 'configs/cam/cam_r18-os16_1xb16-12e_synthetic-voc-160x160.py')
SPLIT = 'ImageSets/Segmentation/train_aug.txt'
NUM_IMAGES = 8  # the first images of train_aug: keeps the CPU run short


def test_modes_are_checked():
    init_default_scope('mmseg')
    from qaclims_mm.engine.hooks.cam_to_pseudo_label_hook import \
        CAMToPseudoLabelHook
    with pytest.raises(ValueError, match='config and checkpoint'):
        CAMToPseudoLabelHook('out', refiner=dict(type='RandomWalkRefiner',
                                                 irn=dict()))
    with pytest.raises(FileNotFoundError, match='nowhere.py'):
        CAMToPseudoLabelHook('out', refiner=dict(
            type='RandomWalkRefiner',
            irn=dict(config='nowhere.py', checkpoint='x.pth')))
    with pytest.raises(KeyError, match='DenseRefiner'):
        CAMToPseudoLabelHook('out', refiner=dict(type='DenseRefiner'))
    with pytest.raises(ValueError, match='bg_thr'):
        CAMToPseudoLabelHook('out', refiner=dict(
            type='IRLabelRefiner', fg_threshold=0.1, bg_threshold=0.3))


def test_refine_config_writes_crf_labels_of_train_aug():
    init_default_scope('mmseg')
    from mmseg.registry import HOOKS

    import qaclims_mm.engine.hooks.cam_to_pseudo_label_hook  # noqa: F401
    cfg = Config.fromfile(
        osp.join(REPO, 'configs/refine/cam2label_crf_voc12aug.py'))
    assert cfg.test_dataloader.dataset.ann_file == SPLIT
    assert cfg.test_dataloader.dataset.with_seg_map is False
    hooks = [HOOKS.build(h) for h in cfg.custom_hooks]
    crf_hooks = [
        h for h in hooks if type(h).__name__ == 'CAMToPseudoLabelHook'
    ]
    assert len(crf_hooks) == 1
    assert type(crf_hooks[0].refiner).__name__ == 'CRFRefiner'
    assert crf_hooks[0].refiner.threshold == 0.15


def run_test_tool(config: str, ckpt: str, work: str) -> str:
    proc = subprocess.run(
        [sys.executable, 'tools/test.py', config, ckpt, '--work-dir', work],
        cwd=REPO, capture_output=True, text=True,
        env=dict(os.environ, PYTHONUNBUFFERED='1'))
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    return out


@pytest.fixture(scope='module')
def hook_run(synthetic_voc_root, tmp_path_factory):
    """A test run on train_aug with the hook in three settings."""
    root = tmp_path_factory.mktemp('hook_run')
    # a random ResNet-18 whose classifier weights are positive: every class
    # map is non-zero (features are post-ReLU), so labels are not trivial
    init_default_scope('mmseg')
    import qaclims_mm  # noqa: F401
    from mmseg.registry import MODELS
    torch.manual_seed(0)
    model = MODELS.build(Config.fromfile(DEMO_CONFIG).model)
    state = model.state_dict()
    state['cam_head.classifier.weight'] = state[
        'cam_head.classifier.weight'].abs()
    ckpt = str(root / 'model.pth')
    torch.save({'state_dict': state, 'meta': {}}, ckpt)

    dirs = {name: str(root / name)
            for name in ('cams', 'thr', 'crf', 'ir', 'rw')}
    # a tiny random IRNet for the random-walk mode
    ids = read_split(osp.join(synthetic_voc_root, SPLIT))[:NUM_IMAGES]
    (root / 'ids.txt').write_text(''.join(i + '\n' for i in ids))
    irn_config = root / 'irn.py'
    irn_config.write_text(f"""
_base_ = [{IRN_CONFIG!r}]
model = dict(backbone=dict(depth=18, init_cfg=None),
             edge_head=dict(in_channels={R18_CHANNELS}),
             displacement_head=dict(in_channels={R18_CHANNELS}))
train_dataloader = dict(dataset=dict(
    data_root={synthetic_voc_root!r}, ann_file={str(root / 'ids.txt')!r}))
""")
    torch.manual_seed(0)
    irn = MODELS.build(Config.fromfile(str(irn_config)).model)
    irn_ckpt = str(root / 'irn.pth')
    torch.save({'state_dict': irn.state_dict(), 'meta': {}}, irn_ckpt)
    config = root / 'cam2label.py'
    config.write_text(f"""
_base_ = [{DEMO_CONFIG!r}]
custom_imports = dict(
    imports=['qaclims_mm', 'qaclims_mm.engine.hooks.cam_to_pseudo_label_hook'],
    allow_failed_imports=False)
test_dataloader = dict(
    num_workers=0,
    dataset=dict(
        data_root={synthetic_voc_root!r}, ann_file={SPLIT!r},
        with_seg_map=False, indices={NUM_IMAGES},
        # one scale (plus flip) instead of four: same hook, less CPU
        pipeline=[
            dict(type='LoadImageFromFile'),
            dict(type='MultiScaleImages', scales=(1.0, )),
            dict(type='LoadOptionalAnnotations'),
            dict(type='PackWSSSInputs'),
        ]))
custom_hooks = [
    dict(type='SaveCAMHook', out_dir={dirs['cams']!r}),
    dict(type='CAMToPseudoLabelHook', out_dir={dirs['thr']!r},
         refiner=dict(type='ThresholdRefiner', threshold=0.15)),
    dict(type='CAMToPseudoLabelHook', out_dir={dirs['crf']!r},
         refiner=dict(type='CRFRefiner', threshold=0.15), num_workers=2),
    dict(type='CAMToPseudoLabelHook', out_dir={dirs['ir']!r},
         refiner=dict(type='IRLabelRefiner', fg_threshold=0.30,
                      bg_threshold=0.10)),
    dict(type='CAMToPseudoLabelHook', out_dir={dirs['rw']!r},
         refiner=dict(type='RandomWalkRefiner',
                      irn=dict(config={str(irn_config)!r},
                               checkpoint={irn_ckpt!r}))),
]
""")
    work = str(root / 'work')
    first = run_test_tool(str(config), ckpt, work)
    mtimes = {
        name: {f: os.stat(osp.join(d, f)).st_mtime_ns
               for f in os.listdir(d)}
        for name, d in dirs.items() if name != 'cams'
    }
    second = run_test_tool(str(config), ckpt, work)
    return dict(dirs=dirs, first=first, second=second, mtimes=mtimes,
                irn_config=str(irn_config), irn_ckpt=irn_ckpt, root=root,
                ids=read_split(osp.join(synthetic_voc_root,
                                        SPLIT))[:NUM_IMAGES],
                voc=synthetic_voc_root)


def read_png(path: str):
    with Image.open(path) as img:
        return img.mode, img.getpalette(), np.asarray(img)


def test_one_png_per_image_with_reference_values(hook_run):
    dirs, ids = hook_run['dirs'], hook_run['ids']
    assert len(ids) > 0
    num_fg = 0
    saw_ignore = False
    for name in ('thr', 'crf', 'ir'):
        assert sorted(os.listdir(dirs[name])) == sorted(
            [f'{i}.png' for i in ids] + ['settings.json'])
    for img_id in ids:
        cam = load_cam(osp.join(dirs['cams'], img_id + '.npz'), 20,
                       fields=('high_res', ))
        image = read_rgb(osp.join(hook_run['voc'], 'JPEGImages',
                                  img_id + '.jpg'))
        expected = {
            'thr': cams_to_label(cam['high_res'], cam['keys'], 0.15),
            'crf': crf_threshold_label(image, cam['high_res'], cam['keys'],
                                       0.15),
            'ir': make_ir_label(image, cam['high_res'], cam['keys'], 0.30,
                                0.10),
        }
        for name, reference in expected.items():
            mode, palette, label = read_png(
                osp.join(dirs[name], img_id + '.png'))
            assert mode == 'P'
            assert palette[:63] == [c for rgb in VOC_PALETTE for c in rgb]
            assert palette[3 * 255:3 * 256] == list(IGNORE_COLOR)
            np.testing.assert_array_equal(label, reference,
                                          err_msg=f'{name} {img_id}')
            allowed = {0, *(cam['keys'] + 1).tolist()}
            if name == 'ir':
                allowed.add(255)
                saw_ignore |= bool((label == 255).any())
            assert set(np.unique(label).tolist()) <= allowed
        num_fg += int((expected['thr'] > 0).any())
    assert num_fg > 0 and saw_ignore  # the check is not vacuous


def test_second_run_skips_everything(hook_run):
    n = len(hook_run['ids'])
    assert hook_run['first'].count(f'{n} pseudo label(s) written') == 4
    assert hook_run['second'].count(
        f'0 pseudo label(s) written, {n} already present') == 4
    for name, before in hook_run['mtimes'].items():
        d = hook_run['dirs'][name]
        assert {f: os.stat(osp.join(d, f)).st_mtime_ns
                for f in os.listdir(d)} == before
    # the log says where to point seg_map_path
    assert (f"data_prefix=dict(img_path='JPEGImages', "
            f"seg_map_path='{hook_run['dirs']['crf']}')") in hook_run['first']


def test_random_walk_mode_equals_the_tool(hook_run):
    """The hook's random-walk labels == make_sem_seg_labels.py on the saved
    CAMs with the same IRNet (one code path, two entry points)."""
    out = str(hook_run['root'] / 'rw_tool')
    proc = subprocess.run(
        [sys.executable, 'tools/make_sem_seg_labels.py',
         hook_run['irn_config'], hook_run['irn_ckpt'], '--cam-dir',
         hook_run['dirs']['cams'], '--out-dir', out, '--no-progress'],
        cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    names = sorted(f for f in os.listdir(hook_run['dirs']['rw'])
                   if f.endswith('.png'))
    assert names == sorted(f'{i}.png' for i in hook_run['ids'])
    assert sorted(os.listdir(out)) == names + ['settings.json']
    saw_fg = False
    for name in names:
        ours = read_png(osp.join(hook_run['dirs']['rw'], name))[2]
        ref = read_png(osp.join(out, name))[2]
        np.testing.assert_array_equal(ours, ref)
        saw_fg |= bool((ours > 0).any())
    assert saw_fg
    assert 'RandomWalkRefiner(' in hook_run['first']
    # another background threshold into the same folder is refused, the
    # files stay as they are
    before = {n: os.stat(osp.join(out, n)).st_mtime_ns for n in names}
    proc = subprocess.run(
        [sys.executable, 'tools/make_sem_seg_labels.py',
         hook_run['irn_config'], hook_run['irn_ckpt'], '--cam-dir',
         hook_run['dirs']['cams'], '--out-dir', out, '--no-progress',
         '--bg-thr', '0.35'], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode != 0
    assert "'bg_thr': 0.2" in proc.stderr and '0.35' in proc.stderr, (
        proc.stderr[-2000:])
    assert {n: os.stat(osp.join(out, n)).st_mtime_ns
            for n in names} == before
