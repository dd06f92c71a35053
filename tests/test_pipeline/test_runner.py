"""The pipeline runner: graph validation, paths, skip / resume / re-run on
change, stage selection, and the stock ``tools/train.py`` entry point
(including a kill -9 in the middle of a per-image stage).

The stages are the toy types of ``runner_toy_stages`` (no ML)."""
import importlib.util
import json
import os
import os.path as osp
import signal
import socket
import subprocess
import sys
import time

import pytest
from mmengine.config import Config

import runner_toy_stages as toy
from qaclims_mm.pipeline import (PipelineConfigError, StageInputError,
                                 WSSSPipelineRunner, build_graph,
                                 select_stages)
from qaclims_mm.pipeline import fingerprint as fp
from qaclims_mm.pipeline.graph import resolve_config_path
from qaclims_mm.pipeline.manifest import read_manifest, started_path

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOY_DIR = osp.dirname(osp.abspath(toy.__file__))
STOCK_TRAIN = osp.join(
    osp.dirname(__import__('mmseg').__file__), '.mim', 'tools', 'train.py')


def chain(scale=1, n=5, out='gen/out', **gen):
    """gen (writes n files) -> total (sum * scale) -> final (2 * total)."""
    return [
        dict(name='gen', type='ToyWriteStage', n=n, value=1,
             outputs=dict(out=out), **gen),
        dict(name='total', type='ToySumStage', scale=scale,
             inputs=dict(numbers=out),
             outputs=dict(total='total/total.txt')),
        dict(name='final', type='ToySumStage', scale=2,
             inputs=dict(numbers='total/total.txt'),
             outputs=dict(total='final/final.txt')),
    ]


def run(work_dir, stages, files=None, **kwargs):
    runner = WSSSPipelineRunner(work_dir=str(work_dir), stages=stages,
                                files=files, progress=False, **kwargs)
    return {r['stage']: r for r in runner.train()}


def read(path):
    with open(path) as f:
        return f.read()


# ---------------------------------------------------------------- the graph
def test_unconnected_input_and_duplicate_output_listed_at_once(tmp_path):
    stages = [
        dict(name='a', type='ToyWriteStage', outputs=dict(out='same')),
        dict(name='b', type='ToySumStage', inputs=dict(numbers='nowhere/x'),
             outputs=dict(total='same')),
        dict(name='c', type='ToySumStage', inputs=dict(numbers='d/out.txt'),
             outputs=dict(total='c.txt')),
        dict(name='d', type='ToySumStage', inputs=dict(numbers='same'),
             outputs=dict(total='d/out.txt')),
    ]
    with pytest.raises(PipelineConfigError) as e:
        WSSSPipelineRunner(str(tmp_path / 'w'), stages)
    msg = str(e.value)
    assert len(e.value.problems) == 3, msg
    assert ("stage 'b' input 'numbers' (%s) is produced by no earlier stage "
            'and is not in files' % (tmp_path / 'w' / 'nowhere' / 'x')) in msg
    assert "stages 'a' and 'b' both declare the output" in msg
    assert ("stage 'c' input 'numbers'" in msg
            and "stage 'd' writes it, but stages run in config order" in msg)
    assert not (tmp_path / 'w').exists()  # nothing ran, nothing written


