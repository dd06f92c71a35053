"""``tools/dist_train.sh`` and ``dist_test.sh`` forward their arguments to
``torch.distributed.run`` (through ``dist_launch.sh``) unchanged."""
import os
import os.path as osp
import subprocess

import pytest

TOOLS = osp.join(osp.dirname(osp.dirname(osp.dirname(__file__))), 'tools')


def _run(tmp_path, script, *args, **env):
    fake = tmp_path / 'python'
    fake.write_text('#!/usr/bin/env bash\nprintf "%s\\n" "$@"\n')
    fake.chmod(0o755)
    out = subprocess.run(
        ['bash', osp.join(TOOLS, script), *args], check=True,
        capture_output=True, text=True,
        env=dict(os.environ, PYTHON=str(fake), **env)).stdout
    return out.splitlines()


@pytest.mark.skipif(os.name != 'posix', reason='bash scripts')
def test_dist_train_arguments(tmp_path):
    argv = _run(tmp_path, 'dist_train.sh', 'cfg.py', '2', '--amp',
                '--cfg-options', 'a=1', PORT='29555')
    assert argv == [
        '-m', 'torch.distributed.run', '--nnodes=1', '--node_rank=0',
        '--master_addr=127.0.0.1', '--nproc_per_node=2',
        '--master_port=29555', osp.join(TOOLS, 'train.py'), 'cfg.py',
        '--launcher', 'pytorch', '--amp', '--cfg-options', 'a=1']


@pytest.mark.skipif(os.name != 'posix', reason='bash scripts')
def test_dist_test_arguments(tmp_path):
    argv = _run(tmp_path, 'dist_test.sh', 'cfg.py', 'w.pth', '4', '--out',
                'o', NNODES='2', NODE_RANK='1', MASTER_ADDR='10.0.0.1')
    assert argv == [
        '-m', 'torch.distributed.run', '--nnodes=2', '--node_rank=1',
        '--master_addr=10.0.0.1', '--nproc_per_node=4',
        '--master_port=29500', osp.join(TOOLS, 'test.py'), 'cfg.py',
        'w.pth', '--launcher', 'pytorch', '--out', 'o']


@pytest.mark.skipif(os.name != 'posix', reason='bash scripts')
def test_slurm_train_arguments(tmp_path):
    """``slurm_train.sh`` runs tools/train.py through srun with the slurm
    launcher; GPUS_PER_NODE=0 (CPU nodes) drops the GPU request."""
    srun = tmp_path / 'srun'
    srun.write_text('#!/usr/bin/env bash\nprintf "%s\\n" "$@"\n')
    srun.chmod(0o755)
    path = f'{tmp_path}:{os.environ["PATH"]}'
    argv = _run(tmp_path, 'slurm_train.sh', 'part', 'job', 'cfg.py',
                '--cfg-options', 'a=1', PATH=path, GPUS='8')
    assert argv == [
        '-p', 'part', '--job-name=job', '--gres=gpu:4',
        '--ntasks-per-node=4', '--ntasks=8', '--cpus-per-task=5',
        '--kill-on-bad-exit=1', str(tmp_path / 'python'), '-u',
        osp.join(TOOLS, 'train.py'), 'cfg.py', '--launcher', 'slurm',
        '--cfg-options', 'a=1']
    argv = _run(tmp_path, 'slurm_test.sh', 'part', 'job', 'cfg.py', 'w.pth',
                PATH=path, GPUS='2', GPUS_PER_NODE='0',
                SRUN_ARGS='--nodes=2 --exclusive')
    assert argv == [
        '-p', 'part', '--job-name=job', '--ntasks=2', '--cpus-per-task=5',
        '--kill-on-bad-exit=1', '--nodes=2', '--exclusive',
        str(tmp_path / 'python'), '-u', osp.join(TOOLS, 'test.py'), 'cfg.py',
        'w.pth', '--launcher', 'slurm']
