"""Label writers record their settings and refuse to mix two settings."""
import importlib.util
import json
import os
import os.path as osp

import numpy as np
import pytest
from PIL import Image

from qaclims_mm.refine.stages import write_pseudo_labels
from qaclims_mm.utils.cam_file import save_cam
from qaclims_mm.utils.output_settings import (SETTINGS_FILE,
                                              claim_output_dir,
                                              release_output_dir)

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def load_tool(name):
    spec = importlib.util.spec_from_file_location(
        name, osp.join(REPO, 'tools', name + '.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def read_png(path):
    with Image.open(path) as img:
        return np.asarray(img)


def test_claim_records_checks_and_marks_interrupted_overwrites(tmp_path):
    out = str(tmp_path / 'out')
    a, b = dict(thr=0.15, cam_type='high_res'), dict(thr=0.3,
                                                    cam_type='high_res')
    claim_output_dir(out, a)
    with open(osp.join(out, SETTINGS_FILE)) as f:
        assert json.load(f) == a
    claim_output_dir(out, a)  # same settings: resume
    with pytest.raises(ValueError, match=r"thr: 0\.15 there, 0\.3 now"):
        claim_output_dir(out, b)
    claim_output_dir(out, b, overwrite=True)  # killed before release:
    with pytest.raises(ValueError, match='interrupted'):
        claim_output_dir(out, b)
    with pytest.raises(ValueError, match='0.3 there'):
        claim_output_dir(out, a)
    claim_output_dir(out, b, overwrite=True)
    release_output_dir(out, b)
    claim_output_dir(out, b)
    with open(osp.join(out, SETTINGS_FILE)) as f:
        assert json.load(f) == b
    # outputs of unknown settings (no record) are not adopted silently
    legacy = tmp_path / 'legacy'
    legacy.mkdir()
    (legacy / 'x.png').write_bytes(b'')
    with pytest.raises(ValueError, match='1 .png file.*no settings.json'):
        claim_output_dir(str(legacy), a)
    claim_output_dir(str(legacy), a, overwrite=True)


def make_cams(cam_dir, ids, size=(9, 11)):
    rng = np.random.default_rng(0)
    for i, img_id in enumerate(ids):
        high = rng.random((1, ) + size).astype(np.float32)
        save_cam(osp.join(cam_dir, img_id + '.npz'), [i], high[:, ::4, ::4],
                 high)


def test_make_pseudo_labels_refuses_other_threshold(tmp_path, capsys):
    cam_dir, out = str(tmp_path / 'cams'), str(tmp_path / 'labels')
    ids = ['a', 'b']
    make_cams(cam_dir, ids)
    split = tmp_path / 'split.txt'
    split.write_text('a\nb\n')
    tool = load_tool('make_pseudo_labels')
    argv = ['--cam-dir', cam_dir, '--split-file', str(split), '--out-dir',
            out]
    assert tool.main(argv + ['--thr', '0.2']) == 0
    first = {i: read_png(osp.join(out, i + '.png')) for i in ids}
    with pytest.raises(SystemExit, match=r'threshold: 0\.2 there, 0\.7 now'):
        tool.main(argv + ['--thr', '0.7'])
    for i in ids:  # nothing was touched
        np.testing.assert_array_equal(read_png(osp.join(out, i + '.png')),
                                      first[i])
    assert tool.main(argv + ['--thr', '0.7', '--overwrite']) == 0
    again = {i: read_png(osp.join(out, i + '.png')) for i in ids}
    assert any((again[i] != first[i]).any() for i in ids)
    # the library function refuses too, naming the folder
    with pytest.raises(ValueError, match='labels'):
        write_pseudo_labels(cam_dir, ids, out, threshold=0.2, progress=False)


def test_make_ir_labels_refuses_other_thresholds(tmp_path):
    pytest.importorskip('pydensecrf')
    from qaclims_mm.refine.stages import make_ir_labels
    cam_dir, img_dir = str(tmp_path / 'cams'), tmp_path / 'img'
    ids = ['a', 'b']
    make_cams(cam_dir, ids, size=(20, 24))
    img_dir.mkdir()
    for i in ids:
        Image.fromarray(np.full((20, 24, 3), 100, np.uint8)).save(
            str(img_dir / f'{i}.jpg'))
    out = str(tmp_path / 'ir')
    assert make_ir_labels(cam_dir, str(img_dir), ids, out,
                          progress=False) == 2
    with pytest.raises(ValueError, match=r'fg_thr: 0\.3 there, 0\.35 now'):
        make_ir_labels(cam_dir, str(img_dir), ids, out, fg_thr=0.35,
                       progress=False)
    assert make_ir_labels(cam_dir, str(img_dir), ids, out, fg_thr=0.35,
                          overwrite=True, progress=False) == 2
    # the new record lets a resume through
    assert make_ir_labels(cam_dir, str(img_dir), ids, out, fg_thr=0.35,
                          progress=False) == 0
    assert sorted(os.listdir(out)) == ['a.png', 'b.png', SETTINGS_FILE]