def test_names_types_and_overlapping_outputs(tmp_path):
    stages = [
        dict(name='Gen', type='ToyWriteStage', outputs=dict(out='o')),
        dict(name='x', type='NoSuchStage', outputs=dict(out='o/inner')),
        dict(name='x', type='ToyWriteStage', outputs=dict(out='.')),
        dict(name='y', type='ToySumStage', outputs=dict(total='y.txt')),
    ]
    with pytest.raises(PipelineConfigError) as e:
        build_graph(None, stages, str(tmp_path))
    msg = str(e.value)
    assert "name 'Gen' must match [a-z0-9_]+" in msg
    assert "stage name 'x' is used twice" in msg
    assert "type 'NoSuchStage' is not a registered pipeline stage" in msg
    assert 'overlap' in msg
    assert "output 'out' (%s) holds the work dir" % tmp_path in msg
    assert "stage 'y' (ToySumStage): stage 'y' (ToySumStage) lacks the " \
        "inputs ['numbers']" in msg
    stages = [
        dict(name='a', type='ToyWriteStage', outputs=dict(out='b/x')),
        dict(name='b', type='ToyWriteStage', outputs=dict(out='b/y')),
        dict(name='c', type='ToySumStage', inputs=dict(numbers='{f}'),
             outputs=dict(total='c.txt')),
    ]
    with pytest.raises(PipelineConfigError) as e:
        build_graph(dict(f=dict(path=str(tmp_path / 'c' / 'f.txt'))), stages,
                    str(tmp_path))
    assert e.value.problems == [
        "stage 'a' output 'out' (%s) overlaps the folder of stage 'b' (%s), "
        'which that stage wipes and re-creates' % (tmp_path / 'b/x',
                                                    tmp_path / 'b'),
        "provided file 'f' (%s) lies in the folder of stage 'c', which that "
        'stage wipes' % (tmp_path / 'c/f.txt')]


def test_missing_files_listed_with_help_before_anything_runs(tmp_path,
                                                           monkeypatch):
    monkeypatch.chdir(tmp_path)
    files = dict(
        weights=dict(path='data/w.pth', help='docs/install.md#weights'),
        data=dict(path='data/voc', help='docs/data.md#voc-2012'),
        other=dict(path='data/other', help='docs/data.md#other'))
    stages = [
        dict(name='gen', type='ToyWriteStage', outputs=dict(out='gen/out')),
        dict(name='a', type='ToySumStage', inputs=dict(numbers='{weights}'),
             outputs=dict(total='a.txt')),
        dict(name='b', type='ToySumStage',
             inputs=dict(numbers='{data}/JPEGImages'),
             outputs=dict(total='b.txt')),
        dict(name='c', type='ToySumStage', inputs=dict(numbers='{other}'),
             outputs=dict(total='c.txt')),
    ]
    runner = WSSSPipelineRunner('w', stages, files, run_stages=['gen', 'a',
                                                                 'b'])
    with pytest.raises(PipelineConfigError) as e:
        runner.train()
    msg = str(e.value)
    assert e.value.problems == [
        f'files.weights: {tmp_path}/data/w.pth not found '
        '(see docs/install.md#weights)',
        f'files.data: {tmp_path}/data/voc not found '
        '(see docs/data.md#voc-2012)']  # 'other' is read by no selected stage
    assert 'nothing was run' in msg
    assert toy.read_calls(str(tmp_path / 'w')) == []  # gen did not run


def test_class_count_mismatch_static_and_recorded(tmp_path):
    stages = chain()
    stages[0]['num_classes'] = 20
    stages[1]['num_classes'] = 80
    with pytest.raises(PipelineConfigError) as e:
        WSSSPipelineRunner(str(tmp_path), stages)
    assert ("class count mismatch: stage 'total' works with 80 classes but "
            "its input 'numbers' comes from stage 'gen' with 20 classes"
            ) in str(e.value)
    # gen ran with 20 classes; the config now says 80 for both stages, but
    # gen is not re-run: the hand-off refuses gen's recorded count
    stages[1]['num_classes'] = 20
    run(tmp_path, stages[:2])
    stages[0]['num_classes'] = stages[1]['num_classes'] = 80
    with pytest.raises(StageInputError, match="stage 'gen', which wrote its "
                       "input 'numbers', recorded 20 classes"):
        run(tmp_path, stages[:2], run_stages=['total'])


