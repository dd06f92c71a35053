"""The pipeline on two CPU processes (gloo), as ``tools/dist_train.sh`` runs it.

The first stages of the tiny baseline pipeline run under
``torch.distributed.run --nproc_per_node 2`` with MMSegmentation's stock
``tools/train.py`` and ``--launcher pytorch``: the training stage under DDP,
the CAM inference and the IR labels sharded over the ranks, the rank-0 stages
once. Every output must be complete, and the log numbers finite.
"""
import glob
import json
import math
import os
import os.path as osp
import socket
import subprocess
import sys

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG = osp.join(REPO, 'configs', 'pipelines',
                  'wsss_baseline_synthetic-voc_tiny.py')


def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def test_two_gloo_processes(tmp_path):
    import mmseg
    train_py = osp.join(osp.dirname(mmseg.__file__), '.mim', 'tools',
                        'train.py')
    work_dir = str(tmp_path / 'work')
    cmd = [
        sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node',
        '2', '--master_port', str(free_port()), train_py, CONFIG,
        '--work-dir', work_dir, '--launcher', 'pytorch', '--cfg-options',
        'env_cfg.dist_cfg.backend=gloo',
        'run_stages=[data,cam,cam_cams,cam_eval,ir_labels]'
    ]
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep +
               os.environ.get('PYTHONPATH', ''), OMP_NUM_THREADS='1')
    proc = subprocess.run(cmd, cwd=str(tmp_path), env=env,
                          capture_output=True, text=True, timeout=1200)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-6000:]
    assert 'ranks 2' in out

    with open(osp.join(work_dir, 'summary.json')) as f:
        records = {r['stage']: r for r in json.load(f)['stages']}
    assert [r['status'] for r in records.values()] == ['ran'] * 5
    split = osp.join(work_dir, 'data', 'VOC2012', 'ImageSets', 'Segmentation')
    with open(osp.join(split, 'train_aug.txt')) as f:
        train_aug = f.read().split()
    for folder, suffix in (('cam_cams/cams', '.npz'),
                           ('ir_labels/labels', '.png')):
        written = sorted(p[:-len(suffix)] for p in os.listdir(
            osp.join(work_dir, folder)) if p.endswith(suffix))
        assert written == sorted(train_aug), folder
    # DDP: each rank saw half of every batch list; losses logged by rank 0
    scalars = glob.glob(osp.join(work_dir, 'cam', 'train', '*', 'vis_data',
                                 'scalars.json'))
    assert len(scalars) == 1
    with open(scalars[0]) as f:
        losses = [json.loads(line)['loss'] for line in f if 'loss' in line]
    assert losses and all(map(math.isfinite, losses))
    assert math.isfinite(records['cam_eval']['metrics']['mIoU'])
    assert len(glob.glob(osp.join(work_dir, 'cam', 'final.pth'))) == 1
