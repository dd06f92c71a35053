"""Distributed runs on CPU processes (gloo): the guard of
:mod:`qaclims_mm.utils.dist`, per-image jobs sharded over ranks, and the
stock ``tools/train.py`` / ``tools/dist_train.sh`` on 2 processes."""
import json
import math
import multiprocessing
import os
import os.path as osp
import socket
import subprocess
import sys
import traceback
from dataclasses import dataclass

import pytest
import torch

from qaclims_mm.utils import dist as qdist

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CAM_CONFIG = osp.join(
    REPO, 'configs/cam/cam_r18-os16_1xb16-12e_synthetic-voc-160x160.py')
NO_CUDA = not torch.cuda.is_available()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------- the guard


def test_import_installs_the_guard_once():
    import mmengine.dist.utils as dist_utils
    from mmengine.runner import Runner

    import qaclims_mm  # noqa: F401
    assert qdist.cpu_dist_guard_installed()
    guarded = dist_utils._init_dist_pytorch
    wrap = Runner.wrap_model
    assert qdist.install_cpu_dist_guard()  # idempotent: no double wrapping
    assert dist_utils._init_dist_pytorch is guarded
    assert Runner.wrap_model is wrap
    original = getattr(guarded, qdist.GUARD_ATTR)
    assert not hasattr(original, qdist.GUARD_ATTR)
    qdist.remove_cpu_dist_guard()
    try:
        assert dist_utils._init_dist_pytorch is original
        assert not qdist.cpu_dist_guard_installed()
    finally:
        qdist.install_cpu_dist_guard()
    assert qdist.cpu_dist_guard_installed()


@pytest.fixture
def fake_launch(monkeypatch):
    """``torch.cuda.set_device`` and ``init_process_group`` recorded."""
    calls = []
    monkeypatch.setattr(torch.cuda, 'set_device',
                        lambda d: calls.append(('set_device', d)))
    monkeypatch.setattr(torch.distributed, 'init_process_group',
                        lambda **kw: calls.append(('init', kw['backend'])))
    monkeypatch.setenv('RANK', '0')
    monkeypatch.setenv('LOCAL_RANK', '3')
    monkeypatch.setenv('WORLD_SIZE', '1')
    return calls


def test_guard_is_a_no_op_when_cuda_is_available(fake_launch, monkeypatch):
    """With CUDA, MMEngine's launcher runs as it is: it selects the device
    and nccl is accepted."""
    import mmengine.dist.utils as dist_utils
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)
    dist_utils._init_dist_pytorch('nccl')
    assert fake_launch == [('set_device', 3), ('init', 'nccl')]


def test_guard_without_cuda_skips_set_device_and_refuses_nccl(
        fake_launch, monkeypatch):
    import mmengine.dist.utils as dist_utils
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    dist_utils._init_dist_pytorch('gloo')
    assert fake_launch == [('init', 'gloo')]
    with pytest.raises(RuntimeError,
                       match='env_cfg.dist_cfg.backend=gloo'):
        dist_utils._init_dist_pytorch('nccl')
    assert fake_launch == [('init', 'gloo')]  # nothing started
    torch.cuda.set_device(5)  # restored after the call: the recorder
    assert fake_launch[-1] == ('set_device', 5)


class _FakeRunner:
    distributed = True

    def __init__(self, **cfg):
        self.cfg = cfg


def test_wrap_model_gets_device_ids_none_only_without_cuda(monkeypatch):
    seen = []
    guarded = qdist._guard_wrap_model(lambda self, cfg, model: seen.append(
        cfg))
    model = torch.nn.Linear(2, 2)
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)
    guarded(_FakeRunner(), None, model)
    assert seen == [None]  # MMEngine's default wrapper, untouched
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    guarded(_FakeRunner(find_unused_parameters=True), None, model)
    guarded(_FakeRunner(), dict(type='MMDistributedDataParallel',
                                broadcast_buffers=True), model)
    guarded(_FakeRunner(), dict(device_ids=[0]), model)  # explicit: kept
    assert seen[1:] == [
        dict(type='MMDistributedDataParallel', device_ids=None,
             broadcast_buffers=False, find_unused_parameters=True),
        dict(type='MMDistributedDataParallel', broadcast_buffers=True,
             device_ids=None),
        dict(type='MMDistributedDataParallel', device_ids=[0]),
    ]


