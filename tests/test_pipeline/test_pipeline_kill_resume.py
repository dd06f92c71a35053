"""A kill -9 at any moment, then the same command: the same outputs.

The tiny baseline pipeline (``wsss_baseline_synthetic-voc_tiny.py``, its
first five stages: data, CAM training, CAM inference, CAM scores, IR labels)
runs once uninterrupted and once killed twice — inside the training stage
(after its first checkpoint) and inside the per-image CAM inference — each
time followed by the same command, through MMSegmentation's stock
``tools/train.py``. Weights, CAM files, IR labels and scores must be equal.
"""
import glob
import json
import os
import os.path as osp
import signal
import subprocess
import sys
import time

import numpy as np
import torch

import qaclims_mm  # noqa: F401  (MMEngine checkpoints load safely)

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG = osp.join(REPO, 'configs', 'pipelines',
                  'wsss_baseline_synthetic-voc_tiny.py')
STAGES = 'run_stages=[data,cam,cam_cams,cam_eval,ir_labels]'


def command(work_dir: str) -> list:
    import mmseg
    train_py = osp.join(osp.dirname(mmseg.__file__), '.mim', 'tools',
                        'train.py')
    return [sys.executable, train_py, CONFIG, '--work-dir', work_dir,
            '--cfg-options', STAGES]


def env() -> dict:
    return dict(os.environ, PYTHONPATH=REPO + os.pathsep +
                os.environ.get('PYTHONPATH', ''))


def run(work_dir: str, cwd: str) -> None:
    proc = subprocess.run(command(work_dir), cwd=cwd, env=env(),
                          capture_output=True, text=True, timeout=1200)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-5000:]


def run_and_kill(work_dir: str, cwd: str, ready) -> None:
    """Start the command; SIGKILL it as soon as ``ready()`` is true."""
    proc = subprocess.Popen(command(work_dir), cwd=cwd, env=env(),
                            stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 900
    while not ready():
        assert proc.poll() is None, 'the run ended before the kill point'
        assert time.time() < deadline, 'kill point never reached'
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)  # the run and its loader workers
    proc.wait()


def state_dict(path: str) -> dict:
    return torch.load(path, map_location='cpu')['state_dict']


def npz_arrays(path: str) -> dict:
    with np.load(path, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


def test_killed_twice_then_resumed_equals_uninterrupted(tmp_path):
    ref, killed = str(tmp_path / 'ref'), str(tmp_path / 'killed')
    run(ref, str(tmp_path))

    def in_training() -> bool:  # the first epoch's checkpoint is there
        return bool(glob.glob(osp.join(killed, 'cam', 'train',
                                       'epoch_1.pth')))

    def in_inference() -> bool:  # some CAM files are written, not all
        return len(glob.glob(osp.join(killed, 'cam_cams', 'cams',
                                      '*.npz'))) >= 5

    run_and_kill(killed, str(tmp_path), in_training)
    assert not osp.exists(osp.join(killed, 'cam', 'manifest.json'))
    run_and_kill(killed, str(tmp_path), in_inference)
    assert not osp.exists(osp.join(killed, 'cam_cams', 'manifest.json'))
    run(killed, str(tmp_path))

    with open(osp.join(killed, 'summary.json')) as f:
        status = {r['stage']: r['status'] for r in json.load(f)['stages']}
    assert status['cam'] == 'skipped'  # finished by the second run
    assert status['cam_cams'] == 'resumed'

    a, b = (state_dict(osp.join(d, 'cam', 'final.pth')) for d in (ref,
                                                                   killed))
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    cams = sorted(os.listdir(osp.join(ref, 'cam_cams', 'cams')))
    assert cams == sorted(os.listdir(osp.join(killed, 'cam_cams', 'cams')))
    for name in cams:
        x, y = (npz_arrays(osp.join(d, 'cam_cams', 'cams', name))
                for d in (ref, killed))
        assert x.keys() == y.keys()
        assert all(np.array_equal(x[k], y[k]) for k in x), name
    labels = sorted(os.listdir(osp.join(ref, 'ir_labels', 'labels')))
    for name in labels:
        if name.endswith('.png'):
            with open(osp.join(ref, 'ir_labels', 'labels', name), 'rb') as f:
                x = f.read()
            with open(osp.join(killed, 'ir_labels', 'labels', name),
                      'rb') as f:
                assert f.read() == x, name
    scores = [json.load(open(osp.join(d, 'cam_eval', 'manifest.json')))
              ['metrics'] for d in (ref, killed)]
    assert scores[0] == scores[1]