def test_paths_resolved(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / 'data' / 'voc' / 'JPEGImages').mkdir(parents=True)
    (tmp_path / 'cfgs').mkdir()
    (tmp_path / 'cfgs' / 'sub.py').write_text('x = 1\n')
    (tmp_path / 'cwd_only.py').write_text('x = 2\n')
    files = dict(voc=dict(path='data/voc', help='h'))
    stages = [
        dict(name='a', type='ToySumStage',
             inputs=dict(numbers='{voc}/JPEGImages'),
             outputs=dict(total='a/total.txt'), config='sub.py'),
        dict(name='b', type='ToySumStage', inputs=dict(numbers='a/total.txt'),
             outputs=dict(total=str(tmp_path / 'abs' / 'b.txt')),
             params=dict(config='cwd_only.py')),
    ]
    graph = build_graph(files, stages, 'work', str(tmp_path / 'cfgs'))
    a, b = graph.nodes[0].stage, graph.nodes[1].stage
    assert a.inputs == dict(numbers=str(tmp_path / 'data/voc/JPEGImages'))
    assert a.outputs == dict(total=str(tmp_path / 'work/a/total.txt'))
    assert a.params['config'] == str(tmp_path / 'cfgs' / 'sub.py')
    assert b.inputs == dict(numbers=str(tmp_path / 'work/a/total.txt'))
    assert b.outputs == dict(total=str(tmp_path / 'abs/b.txt'))
    assert b.params['config'] == str(tmp_path / 'cwd_only.py')
    assert graph.nodes[1].sources['numbers'].name == 'a'
    assert graph.nodes[0].sources['numbers'].kind == 'file'
    # the config folder wins over the cwd
    (tmp_path / 'sub.py').write_text('x = 3\n')
    assert resolve_config_path('sub.py', str(tmp_path / 'cfgs')) == str(
        tmp_path / 'cfgs' / 'sub.py')
    bad = [dict(stages[0], inputs=dict(numbers='{nope}/x'),
                config='missing.py')]
    with pytest.raises(PipelineConfigError) as e:
        build_graph(files, bad, 'work', str(tmp_path / 'cfgs'))
    assert "names ['nope'], which the files block lacks" in str(e.value)
    assert 'sub-config missing.py not found' in str(e.value)


# ------------------------------------------------------ skip / resume / rerun
def test_skip_on_rerun_and_manifest(tmp_path):
    first = run(tmp_path, chain())
    assert [r['status'] for r in first.values()] == ['ran'] * 3
    assert first['total']['metrics']['total'] == 10  # 0+1+2+3+4
    assert read(tmp_path / 'final/final.txt') == '20\n'
    second = run(tmp_path, chain())
    assert toy.read_calls(str(tmp_path)) == [
        'gen resume=False', 'total resume=False', 'final resume=False']
    assert [r['status'] for r in second.values()] == ['skipped'] * 3
    assert second['final']['metrics']['total'] == 20  # re-read
    manifest = read_manifest(str(tmp_path / 'total'))
    assert manifest['outputs'] == dict(total=str(tmp_path / 'total/total.txt'))
    assert manifest['inputs']['numbers']['fingerprint'] == (
        'stage:gen:' + read_manifest(str(tmp_path / 'gen'))['key'])
    assert manifest['metrics']['total'] == 10
    assert manifest['settings']['params']['scale'] == 1
    assert not osp.exists(started_path(str(tmp_path / 'total')))
    log = read(tmp_path / 'pipeline.log')
    assert '[stage 2/3] total: ran in' in log
    assert '— total 10, mIoU 12.35' in log
    assert '[stage 3/3] final: skipped (complete' in log
    summary = json.loads(read(tmp_path / 'summary.json'))
    assert [s['status'] for s in summary['stages']][-3:] == ['skipped'] * 3


def test_resume_partly_done_stage(tmp_path, monkeypatch):
    calls = []

    def sleep_then_die(_):
        calls.append(1)
        if len(calls) == 4:  # 3 files written, killed before the 4th
            raise KeyboardInterrupt

    monkeypatch.setattr(toy.time, 'sleep', sleep_then_die)
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path, chain(n=6))
    assert sorted(os.listdir(tmp_path / 'gen/out')) == [
        '000.txt', '001.txt', '002.txt']
    assert read_manifest(str(tmp_path / 'gen')) is None
    monkeypatch.undo()
    records = run(tmp_path, chain(n=6))
    assert records['gen']['status'] == 'resumed'
    assert records['gen']['metrics'] == dict(written=3)  # only the rest
    assert toy.read_calls(str(tmp_path))[-3:] == [
        'gen resume=True', 'total resume=False', 'final resume=False']
    assert read(tmp_path / 'total/total.txt') == '15\n'


