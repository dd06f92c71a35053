"""Config-based stages under 2 CPU processes (gloo): DDP training on a CPU
torch, and CAM inference where every image is written by one rank (also
when resuming)."""
import json
import os
import os.path as osp
import socket
import subprocess
import sys
import textwrap

import pytest
import torch

from test_config_stages import CAM_CONFIG, TINY_CAM, cam_inputs

NUM_IMAGES = 5  # odd: a padding sampler would give one image to both ranks

SCRIPT = textwrap.dedent('''
    import json, os, sys
    import torch.distributed as dist
    import qaclims_mm.engine.hooks.save_cam_hook as save_cam_hook
    from qaclims_mm.pipeline import StageContext
    from qaclims_mm.pipeline.stages import InferCAMsStage, TrainStage

    spec = json.loads(sys.argv[1])
    dist.init_process_group('gloo')
    rank, world = dist.get_rank(), dist.get_world_size()
    written = []
    save = save_cam_hook.save_cam


    def logged_save(path, *args, **kwargs):
        written.append(os.path.basename(path))
        return save(path, *args, **kwargs)


    save_cam_hook.save_cam = logged_save
    work = spec['work']
    metrics = {}
    for kind, stage_spec in (('train', spec['train']),
                             ('infer', spec['infer'])):
        cls = TrainStage if kind == 'train' else InferCAMsStage
        stage = cls(**stage_spec)
        stage_dir = os.path.join(work, stage.name)
        os.makedirs(stage_dir, exist_ok=True)
        ctx = StageContext(work_dir=work, stage_dir=stage_dir,
                           launcher='pytorch', rank=rank, world_size=world,
                           env_cfg=dict(dist_cfg=dict(backend='gloo')),
                           progress=False)
        metrics[kind] = stage.run(ctx)
        dist.barrier()
    # resume: rank 0 deletes two CAM files; the ranks rewrite just those
    first_pass, written = written, []
    cams = spec['infer']['outputs']['cams']
    if rank == 0:
        for name in sorted(os.listdir(cams))[1:3]:
            os.remove(os.path.join(cams, name))
    dist.barrier()
    ctx.resume = True
    metrics['resumed'] = stage.run(ctx)
    dist.barrier()
    with open(os.path.join(work, f'rank{rank}.json'), 'w') as f:
        json.dump(dict(written=first_pass, resumed=written,
                       metrics=metrics), f)
    dist.destroy_process_group()
''')


def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


@pytest.mark.skipif(torch.cuda.is_available(), reason='CPU DDP check')
def test_two_cpu_processes_train_and_infer(synthetic_voc_root, tmp_path):
    work = str(tmp_path)
    options = dict(TINY_CAM, **{'train_cfg.max_epochs': 1,
                                'param_scheduler.0.end': 1,
                                'train_dataloader.batch_size': 2,
                                'test_dataloader.dataset.indices':
                                NUM_IMAGES})
    ckpt = osp.join(work, 'cam', 'final.pth')
    spec = dict(
        work=work,
        train=dict(name='cam', config=CAM_CONFIG, cfg_options=options,
                   inputs=cam_inputs(synthetic_voc_root),
                   outputs=dict(checkpoint=ckpt)),
        infer=dict(name='cam_infer', config=CAM_CONFIG, cfg_options=options,
                   inputs=dict(cam_inputs(synthetic_voc_root),
                               checkpoint=ckpt),
                   outputs=dict(cams=osp.join(work, 'cams'))))
    script = tmp_path / 'ddp_stages.py'
    script.write_text(SCRIPT)
    env = dict(os.environ, OMP_NUM_THREADS='1')
    proc = subprocess.run(
        [sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node',
         '2', '--master_port', str(free_port()), str(script),
         json.dumps(spec)], env=env, capture_output=True, text=True,
        timeout=600)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-5000:]
    ranks = []
    for rank in range(2):
        with open(osp.join(work, f'rank{rank}.json')) as f:
            ranks.append(json.load(f))
    # training: 8 images, 2 per rank and step -> 2 DDP steps, one checkpoint
    assert osp.isfile(ckpt)
    train = ranks[0]['metrics']['train']
    assert train['iters'] == 2 and train['loss'] == train['loss']  # finite
    # inference: each image written once, by one rank
    written = [set(r['written']) for r in ranks]
    assert sum(len(r['written']) for r in ranks) == NUM_IMAGES
    assert not written[0] & written[1]
    assert sorted(os.listdir(osp.join(work, 'cams'))) == sorted(
        written[0] | written[1])
    assert ranks[0]['metrics']['infer']['num_cams'] == NUM_IMAGES
    # resumed: the two deleted files, each by one rank; same scores
    resumed = [r['resumed'] for r in ranks]
    assert sorted(resumed[0] + resumed[1]) == sorted(
        sorted(written[0] | written[1])[1:3])
    assert ranks[0]['metrics']['resumed'] == pytest.approx(
        ranks[0]['metrics']['infer'])