def test_sync_bn_on_cpu_dist_is_refused_naming_the_layer(monkeypatch):
    guarded = qdist._guard_wrap_model(lambda self, cfg, model: model)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 1),
                                torch.nn.SyncBatchNorm(4))
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    with pytest.raises(RuntimeError, match=r"SyncBN layers \(e.g. '1'\)"):
        guarded(_FakeRunner(), None, model)
    with pytest.raises(RuntimeError, match='sync_bn=None'):
        guarded(_FakeRunner(sync_bn='torch'), None, torch.nn.Linear(2, 2))
    single = _FakeRunner()
    single.distributed = False  # one process: MMEngine reverts SyncBN
    assert guarded(single, None, model) is model


# ------------------------------------------------ 2 CPU processes (spawn)


def _entry(fn, rank: int, world: int, port: int, out: str, args) -> None:
    """One rank: env of torchrun, the guard via ``import qaclims_mm``,
    MMEngine's init_dist with gloo, then ``fn``; its result -> JSON."""
    os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port),
                      RANK=str(rank), LOCAL_RANK=str(rank),
                      WORLD_SIZE=str(world))
    import mmengine.dist
    import torch.distributed as dist

    import qaclims_mm  # noqa: F401  (installs the guard)
    record = dict(guard=qdist.cpu_dist_guard_installed())
    # worker processes fork, as under the configs' env_cfg.mp_cfg
    multiprocessing.set_start_method('fork', force=True)
    try:
        mmengine.dist.init_dist('pytorch', backend='gloo', timeout=60)
        total = torch.tensor([rank + 1.])
        dist.all_reduce(total)
        record.update(world=dist.get_world_size(), rank=dist.get_rank(),
                      backend=dist.get_backend(), all_reduce=total.item())
        record.update(fn(rank, world, out, *args))
    except BaseException:
        record['error'] = traceback.format_exc()
    finally:
        with open(osp.join(out, f'rank{rank}.json'), 'w') as f:
            json.dump(record, f)
        if dist.is_initialized():
            dist.destroy_process_group()


def run_ranks(fn, world: int, out: str, *args, timeout: float = 150):
    """Run ``fn(rank, world, out, *args)`` on ``world`` spawned processes in
    one gloo group; the JSON record of each rank."""
    os.makedirs(out, exist_ok=True)
    ctx = multiprocessing.get_context('spawn')
    port = free_port()
    procs = [ctx.Process(target=_entry, args=(fn, r, world, port, out, args))
             for r in range(world)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout)
    hung = [p for p in procs if p.is_alive()]
    for p in hung:
        p.kill()
        p.join()
    assert not hung, f'{len(hung)} rank(s) hung (a missing collective?)'
    records = []
    for r, p in enumerate(procs):
        path = osp.join(out, f'rank{r}.json')
        assert osp.isfile(path), f'rank {r} exited {p.exitcode}, no record'
        with open(path) as f:
            records.append(json.load(f))
        assert 'error' not in records[-1], records[-1]['error']
    return records


@dataclass(frozen=True)
class RankLogJob:
    """Writes ``<id>``; appends ``<id>`` to ``<log_dir>/rank<r>.log`` (who
    wrote what); fails for ``bad``; on rank 1 with ``lose`` it deletes the
    first file it wrote when it writes the next one (a lost file)."""
    log_dir: str
    out_dir: str = ''
    lose: bool = False

    def __call__(self, img_id: str) -> bytes:
        import torch.distributed as dist
        rank = dist.get_rank()
        log = osp.join(self.log_dir, f'rank{rank}.log')
        if img_id == 'bad':
            raise ValueError('broken input')
        if self.lose and rank == 1 and osp.isfile(log):
            with open(log) as f:
                first = f.readline().strip()
            if first and osp.isfile(osp.join(self.out_dir, first + '.png')):
                os.remove(osp.join(self.out_dir, first + '.png'))
        with open(log, 'a') as f:
            f.write(img_id + '\n')
        return img_id.encode()