def test_config_change_reruns_stage_and_downstream_only(tmp_path):
    run(tmp_path, chain())
    records = run(tmp_path, chain(scale=3))
    assert {k: r['status'] for k, r in records.items()} == dict(
        gen='skipped', total='ran', final='ran')
    assert toy.read_calls(str(tmp_path))[3:] == [
        'total resume=False', 'final resume=False']
    assert read(tmp_path / 'final/final.txt') == '60\n'
    assert 'total: running (settings changed)' in read(tmp_path /
                                                       'pipeline.log')
    # a changed stage is wiped first: its old outputs (here outside its
    # stage folder) do not leak into the new run
    run(tmp_path, chain(scale=3, out='numbers'))
    run(tmp_path, chain(scale=3, n=3, out='numbers'))
    assert sorted(os.listdir(tmp_path / 'numbers')) == [
        '000.txt', '001.txt', '002.txt']
    assert read(tmp_path / 'final/final.txt') == '18\n'


def test_provided_file_change_reruns_readers(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / 'numbers.txt').write_text('1 2 3\n')
    files = dict(numbers=dict(path='numbers.txt', help='h'))
    stages = [
        dict(name='gen', type='ToyWriteStage', outputs=dict(out='gen/out')),
        dict(name='total', type='ToySumStage',
             inputs=dict(numbers='{numbers}'), outputs=dict(total='t.txt')),
        dict(name='final', type='ToySumStage', inputs=dict(numbers='t.txt'),
             outputs=dict(total='f.txt')),
    ]
    run('w', stages, files)
    os.utime(tmp_path / 'numbers.txt', ns=(1, 1))  # same content
    statuses = [r['status'] for r in run('w', stages, files).values()]
    assert statuses == ['skipped'] * 3
    (tmp_path / 'numbers.txt').write_text('1 2 4\n')
    records = run('w', stages, files)
    assert [r['status'] for r in records.values()] == [
        'skipped', 'ran', 'ran']
    assert read(tmp_path / 'w/f.txt') == '7\n'
    assert "inputs changed: ['numbers']" in read(tmp_path / 'w/pipeline.log')


def test_deleted_output_reruns_complete_stage(tmp_path):
    run(tmp_path, chain())
    os.remove(tmp_path / 'total/total.txt')
    records = run(tmp_path, chain())
    assert [r['status'] for r in records.values()] == [
        'skipped', 'ran', 'skipped']
    assert read(tmp_path / 'total/total.txt') == '10\n'


def test_declared_output_must_exist(tmp_path):
    stages = [dict(name='lazy', type='ToyLazyStage',
                   outputs=dict(out='lazy/out'))]
    with pytest.raises(StageInputError, match="stage 'lazy' finished "
                       "without writing its declared outputs"):
        run(tmp_path, stages)
    assert read_manifest(str(tmp_path / 'lazy')) is None


# ---------------------------------------------------------------- selection
def test_select_stages():
    names = ['a', 'b', 'c', 'd']
    assert select_stages(names) == names
    assert select_stages(names, 'c,a') == ['a', 'c']
    assert select_stages(names, from_stage='c') == ['c', 'd']
    assert select_stages(names, ['a', 'd'], 'b') == ['d']
    with pytest.raises(PipelineConfigError, match=r"unknown stages \['x'\]"):
        select_stages(names, ['a', 'x'])
    with pytest.raises(PipelineConfigError, match="unknown stage 'y'"):
        select_stages(names, from_stage='y')


def test_run_stages_and_from_stage(tmp_path):
    records = run(tmp_path, chain(), run_stages=['gen'])
    assert list(records) == ['gen']
    assert not (tmp_path / 'total').exists()
    records = run(tmp_path, chain(scale=2), from_stage='total')
    assert {k: r['status'] for k, r in records.items()} == dict(
        total='ran', final='ran')
    assert toy.read_calls(str(tmp_path)) == [
        'gen resume=False', 'total resume=False', 'final resume=False']
    assert read(tmp_path / 'final/final.txt') == '40\n'


