"""The official pickled ``.npy`` files (CAMs, cls_labels, VQA answers) are read
only on explicit opt-in, and converted once into our pickle-free formats
(issue 10, item 10); unreadable files give errors naming them (item 21)."""
import os.path as osp
import subprocess
import sys

import numpy as np
import pytest
import torch

from qaclims_mm.datasets.class_names import VOC_CLASSES
from qaclims_mm.datasets.labels_file import load_labels_file
from qaclims_mm.qape.corpus import import_official_npy, load_corpus
from qaclims_mm.utils.cam_file import find_cam_file, load_cam, save_cam
from qaclims_mm.utils.safe_load import UntrustedPickleError

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


class _Payload:
    """Unpickles into a call that creates ``marker``."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (eval, (f"__import__('pathlib').Path({self.marker!r})"
                       ".write_text('pwned')", ))


def write_crafted_npy(path: str, marker: str) -> str:
    arr = np.empty((), dtype=object)
    arr[()] = _Payload(marker)
    np.save(path, arr, allow_pickle=True)
    return path


@pytest.fixture
def marker(tmp_path):
    path = str(tmp_path / 'marker')
    yield path
    assert not osp.exists(path), 'the crafted payload ran'


def run_tool(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=REPO,
                          capture_output=True, text=True)


def test_crafted_npy_runs_when_unpickled(tmp_path):
    """The payload is real: ``allow_pickle=True`` creates the marker."""
    m = str(tmp_path / 'marker')
    np.load(write_crafted_npy(str(tmp_path / 'x.npy'), m), allow_pickle=True)
    assert osp.exists(m)


# --------------------------------------------------------------------------
# CAM files
# --------------------------------------------------------------------------


def test_cam_npy_refused_by_default(tmp_path, marker):
    cam_dir = tmp_path / 'cams'
    cam_dir.mkdir()
    write_crafted_npy(str(cam_dir / '2007_000032.npy'), marker)
    path = find_cam_file(str(cam_dir), '2007_000032')
    with pytest.raises(UntrustedPickleError) as info:
        load_cam(path, 20)
    msg = str(info.value)
    assert path in msg and 'convert_official_cams.py' in msg
    assert 'trust_pickle=True' in msg
    with pytest.raises(ValueError, match='2007_000032.npy'):
        load_cam(path, 20, fields=('high_res', ))


def _official_cam(path: str) -> dict:
    """An official-format CAM dict (keys/cam torch tensors, high_res numpy)."""
    rng = np.random.default_rng(0)
    cam = {'keys': torch.tensor([0, 14]),
           'cam': torch.rand(2, 3, 4),
           'high_res': rng.random((2, 10, 13), dtype=np.float32)}
    np.save(path, cam, allow_pickle=True)
    return cam


def test_trusted_official_cam_and_converter(tmp_path):
    src = tmp_path / 'cam_mask'
    src.mkdir()
    cams = {i: _official_cam(str(src / f'{i}.npy')) for i in ('a', 'b')}
    out = tmp_path / 'converted'
    tool = osp.join(REPO, 'tools', 'convert_official_cams.py')
    refused = run_tool(tool, str(src), str(out))
    assert refused.returncode != 0 and '--trust-pickle' in refused.stderr
    assert not out.exists()
    proc = run_tool(tool, str(src), str(out), '--trust-pickle',
                    '--num-classes', '20')
    assert proc.returncode == 0, proc.stderr
    for img_id, ref in cams.items():
        direct = load_cam(str(src / f'{img_id}.npy'), 20, trust_pickle=True)
        got = load_cam(find_cam_file(str(out), img_id), 20)
        assert got['keys'].tolist() == [0, 14] == direct['keys'].tolist()
        np.testing.assert_array_equal(got['cam'], ref['cam'].numpy())
        np.testing.assert_array_equal(got['high_res'], ref['high_res'])


@pytest.mark.parametrize('keep', [0.05, 0.3, 0.6, 0.9, 0.99])
def test_truncated_npz_names_the_file(tmp_path, keep):
    path = str(tmp_path / '2007_000032.npz')
    rng = np.random.default_rng(0)
    save_cam(path, np.array([0, 14]), rng.random((2, 8, 9)),
             rng.random((2, 30, 33)))
    with open(path, 'rb') as f:
        data = f.read()
    with open(path, 'wb') as f:
        f.write(data[:int(len(data) * keep)])
    with pytest.raises(ValueError, match='2007_000032.npz: not a readable '
                       'CAM file'):
        load_cam(path, 20)


# --------------------------------------------------------------------------
# cls_labels.npy
# --------------------------------------------------------------------------


def test_labels_npy_refused_by_default(tmp_path, marker):
    path = write_crafted_npy(str(tmp_path / 'cls_labels.npy'), marker)
    with pytest.raises(UntrustedPickleError) as info:
        load_labels_file(path, VOC_CLASSES)
    assert path in str(info.value)
    assert 'convert_official_labels.py' in str(info.value)


def test_labels_converter(tmp_path):
    vec = np.zeros(20, np.float32)
    vec[[0, 14]] = 1
    src = str(tmp_path / 'cls_labels.npy')
    np.save(src, {2007000032: vec, 2007000039: np.eye(20)[19]})
    dst = str(tmp_path / 'cls_labels.json')
    tool = osp.join(REPO, 'tools', 'convert_official_labels.py')
    refused = run_tool(tool, src, dst)
    assert refused.returncode != 0 and '--trust-pickle' in refused.stderr
    assert not osp.exists(dst)
    proc = run_tool(tool, src, dst, '--trust-pickle')
    assert proc.returncode == 0, proc.stderr
    expected = {'2007_000032': [0, 14], '2007_000039': [19]}
    assert load_labels_file(dst, VOC_CLASSES) == expected
    assert load_labels_file(src, VOC_CLASSES, trust_pickle=True) == expected


# --------------------------------------------------------------------------
# official VQA files
# --------------------------------------------------------------------------


def test_vqa_npy_refused_by_default(tmp_path, marker):
    fg = write_crafted_npy(str(tmp_path / 'fg.npy'), marker)
    bg = write_crafted_npy(str(tmp_path / 'bg.npy'), marker)
    with pytest.raises(UntrustedPickleError) as info:
        import_official_npy(fg, bg)
    assert fg in str(info.value)
    assert 'convert_official_vqa.py import' in str(info.value)
    proc = run_tool(osp.join(REPO, 'tools', 'convert_official_vqa.py'),
                    'import', '--fg', fg, '--bg', bg, '--corpus',
                    str(tmp_path / 'c.json'))
    assert proc.returncode != 0 and '--trust-pickle' in proc.stderr
    assert fg in proc.stderr
    assert not osp.exists(tmp_path / 'c.json')


def _record(templates, answer='x'):
    return {'vqa': [(t, answer) for t in templates],
            'answers': [answer] * len(templates)}


@pytest.mark.parametrize('fg_data, where', [
    ({'2007_000032': 5}, "image '2007_000032' maps to a int"),
    ({'2007_000032': {'aeroplane': 5}}, 'record needs "vqa" and "answers"'),
    ({'2007_000032': {'aeroplane': {'vqa': 3, 'answers': []}}},
     '"vqa" must be a list'),
    ({'2007_000032': {'aeroplane': {'vqa': [1, 2], 'answers': ['a', 'b']}}},
     '"vqa" must be a list of \\(template, answer\\) pairs'),
    ({}, 'expected a non-empty dict'),
    ([1, 2], 'cannot read an official VQA npy'),
])
def test_malformed_vqa_file_names_the_file(tmp_path, fg_data, where):
    from qaclims_mm.qape.questions import BG_QUESTIONS
    fg, bg = str(tmp_path / 'fg.npy'), str(tmp_path / 'bg.npy')
    np.save(fg, fg_data, allow_pickle=True)
    np.save(bg, {'2007_000032': {'aeroplane': _record(BG_QUESTIONS)}},
            allow_pickle=True)
    with pytest.raises(ValueError, match=where) as info:
        import_official_npy(fg, bg, trust_pickle=True)
    assert str(info.value).startswith(fg)


def test_trusted_vqa_converter(tmp_path):
    from qaclims_mm.qape.questions import BG_QUESTIONS, FG_QUESTIONS
    fg, bg = str(tmp_path / 'fg.npy'), str(tmp_path / 'bg.npy')
    np.save(fg, {'i': {'cat': _record(FG_QUESTIONS, 'kitten')}})
    np.save(bg, {'i': {'cat': _record(BG_QUESTIONS, 'sofa')}})
    corpus = str(tmp_path / 'c.json')
    proc = run_tool(osp.join(REPO, 'tools', 'convert_official_vqa.py'),
                    'import', '--fg', fg, '--bg', bg, '--corpus', corpus,
                    '--trust-pickle')
    assert proc.returncode == 0, proc.stderr
    entry = load_corpus(corpus).get('i', 'cat')
    assert entry.fg_raw == ('kitten', ) * 6
    assert entry.bg_texts == ('sofa', )


def test_load_pickled_npy_names_a_broken_trusted_file(tmp_path):
    """``what=`` turns any read failure of a trusted file into one
    ValueError naming the file; without it the error passes through."""
    from qaclims_mm.utils.safe_load import (UntrustedPickleError,
                                            load_pickled_npy)
    bad = tmp_path / 'broken.npy'
    bad.write_bytes(b'not an npy file')
    with pytest.raises(ValueError, match=r'broken\.npy: cannot read an '
                       r'official VQA npy \(UnpicklingError: ') as e:
        load_pickled_npy(str(bad), True, 'CONVERT', what='an official VQA npy')
    assert e.value.__cause__ is not None
    with pytest.raises(Exception) as e:
        load_pickled_npy(str(bad), True, 'CONVERT')
    assert 'cannot read' not in str(e.value)
    with pytest.raises(UntrustedPickleError, match='CONVERT'):
        load_pickled_npy(str(bad), False, 'CONVERT', what='x')