@dataclass(frozen=True)
class Echo:
    """Writes ``<id>``, fails for ``bad`` (picklable for workers)."""

    def __call__(self, img_id: str) -> bytes:
        if img_id == 'bad':
            raise ValueError('broken input')
        return img_id.encode()


def _outcome(call):
    try:
        result = call()
        return dict(written=result.written, skipped=result.skipped)
    except Exception as e:
        return dict(error=f'{type(e).__name__}: {e}')


def _map_images_scenarios(rank: int, world: int, out: str,
                          slurm_port: int) -> dict:
    """Every scenario of the 2-rank per-image tests, in one process group;
    then the slurm launcher."""
    import torch.distributed as dist

    from qaclims_mm.utils import image_jobs
    from qaclims_mm.utils.image_jobs import map_images

    claims = []
    original_claim = image_jobs.claim_output_dir
    original_release = image_jobs.release_output_dir
    image_jobs.claim_output_dir = lambda *a, **k: (
        claims.append('claim'), original_claim(*a, **k))[1]
    image_jobs.release_output_dir = lambda *a, **k: (
        claims.append('release'), original_release(*a, **k))[1]
    ids = [f'img{i:02d}' for i in range(13)] + ['img03']  # a repeat
    res = {}

    def run(name, job, img_ids=ids, **kw):
        kw.setdefault('settings', dict(v=1))
        res[name] = _outcome(lambda: map_images(
            img_ids, job, osp.join(out, name.split(':')[0]), progress=False,
            rank=rank, world_size=world, **kw))
        dist.barrier()

    log = osp.join(out, 'logs_ok')
    os.makedirs(log, exist_ok=True)
    run('ok', RankLogJob(log))
    run('ok:again', RankLogJob(log))
    run('ok:other_settings', RankLogJob(log), settings=dict(v=2))
    lost = osp.join(out, 'logs_lost')
    os.makedirs(lost, exist_ok=True)
    run('lost', RankLogJob(lost, osp.join(out, 'lost'), lose=True))
    bad_log = osp.join(out, 'logs_bad')
    os.makedirs(bad_log, exist_ok=True)
    run('bad', RankLogJob(bad_log), img_ids=['a', 'bad', 'c', 'd'])
    # with worker processes the error comes out while closing the writer
    run('bad2:workers', Echo(), img_ids=['a', 'bad', 'c', 'd'], workers=2)
    run('other_ids', RankLogJob(bad_log),
        img_ids=['x', 'y'] if rank == 0 else ['x', 'z'])
    res['claims'] = claims
    res['slurm'] = _restart_with_slurm_launcher(rank, world, slurm_port)
    return res


def _restart_with_slurm_launcher(rank: int, world: int, port: int) -> dict:
    """A new group through MMEngine's slurm launcher (the environment
    ``srun`` gives each task), on the CPU."""
    import mmengine.dist
    import torch.distributed as dist
    dist.destroy_process_group()
    os.environ.update(SLURM_PROCID=str(rank), SLURM_NTASKS=str(world),
                      SLURM_LOCALID=str(rank), SLURM_NODELIST='localhost',
                      MASTER_PORT=str(port))
    mmengine.dist.init_dist('slurm', backend='gloo', timeout=60)
    total = torch.tensor([10. * (rank + 1)])
    dist.all_reduce(total)
    return dict(rank=dist.get_rank(), world=dist.get_world_size(),
                all_reduce=total.item())


@pytest.fixture(scope='module')
def two_ranks(tmp_path_factory):
    out = str(tmp_path_factory.mktemp('map_images_2ranks'))
    return out, run_ranks(_map_images_scenarios, 2, out, free_port())


def test_mmengine_init_dist_with_gloo_on_cpu(two_ranks):
    """``mmengine.dist.init_dist('pytorch', backend='gloo')`` starts the
    group on a CPU torch (without the guard: AttributeError _cuda_setDevice)
    and collectives work."""
    _, records = two_ranks
    for rank, record in enumerate(records):
        assert record['guard'] is True
        assert (record['rank'], record['world'], record['backend']) == (
            rank, 2, 'gloo')
        assert record['all_reduce'] == 3.0