def test_selected_stage_needs_incomplete_unselected_stage(tmp_path):
    with pytest.raises(PipelineConfigError) as e:
        run(tmp_path, chain(), run_stages='total,final')
    assert ("stage 'total' reads %s (output 'out' of stage 'gen'), but 'gen' "
            'is not selected' % (tmp_path / 'gen/out')) in str(e.value)
    assert toy.read_calls(str(tmp_path)) == []


# -------------------------------------------------------------- fingerprints
def test_fingerprints(tmp_path, monkeypatch):
    f = tmp_path / 'f.bin'
    f.write_bytes(b'abc')
    first = fp.file_fingerprint(str(f))
    os.utime(f, ns=(5, 5))
    assert fp.file_fingerprint(str(f)) == first  # content
    monkeypatch.setattr(fp, 'CONTENT_HASH_LIMIT', 2)
    assert fp.file_fingerprint(str(f)) == 'stat:3:5'  # large: size + mtime
    d = tmp_path / 'd'
    (d / 'sub').mkdir(parents=True)
    (d / 'sub' / 'x').write_bytes(b'1')
    tree = fp.path_fingerprint(str(d))
    assert tree.startswith('tree:')
    os.utime(d / 'sub' / 'x', ns=(7, 7))
    assert fp.path_fingerprint(str(d)) != tree
    with pytest.raises(FileNotFoundError, match='missing'):
        fp.path_fingerprint(str(tmp_path / 'missing'))
    key = fp.stage_key(dict(a=1, b=[1, 2]), dict(x='1'))
    assert key == fp.stage_key(dict(b=[1, 2], a=1), dict(x='1'))
    assert key != fp.stage_key(dict(a=1, b=[1, 2]), dict(x='2'))


# ---------------------------------------------------------- ranks (mocked)
def test_rank0_errors_reach_other_ranks(tmp_path, monkeypatch):
    from mmengine import dist
    runner = WSSSPipelineRunner(str(tmp_path), chain())
    runner.rank, runner.world_size = 1, 2

    def broadcast(box, src=0):
        box[:] = ['ValueError: bad input', None]

    monkeypatch.setattr(dist, 'broadcast_object_list', broadcast)
    called = []
    with pytest.raises(RuntimeError, match='planning failed on rank 0: '
                       'ValueError: bad input'):
        runner._on_rank0(lambda: called.append(1), 'planning')
    assert called == []  # rank 1 never runs a rank-0 job
    monkeypatch.setattr(dist, 'all_gather_object',
                        lambda msg: ['OSError: disk full', msg])
    with pytest.raises(RuntimeError, match="stage 'gen' failed on rank 0"):
        runner._on_all(lambda: called.append(2), "stage 'gen'")
    assert called == [2]


def test_amp_refused_without_cuda_only_for_training_stages(tmp_path,
                                                           monkeypatch):
    import torch
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    records = run(tmp_path, chain(), amp=True)  # no stage trains
    assert records['final']['status'] == 'ran'
    stages = chain()
    stages[2]['type'] = 'ToyTrainStage'
    with pytest.raises(PipelineConfigError, match=r"stages \['final'\] "
                       'would train with it'):
        run(tmp_path, stages, amp=True)


def test_from_cfg_reads_train_py_keys(tmp_path):
    cfg = Config(dict(
        runner_type='WSSSPipelineRunner', work_dir=str(tmp_path / 'w'),
        launcher='none', resume=True, stages=chain(), run_stages=['gen'],
        optim_wrapper=dict(type='AmpOptimWrapper'),
        env_cfg=dict(dist_cfg=dict(backend='gloo'))))
    from mmseg.registry import RUNNERS
    runner = RUNNERS.build(cfg)
    assert isinstance(runner, WSSSPipelineRunner)
    assert runner.amp and runner.selected == ['gen']
    assert runner.env_cfg['dist_cfg'] == dict(backend='gloo')
    assert runner.work_dir == str(tmp_path / 'w')
    # a config file keeps {name} placeholders; --cfg-options reach stages
    (tmp_path / 'n.txt').write_text('4 5\n')
    path = tmp_path / 'p.py'
    path.write_text(f"""
files = dict(numbers=dict(path={str(tmp_path / 'n.txt')!r}, help='h'))
stages = [dict(name='total', type='ToySumStage',
               inputs=dict(numbers='{{numbers}}'), outputs=dict(total='t'))]
""")
    cfg = Config.fromfile(str(path))
    cfg.merge_from_dict({'stages.0.scale': 3, 'work_dir': str(tmp_path)})
    assert cfg.stages[0]['inputs']['numbers'] == '{numbers}'
    assert WSSSPipelineRunner.from_cfg(cfg).train()[0]['metrics'][
        'total'] == 27


