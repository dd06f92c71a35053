import importlib.util
import os
import os.path as osp

import numpy as np
import pytest
from PIL import Image

from qaclims_mm.datasets.class_names import VOC_PALETTE
from qaclims_mm.evaluation.cam_labels import cams_to_label
from qaclims_mm.refine.stages import write_pseudo_labels
from qaclims_mm.utils.cam_file import save_cam

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def make_cams(cam_dir, num_images=3, size=(7, 9), seed=0):
    rng = np.random.default_rng(seed)
    data = {}
    for i in range(num_images):
        num_maps = i % 3  # includes an image without maps
        keys = np.sort(rng.choice(20, num_maps, replace=False))
        high_res = rng.random((num_maps, ) + size).astype(np.float32)
        img_id = f'2007_{i:06d}'
        save_cam(osp.join(cam_dir, img_id + '.npz'), keys,
                 high_res[:, ::4, ::4], high_res)
        data[img_id] = (high_res, keys)
    return data


def load_tool(name):
    spec = importlib.util.spec_from_file_location(
        name, osp.join(REPO, 'tools', name + '.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_values_and_palette(tmp_path):
    cam_dir, out_dir = str(tmp_path / 'cams'), str(tmp_path / 'labels')
    data = make_cams(cam_dir)
    written = write_pseudo_labels(cam_dir, list(data), out_dir,
                                  threshold=0.4, progress=False)
    assert written == 3
    for img_id, (high_res, keys) in data.items():
        with Image.open(osp.join(out_dir, img_id + '.png')) as img:
            assert img.mode == 'P'
            label = np.asarray(img)
            palette = img.getpalette()[:len(VOC_PALETTE) * 3]
        np.testing.assert_array_equal(label,
                                      cams_to_label(high_res, keys, 0.4))
        assert palette == [c for rgb in VOC_PALETTE for c in rgb]
        assert set(np.unique(label)) <= {0} | set((keys + 1).tolist())
    # no temp files left behind
    assert sorted(os.listdir(out_dir)) == sorted(
        [i + '.png' for i in data] + ['settings.json'])


def test_resume_and_overwrite(tmp_path):
    cam_dir, out_dir = str(tmp_path / 'cams'), str(tmp_path / 'labels')
    data = make_cams(cam_dir)
    ids = list(data)
    assert write_pseudo_labels(cam_dir, ids[:1], out_dir,
                               progress=False) == 1
    first = osp.join(out_dir, ids[0] + '.png')
    os.utime(first, (1_000_000, 1_000_000))
    # resumes: only the missing ones are written, the existing PNG untouched
    assert write_pseudo_labels(cam_dir, ids, out_dir, progress=False) == 2
    assert os.stat(first).st_mtime == 1_000_000
    assert write_pseudo_labels(cam_dir, ids, out_dir, progress=False) == 0
    assert os.stat(first).st_mtime == 1_000_000
    assert write_pseudo_labels(cam_dir, ids, out_dir, overwrite=True,
                               progress=False) == 3
    assert os.stat(first).st_mtime != 1_000_000


def test_errors(tmp_path):
    cam_dir, out_dir = str(tmp_path / 'cams'), str(tmp_path / 'labels')
    make_cams(cam_dir, num_images=1)
    with pytest.raises(FileNotFoundError, match='2012_999999'):
        write_pseudo_labels(cam_dir, ['2012_999999'], out_dir,
                            progress=False)
    with pytest.raises(ValueError, match='cam_type'):
        write_pseudo_labels(cam_dir, [], out_dir, cam_type='low_res')
    with pytest.raises(ValueError, match='palette'):
        write_pseudo_labels(cam_dir, [], out_dir, palette=VOC_PALETTE[:5],
                            num_classes=20)


def test_make_pseudo_labels_tool(tmp_path, capsys):
    cam_dir, out_dir = str(tmp_path / 'cams'), str(tmp_path / 'labels')
    data = make_cams(cam_dir)
    split = tmp_path / 'train.txt'
    split.write_text('\n'.join(data) + '\n')
    tool = load_tool('make_pseudo_labels')
    assert tool.main(['--cam-dir', cam_dir, '--split-file', str(split),
                      '--out-dir', out_dir, '--thr', '0.3']) == 0
    out = capsys.readouterr().out
    assert '3 PNG(s) written' in out and 'seg_map_path' in out
    for img_id, (high_res, keys) in data.items():
        with Image.open(osp.join(out_dir, img_id + '.png')) as img:
            np.testing.assert_array_equal(
                np.asarray(img), cams_to_label(high_res, keys, 0.3))


def test_eval_cam_tool(tmp_path, capsys):
    cam_dir, gt_dir = str(tmp_path / 'cams'), str(tmp_path / 'gt')
    data = make_cams(cam_dir)
    os.makedirs(gt_dir)
    for img_id, (high_res, keys) in data.items():
        # the GT is exactly the CAM labels at 0.3: mIoU 100 there
        gt = cams_to_label(high_res, keys, 0.3).astype(np.uint8)
        gt[0, 0] = 255
        Image.fromarray(gt).save(osp.join(gt_dir, img_id + '.png'))
    split = tmp_path / 'train.txt'
    split.write_text('\n'.join(data) + '\n')
    tool = load_tool('eval_cam')
    assert tool.main(['--cam-dir', cam_dir, '--gt-dir', gt_dir,
                      '--split-file', str(split), '--thr', '0.155']) == 0
    out = capsys.readouterr().out
    assert "split 'train'" in out and '0.155' in out
    assert 'mIoU 100.00' in out  # the best threshold recovers the GT
    assert out.strip().splitlines()[-1].startswith('best threshold:')


def test_evaluate_cams_stage_api(tmp_path):
    """The stage API behind eval_cam.py, called directly."""
    from qaclims_mm.evaluation import evaluate_cams
    cam_dir, gt_dir = str(tmp_path / 'cams'), str(tmp_path / 'gt')
    data = make_cams(cam_dir)
    os.makedirs(gt_dir)
    for img_id, (high_res, keys) in data.items():
        gt = cams_to_label(high_res, keys, 0.3).astype(np.uint8)
        Image.fromarray(gt).save(osp.join(gt_dir, img_id + '.png'))
    names = ('background', ) + tuple(f'c{i}' for i in range(20))
    result = evaluate_cams(cam_dir, gt_dir, list(data), names, threshold=0.3)
    assert result['mIoU'] == 1.0 and result['best_mIoU'] == 1.0
    assert result['best_threshold'] == 0.3
    assert result['conf'].shape == (len(result['thresholds']), 21, 21)
    assert 'mIoU 100.00' in result['report']
    only = evaluate_cams(cam_dir, gt_dir, list(data), names, threshold=0.3,
                         sweep=None)
    assert only['thresholds'].tolist() == [0.3]
    with pytest.raises(ValueError, match='no image id'):
        evaluate_cams(cam_dir, gt_dir, [], names)