def test_mmengine_slurm_launcher_with_gloo_on_cpu(two_ranks):
    _, records = two_ranks
    for rank, record in enumerate(records):
        assert record['slurm'] == dict(rank=rank, world=2, all_reduce=30.0)


def _log(out, name, rank):
    path = osp.join(out, name, f'rank{rank}.log')
    if not osp.isfile(path):
        return []
    with open(path) as f:
        return f.read().split()


def test_map_images_shards_every_file_written_exactly_once(two_ranks):
    out, records = two_ranks
    ids = [f'img{i:02d}' for i in range(13)]
    written = [_log(out, 'logs_ok', r) for r in (0, 1)]
    assert written[0] == ids[0::2] and written[1] == ids[1::2]
    assert sorted(written[0] + written[1]) == ids  # once each, none twice
    files = sorted(n for n in os.listdir(osp.join(out, 'ok'))
                   if n.endswith('.png'))
    assert files == [i + '.png' for i in ids]
    for i in ids:
        with open(osp.join(out, 'ok', i + '.png'), 'rb') as f:
            assert f.read() == i.encode()
    with open(osp.join(out, 'ok', 'settings.json')) as f:
        assert json.load(f) == dict(v=1)  # complete, no incomplete mark
    # the result counts the whole job; a rerun skips all of it
    for record in records:
        assert record['ok'] == dict(written=13, skipped=0)
        assert record['ok:again'] == dict(written=0, skipped=13)
    # rank 0 alone claims and releases the settings record
    # ok, ok:again; other_settings (refused), lost, bad, bad2 (not released)
    assert records[0]['claims'] == ['claim', 'release'] * 2 + ['claim'] * 4
    assert records[1]['claims'] == []


def test_map_images_errors_reach_every_rank(two_ranks):
    _, records = two_ranks
    # other settings: rank 0's claim fails, rank 1 is told, nobody waits
    assert 'v: 1 there, 2 now' in records[0]['ok:other_settings']['error']
    assert records[1]['ok:other_settings']['error'].startswith(
        'RuntimeError: claiming')
    assert 'failed on rank 0 of 2' in records[1]['ok:other_settings']['error']
    # a job error on rank 1 names the image there, and the rank on rank 0
    assert records[1]['bad']['error'] == (
        "ValueError: image 'bad': broken input")
    assert 'failed on rank 1 of 2' in records[0]['bad']['error']
    assert "image 'bad'" in records[0]['bad']['error']
    assert records[1]['bad2:workers']['error'] == (
        "ValueError: image 'bad': broken input")
    assert 'failed on rank 1 of 2' in records[0]['bad2:workers']['error']
    for record in records:
        assert 'different image id lists' in record['other_ids']['error']


def test_rank0_reports_a_file_missing_after_the_run(two_ranks):
    out, records = two_ranks
    lost = _log(out, 'logs_lost', 1)[0]  # rank 1's first file was deleted
    assert not osp.isfile(osp.join(out, 'lost', lost + '.png'))
    message = records[0]['lost']['error']
    assert message.startswith('RuntimeError:') and '1 of the 13' in message
    assert repr(lost) in message
    assert 'failed on rank 0' in records[1]['lost']['error']
    assert repr(lost) in records[1]['lost']['error']


def test_map_images_single_process_in_a_group_is_unchanged(tmp_path):
    """Without rank/world_size the process does all ids (also what code
    that only rank 0 runs gets); a wrong pair is refused."""
    from qaclims_mm.utils.image_jobs import MapResult, map_images
    job = RankLogJob(str(tmp_path))
    with pytest.raises(ValueError, match='rank 2 of world_size 2'):
        map_images(['a'], job, str(tmp_path / 'o'), rank=2, world_size=2)
    with pytest.raises(RuntimeError, match='not initialised'):
        map_images(['a'], job, str(tmp_path / 'o'), rank=0, world_size=2)
    assert map_images(['a', 'b'], lambda i: b'x', str(tmp_path / 'o'),
                      progress=False, rank=0, world_size=1) == MapResult(2, 0)


# ------------------------------------ the stock tools under torchrun (gloo)

ITERS = 6  # 48 train_aug images / (2 ranks x batch 4)