# -------------------------------------------------- tools/train.py, kill -9
def write_config(tmp_path, n=5, delay=0.0, stage_type='ToySumStage'):
    """A pipeline config file using the toy stages (via custom_imports)."""
    path = tmp_path / 'toy_pipeline.py'
    path.write_text(f"""
default_scope = 'mmseg'
custom_imports = dict(imports=['qaclims_mm', 'runner_toy_stages'],
                      allow_failed_imports=False)
runner_type = 'WSSSPipelineRunner'
optim_wrapper = dict(type='OptimWrapper')
env_cfg = dict(dist_cfg=dict(backend='nccl'))
stages = [
    dict(name='gen', type='ToyWriteStage', n={n}, value=3, delay={delay},
         outputs=dict(out='gen/out')),
    dict(name='total', type='{stage_type}', inputs=dict(numbers='gen/out'),
         outputs=dict(total='total/total.txt')),
]
run_stages = None
from_stage = None
""")
    return str(path)


def tool_cmd(script, config, *args):
    return [sys.executable, script, config, *args]


def tool_env():
    path = [REPO, TOY_DIR, os.environ.get('PYTHONPATH', '')]
    return dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in path if p))


def run_tool(script, config, *args, check=True, cwd=None):
    proc = subprocess.run(tool_cmd(script, config, *args), cwd=cwd,
                          env=tool_env(), capture_output=True, text=True,
                          timeout=300)
    if check:
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


def folder_bytes(root):
    out = {}
    for folder, _, files in os.walk(root):
        for name in files:
            path = osp.join(folder, name)
            with open(path, 'rb') as f:
                out[osp.relpath(path, root)] = f.read()
    return out


@pytest.mark.parametrize('script', [STOCK_TRAIN,
                                    osp.join(REPO, 'tools', 'train.py')],
                         ids=['stock', 'ours'])
def test_train_py_runs_a_pipeline(tmp_path, script):
    config = write_config(tmp_path)
    work = tmp_path / 'work'
    proc = run_tool(script, config, '--work-dir', str(work), '--resume',
                    '--cfg-options', 'run_stages=[gen]', cwd=str(tmp_path))
    assert toy.read_calls(str(work)) == ['gen resume=False']
    assert read(work / 'gen/out/004.txt') == '12'
    assert '[stage 1/2] gen: ran in' in proc.stdout + proc.stderr
    assert json.loads(read(work / 'summary.json'))['stages'][0]['metrics'] \
        == dict(written=5)


@pytest.mark.skipif(__import__('torch').cuda.is_available(),
                    reason='checks --amp on a CPU-only torch')
def test_amp_on_cpu_refused_only_for_training_stages(tmp_path, monkeypatch):
    # stock train.py flips optim_wrapper.type; the runner refuses it, naming
    # the stage, before anything runs; work_dirs/<config name> by default
    config = write_config(tmp_path, stage_type='ToyTrainStage')
    proc = run_tool(STOCK_TRAIN, config, '--amp', check=False,
                    cwd=str(tmp_path))
    assert proc.returncode != 0
    assert "stages ['total'] would train with it" in proc.stderr
    work = tmp_path / 'work_dirs' / 'toy_pipeline'
    assert osp.isfile(work / 'pipeline.log')
    assert toy.read_calls(str(work)) == []
    # our tools/train.py hands a pipeline config to the runner the same way
    monkeypatch.chdir(tmp_path)
    spec = importlib.util.spec_from_file_location(
        'pipeline_train_tool', osp.join(REPO, 'tools', 'train.py'))
    our_train = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(our_train)
    cfg = our_train.build_config(our_train.parse_args(
        [config, '--amp', '--resume']))
    assert cfg.optim_wrapper.type == 'AmpOptimWrapper'
    assert cfg.resume is True and 'custom_hooks' not in cfg
    with pytest.raises(PipelineConfigError, match='would train with it'):
        WSSSPipelineRunner.from_cfg(cfg).train()
    cfg = our_train.build_config(our_train.parse_args(
        [write_config(tmp_path), '--amp']))
    assert WSSSPipelineRunner.from_cfg(cfg).train()[-1]['status'] == 'ran'


