"""Bad input to the CAM / label tools fails early with a clear message."""
import importlib.util
import os.path as osp
import re

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from qaclims_mm.evaluation.cam_sweep import sweep_confusion
from qaclims_mm.evaluation.offline import evaluate_cam_dir
from qaclims_mm.utils.cam_file import save_cam

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def load_tool(name):
    spec = importlib.util.spec_from_file_location(
        f'tool_{name}', osp.join(REPO, 'tools', name + '.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def data(tmp_path):
    """Two images: CAM files (stride 4 + full size), GT PNGs, JPEGs."""
    rng = np.random.default_rng(0)
    cam_dir, gt_dir, img_dir = (tmp_path / n for n in ('cams', 'gt', 'img'))
    gt_dir.mkdir()
    img_dir.mkdir()
    ids = ['2007_000001', '2007_000002']
    for i, img_id in enumerate(ids):
        h, w = 22 + i, 30 - i  # not multiples of 4
        small = rng.random((2, -(-h // 4), -(-w // 4))).astype(np.float32)
        high = rng.random((2, h, w)).astype(np.float32)
        save_cam(str(cam_dir / f'{img_id}.npz'), [3, 11], small, high)
        gt = rng.choice([0, 4, 12, 255], (h, w)).astype(np.uint8)
        Image.fromarray(gt).save(str(gt_dir / f'{img_id}.png'))
        Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(
            str(img_dir / f'{img_id}.jpg'), quality=95)
    split = tmp_path / 'split.txt'
    split.write_text('\n'.join(ids) + '\n')
    empty = tmp_path / 'empty.txt'
    empty.write_text('\n')
    return dict(cam=str(cam_dir), gt=str(gt_dir), img=str(img_dir),
                split=str(split), empty=str(empty), ids=ids, tmp=tmp_path)


def test_eval_tools_refuse_an_empty_split(data):
    eval_cam = load_tool('eval_cam')
    with pytest.raises(SystemExit, match='empty.txt lists no image'):
        eval_cam.main(['--cam-dir', data['cam'], '--gt-dir', data['gt'],
                       '--split-file', data['empty']])
    eval_pm = load_tool('eval_pseudo_masks')
    with pytest.raises(SystemExit, match='empty.txt lists no image'):
        eval_pm.main(['--pseudo-dir', data['gt'], '--gt-dir', data['gt'],
                      '--split-file', data['empty']])


@pytest.mark.parametrize('tool,argv,message', [
    ('eval_cam', ['--thr', '1.5'], '--thr must lie in'),
    ('eval_cam', ['--sweep', '-0.1', '0.5', '0.1'], '--sweep START'),
    ('make_pseudo_labels', ['--thr', '-0.2', '--out-dir', 'x'],
     '--thr must lie in'),
    ('make_ir_labels', ['--fg-thr', '1.3', '--out-dir', 'x', '--img-dir',
                        'y'], '--fg-thr must lie in'),
    ('make_ir_labels', ['--fg-thr', '0.1', '--bg-thr', '0.3', '--out-dir',
                        'x', '--img-dir', 'y'],
     r'--bg-thr \(0.3\) must not exceed --fg-thr \(0.1\)'),
])
def test_thresholds_are_checked_up_front(data, capsys, tool, argv, message):
    module = load_tool(tool)
    out = osp.join(str(data['tmp']), 'x')
    argv = [out if a == 'x' else a for a in argv]
    base = ['--cam-dir', data['cam'], '--split-file', data['split']]
    if tool == 'eval_cam':
        base += ['--gt-dir', data['gt']]
    with pytest.raises(SystemExit) as exc:
        module.main(base + argv)
    assert exc.value.code == 2  # argparse usage error: before any work
    assert re.search(message, capsys.readouterr().err)
    assert not osp.exists(out)


def test_library_threshold_checks(data):
    from qaclims_mm.evaluation.metrics.cam_metric import CAMIoUMetric
    from qaclims_mm.refine.stages import make_ir_labels
    from qaclims_mm.refine.stages import write_pseudo_labels
    out = str(data['tmp'] / 'out')
    with pytest.raises(ValueError, match='threshold must lie in'):
        write_pseudo_labels(data['cam'], data['ids'], out, threshold=2)
    with pytest.raises(ValueError, match=r'bg_thr \(0.5\) must not exceed'):
        # fails before the first job (no image is read, nothing written)
        make_ir_labels(data['cam'], '/nonexistent', data['ids'], out,
                       fg_thr=0.3, bg_thr=0.5)
    with pytest.raises(ValueError, match='threshold must lie in'):
        CAMIoUMetric(threshold=-0.1)
    assert not osp.exists(out)


def test_eval_cam_stride4_is_upsampled(data, capsys):
    """``--cam-type cam`` scores the stride-4 maps upsampled 4x (bilinear,
    align_corners=False) and cropped to the GT, as the official random walk
    brings them to full resolution."""
    from qaclims_mm.evaluation.cam_labels import upsample_strided_cams
    thresholds = [0.15, 0.4]
    conf = evaluate_cam_dir(data['cam'], data['gt'], data['ids'], thresholds,
                            cam_type='cam')
    expected = 0
    for img_id in data['ids']:
        with np.load(osp.join(data['cam'], img_id + '.npz')) as f:
            small, keys = f['cam'], f['keys']
        gt = np.asarray(Image.open(osp.join(data['gt'], img_id + '.png')))
        h, w = gt.shape
        up = F.interpolate(torch.from_numpy(small)[None], scale_factor=4,
                           mode='bilinear',
                           align_corners=False)[0, :, :h, :w].numpy()
        np.testing.assert_allclose(upsample_strided_cams(small, (h, w)), up)
        expected = expected + sweep_confusion(up, keys, gt, thresholds, 20)
    np.testing.assert_array_equal(conf, expected)
    assert conf[0, :, 1:].sum() > 0  # foreground predicted: not vacuous
    tool = load_tool('eval_cam')
    assert tool.main(['--cam-dir', data['cam'], '--gt-dir', data['gt'],
                      '--split-file', data['split'], '--cam-type', 'cam',
                      '--no-sweep']) == 0
    assert "CAM type 'cam'" in capsys.readouterr().out
    with pytest.raises(ValueError, match=r'\(5, 9\) do not match'):
        upsample_strided_cams(np.zeros((1, 5, 9), np.float32), (22, 30))


def test_truncated_jpeg_names_id_and_path(data):
    pytest.importorskip('pydensecrf')
    from qaclims_mm.refine.stages import make_ir_labels
    bad = osp.join(data['img'], data['ids'][1] + '.jpg')
    with open(bad, 'rb') as f:
        head = f.read()
    with open(bad, 'wb') as f:
        f.write(head[:len(head) // 2])
    with pytest.raises(OSError,
                       match=rf"'{data['ids'][1]}'.*{bad}.*truncated"):
        make_ir_labels(data['cam'], data['img'], data['ids'],
                       str(data['tmp'] / 'ir'), progress=False)
    tool = load_tool('make_ir_labels')
    with pytest.raises(SystemExit, match=rf"{data['ids'][1]}.*{bad}"):
        tool.main(['--cam-dir', data['cam'], '--img-dir', data['img'],
                   '--split-file', data['split'], '--out-dir',
                   str(data['tmp'] / 'ir2'), '--nproc', '2'])


def test_test_tool_cam_dir_is_relative_to_cwd(tmp_path, monkeypatch):
    tool = load_tool('test')
    config = osp.join(
        REPO, 'configs/cam/cam_r18-os16_1xb16-12e_synthetic-voc-160x160.py')
    monkeypatch.chdir(tmp_path)
    for flag in ('--cam-dir', '--out'):
        args = tool.parse_args([config, 'ckpt.pth', '--work-dir', 'work',
                                flag, 'cams/train'])
        cfg = tool.build_config(args)
        hooks = [h for h in cfg.custom_hooks if h['type'] == 'SaveCAMHook']
        assert len(hooks) == 1
        assert hooks[0]['out_dir'] == str(tmp_path / 'cams' / 'train'), flag