def _train_options(voc_root: str) -> list:
    return [
        'env_cfg.dist_cfg.backend=gloo',
        f'train_dataloader.dataset.data_root={voc_root}',
        f'test_dataloader.dataset.data_root={voc_root}',
        'train_dataloader.num_workers=0', 'test_dataloader.num_workers=0',
        'train_cfg.max_epochs=1', 'param_scheduler.0.end=1',
        'train_dataloader.batch_size=4', 'default_hooks.logger.interval=1',
        'log_processor.window_size=1'
    ]


def _run(cmd, **env):
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True,
                          timeout=300,
                          env=dict(os.environ, PYTHONUNBUFFERED='1', **env))
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-5000:]
    return out


def _assert_trained_on_two_ranks(work: str) -> None:
    runs = [d for d in os.listdir(work) if osp.isdir(osp.join(work, d))]
    assert len(runs) == 1, runs  # one log folder: rank 0 logs
    with open(osp.join(work, runs[0], 'vis_data', 'scalars.json')) as f:
        records = [json.loads(line) for line in f if line.strip()]
    train = [r for r in records if 'loss' in r]
    # the sampler split the 48 images over 2 ranks: 6 steps, not 12
    assert [r['step'] for r in train] == list(range(1, ITERS + 1))
    for r in train:
        assert math.isfinite(r['loss']) and math.isfinite(r['loss_cls'])
    ckpts = sorted(n for n in os.listdir(work) if n.endswith('.pth'))
    assert ckpts == ['epoch_1.pth']
    with open(osp.join(work, 'last_checkpoint')) as f:
        assert f.read().strip() == osp.join(work, 'epoch_1.pth')
    state = torch.load(osp.join(work, 'epoch_1.pth'), map_location='cpu',
                       weights_only=True)['state_dict']
    assert all(torch.isfinite(v.float()).all() for v in state.values())


@pytest.mark.skipif(not NO_CUDA, reason='the CPU path (gloo without CUDA)')
def test_stock_train_py_on_two_cpu_processes(synthetic_voc_root, tmp_path):
    """MMSegmentation's own tools/train.py under torchrun, 2 processes."""
    import mmseg
    stock = osp.join(osp.dirname(mmseg.__file__), '.mim', 'tools',
                     'train.py')
    work = str(tmp_path / 'work')
    _run([
        sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node',
        '2', '--master_port', str(free_port()), stock, CAM_CONFIG,
        '--work-dir', work, '--launcher', 'pytorch', '--cfg-options',
        *_train_options(synthetic_voc_root)
    ])
    _assert_trained_on_two_ranks(work)


@pytest.mark.skipif(not NO_CUDA or os.name != 'posix',
                    reason='the CPU path; bash scripts')
def test_dist_train_sh_on_two_cpu_processes(synthetic_voc_root, tmp_path):
    work = str(tmp_path / 'work')
    _run(['bash', 'tools/dist_train.sh', CAM_CONFIG, '2', '--work-dir', work,
          '--cfg-options', *_train_options(synthetic_voc_root)],
         PYTHON=sys.executable, PORT=str(free_port()))
    _assert_trained_on_two_ranks(work)
    # dist_test.sh: pseudo labels from 2 ranks; rank 0 logs the whole job
    config = tmp_path / 'labels_cfg.py'
    config.write_text(f'_base_ = [{CAM_CONFIG!r}]\ncustom_hooks = [dict('
                      "type='CAMToPseudoLabelHook', out_dir='labels')]\n")
    out = _run(['bash', 'tools/dist_test.sh', str(config),
                osp.join(work, 'epoch_1.pth'), '2', '--work-dir', work,
                '--cfg-options', *_train_options(synthetic_voc_root),
                'test_dataloader.sampler.round_up=False'],
               PYTHON=sys.executable, PORT=str(free_port()))
    labels = osp.join(work, 'labels')
    pngs = [n for n in os.listdir(labels) if n.endswith('.png')]
    assert len(pngs) == 24  # the synthetic 'train' split
    assert f'{len(pngs)} pseudo label(s) written, 0 already present' in out
    with open(osp.join(labels, 'settings.json')) as f:
        assert 'incomplete_overwrite' not in json.load(f)