def test_kill_9_mid_stage_then_rerun_is_identical(tmp_path):
    config = write_config(tmp_path, n=40, delay=0.05)
    reference = tmp_path / 'reference'
    cfg = Config.fromfile(config)
    cfg.work_dir = str(reference)
    WSSSPipelineRunner.from_cfg(cfg).train()  # uninterrupted, in-process
    killed = tmp_path / 'killed'
    proc = subprocess.Popen(
        tool_cmd(STOCK_TRAIN, config, '--work-dir', str(killed)),
        env=tool_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    out = killed / 'gen' / 'out'
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if out.is_dir() and len(os.listdir(out)) >= 10:
            break
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = len([f for f in os.listdir(out) if f.endswith('.txt')])
    assert 10 <= done < 40, done  # killed inside the per-image stage
    assert read_manifest(str(killed / 'gen')) is None
    run_tool(STOCK_TRAIN, config, '--work-dir', str(killed))
    assert toy.read_calls(str(killed)) == [
        'gen resume=False', 'gen resume=True', 'total resume=False']

    def outputs(root):
        # atomic writes: a kill may leave a hidden .tmp, never a partial file
        return {k: v for k, v in folder_bytes(root).items()
                if k.startswith(('gen' + os.sep + 'out', 'total' + os.sep +
                                 'total.txt')) and not k.endswith('.tmp')}

    assert outputs(killed) == outputs(reference)
    assert len(outputs(killed)) == 41
    assert read(killed / 'total/total.txt') == str(3 * sum(range(40))) + '\n'


def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def test_two_ranks_gloo(tmp_path):
    """rank-0 stages run once, 'all' stages on both ranks, every rank gets
    the same records; a rerun skips everything."""
    stages = [
        dict(name='gen', type='ToyWriteStage', n=3, outputs=dict(out='a')),
        dict(name='shard', type='ToyShardStage', n=7, value=2,
             outputs=dict(out='b')),
        dict(name='total', type='ToySumStage', inputs=dict(numbers='b'),
             outputs=dict(total='t.txt')),
    ]
    cmd = [sys.executable, '-m', 'torch.distributed.run',
           '--nproc_per_node', '2', '--master_port', str(free_port()),
           osp.join(TOY_DIR, 'runner_two_ranks.py'), json.dumps(stages),
           str(tmp_path)]

    def launch():
        proc = subprocess.run(cmd, env=tool_env(), capture_output=True,
                              text=True, timeout=300)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        return {rank: json.loads(read(tmp_path / f'records.rank{rank}.json'))
                for rank in (0, 1)}

    records = launch()

    def no_times(recs):
        return [{k: v for k, v in r.items() if k != 'wall_time_s'}
                for r in recs]

    assert no_times(records[0]) == no_times(records[1])
    assert [r['status'] for r in records[0]] == ['ran'] * 3
    assert records[0][1]['metrics'] == dict(world_size=2)
    assert read(tmp_path / 't.txt') == f'{2 * sum(range(7))}\n'
    assert toy.read_calls(str(tmp_path)) == ['gen resume=False',
                                             'total resume=False']
    for rank in (0, 1):
        assert read(tmp_path / f'calls.rank{rank}.log') == \
            'shard resume=False\n'
    records = launch()
    assert [r['status'] for r in records[1]] == ['skipped'] * 3
    assert len(toy.read_calls(str(tmp_path))) == 2
