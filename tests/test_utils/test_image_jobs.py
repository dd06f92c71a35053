"""The per-image job runner: skip, atomic writes, workers, errors, records."""
import json
import os
import os.path as osp
from dataclasses import dataclass

import pytest

from qaclims_mm.utils.image_jobs import ImageJobWriter, MapResult, map_images
from qaclims_mm.utils.output_settings import SETTINGS_FILE


@dataclass(frozen=True)
class Echo:
    """Writes ``<prefix><id>``; fails for ``bad``; ``missing`` fails check."""
    prefix: str = 'x'

    def check(self, img_id: str) -> None:
        if img_id == 'missing':
            raise FileNotFoundError(f'no input for {img_id!r}')

    def __call__(self, img_id: str) -> bytes:
        if img_id == 'bad':
            raise ValueError('broken input')
        return (self.prefix + img_id).encode()


def read(out, img_id):
    with open(osp.join(out, img_id + '.png'), 'rb') as f:
        return f.read().decode()


@pytest.mark.parametrize('workers', [0, 2])
def test_writes_skips_and_overwrites(tmp_path, workers):
    out = str(tmp_path / 'out')
    ids = [f'img{i}' for i in range(7)]
    assert map_images(ids[:3], Echo('a'), out, workers=workers,
                      settings=dict(v=1), progress=False) == MapResult(3, 0)
    os.utime(osp.join(out, 'img0.png'), (1, 1))
    result = map_images(ids, Echo('a'), out, workers=workers,
                        settings=dict(v=1), progress=False)
    assert result == MapResult(written=4, skipped=3)
    assert os.stat(osp.join(out, 'img0.png')).st_mtime == 1
    assert [read(out, i) for i in ids] == ['a' + i for i in ids]
    # other settings are refused, the files stay
    with pytest.raises(ValueError, match='v: 1 there, 2 now'):
        map_images(ids, Echo('b'), out, settings=dict(v=2), progress=False)
    assert read(out, 'img1') == 'aimg1'
    result = map_images(ids, Echo('b'), out, workers=workers,
                        overwrite=True, settings=dict(v=2), progress=False)
    assert result == MapResult(written=7, skipped=0)
    assert [read(out, i) for i in ids] == ['b' + i for i in ids]
    with open(osp.join(out, SETTINGS_FILE)) as f:
        assert json.load(f) == dict(v=2)  # complete, no incomplete mark
    assert not [n for n in os.listdir(out) if n.endswith('.tmp')]


@pytest.mark.parametrize('workers', [0, 2])
def test_error_names_the_image_and_leaves_no_partial_file(tmp_path, workers):
    out = str(tmp_path / 'out')
    ids = ['a', 'b', 'bad', 'c']
    with pytest.raises(ValueError, match=r"image 'bad': broken input"):
        map_images(ids, Echo(), out, workers=workers, settings=dict(v=1),
                   progress=False)
    assert not osp.exists(osp.join(out, 'bad.png'))
    assert not [n for n in os.listdir(out) if n.endswith('.tmp')]


def test_check_runs_before_any_work(tmp_path):
    out = str(tmp_path / 'out')
    with pytest.raises(FileNotFoundError, match="'missing'"):
        map_images(['a', 'missing'], Echo(), out, settings=dict(v=1),
                   progress=False)
    assert not osp.exists(out)  # nothing written, no record claimed


def test_progress_bar_shows_an_eta(tmp_path, capsys):
    map_images(['a', 'b'], Echo(), str(tmp_path / 'o'), progress=True)
    assert 'ETA' in capsys.readouterr().out


def test_streaming_writer(tmp_path):
    out = str(tmp_path / 'out')
    with ImageJobWriter(out, dict(v=1), workers=2) as writer:
        for img_id in ('a', 'b', 'c'):
            writer.submit(img_id, Echo())
    assert writer.result == MapResult(3, 0)
    with ImageJobWriter(out, dict(v=1)) as writer:
        assert writer.is_done('a') and not writer.is_done('d')


TORCH_IN_WORKERS = r"""
import sys
from dataclasses import dataclass
import torch
from qaclims_mm.utils.image_jobs import map_images


@dataclass(frozen=True)
class TorchArgmax:
    def __call__(self, img_id):
        x = torch.arange(200_000, dtype=torch.float32).reshape(2, 100, 1000)
        return str(int(x.argmax(0).sum())).encode()


torch.set_num_threads(2)
torch.rand(2, 300, 1000).argmax(0)  # the parent's OpenMP team exists now
result = map_images(['a', 'b', 'c'], TorchArgmax(), sys.argv[1], workers=2,
                    progress=False)
print('written', result.written)
"""


def test_workers_run_torch_after_the_parent_did(tmp_path):
    """A forked worker must not deadlock in torch's OpenMP pool."""
    import subprocess
    import sys
    out = str(tmp_path / 'out')
    proc = subprocess.run([sys.executable, '-c', TORCH_IN_WORKERS, out],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert 'written 3' in proc.stdout
    assert read(out, 'a') == str(100 * 1000)
