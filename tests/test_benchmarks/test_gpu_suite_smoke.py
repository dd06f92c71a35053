"""The GPU benchmark suite (``benchmarks/gpu_suite.py``) in its CPU smoke mode.

The suite runs once, in a subprocess where ``mmseg.models`` and ``mmcv.ops``
cannot be imported (as on the GPU machine, which has no mmcv with compiled
ops); the tests read the JSON and markdown it writes.
"""
import json
import math
import os
import os.path as osp
import subprocess
import sys

import pytest

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
SUITE = osp.join(REPO, 'benchmarks', 'gpu_suite.py')
EXPECTED = ('ritc_step', 'qape', 'random_walk_64x48', 'cam_inference',
            'deeplabv2_msc')

BLOCK = r'''
import importlib.abc, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name in ('mmseg.models', 'mmcv.ops') or name.startswith(
                ('mmseg.models.', 'mmcv.ops.')):
            raise ImportError(f'{name} blocked (simulated GPU machine)')
sys.meta_path.insert(0, Block())
import warnings
warnings.simplefilter('ignore')
'''


def _numbers(obj):
    """Every int / float in a JSON tree (bools excluded)."""
    if isinstance(obj, dict):
        for v in obj.values():
            yield from _numbers(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from _numbers(v)
    elif isinstance(obj, (int, float)) and not isinstance(obj, bool):
        yield obj


@pytest.fixture(scope='module')
def smoke(tmp_path_factory):
    out = str(tmp_path_factory.mktemp('gpu_suite'))
    argv = [SUITE, '--smoke', '--device', 'cpu', '--out', out]
    code = BLOCK + (f'import runpy\nsys.argv = {argv!r}\n'
                    f'runpy.run_path({SUITE!r}, run_name="__main__")\n')
    proc = subprocess.run([sys.executable, '-c', code], capture_output=True,
                          text=True, timeout=600, cwd=REPO)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    with open(osp.join(out, 'results.json')) as f:
        results = json.load(f)
    with open(osp.join(out, 'results.md')) as f:
        table = f.read()
    return results, table, proc.stdout


def test_every_benchmark_ran_with_finite_numbers_and_equal_results(smoke):
    results, _, _ = smoke
    benchmarks = results['benchmarks']
    assert sorted(benchmarks) == sorted(EXPECTED)
    for name, b in benchmarks.items():
        assert b['status'] == 'ok', (name, b.get('reason'))
        assert all(math.isfinite(x) for x in _numbers(b)), name
        for v in b['variants']:
            assert v['ms'] > 0, (name, v)
        if b['reference'] is not None:
            assert b['equal'] is True, (name, b['checks'])
            ours = b['variants'][1]
            assert ours['speedup'] > 0, name
        else:  # the DeepLab reference point has no second implementation
            assert b['equal'] is None and b['checks']['loss_finite'], name
    # CPU memory: growth of the peak resident set, measured where Linux
    # allows resetting it
    assert results['meta']['memory'].startswith('CPU')
    assert results['meta']['smoke'] is True


def test_ritc_counts_flops_and_profiles_when_stretch_goal_unassessed(smoke):
    b = smoke[0]['benchmarks']['ritc_step']
    assert b['checks']['loss_rel_diff'] < 1e-4
    assert b['checks']['cam_grad_rel_diff'] < 1e-3
    assert [v['name'].split(':')[0] for v in b['variants']] == [
        'reference', 'ours', 'ours', 'ours']
    assert b['flops_per_iter'] > 0
    assert all(v['tflops'] > 0 for v in b['variants'])
    names = [t['name'] for t in b['targets']]
    assert len(names) == 4 and 'stretch' in names[-1]
    assert b['targets'][-1]['met'] is None  # no bf16 peak on a CPU
    assert 'Name' in b['profile_bf16']  # torch.profiler table header


def test_qape_answers_identical_and_voc_estimate(smoke):
    b = smoke[0]['benchmarks']['qape']
    assert b['checks']['identical'] is True
    assert b['checks']['questions'] == 16 * b['shapes']['pairs']
    est = b['voc_estimate']
    assert est['pairs'] == 18605 and est['questions'] == 18605 * 16
    ours = b['variants'][1]['pairs_per_s']
    assert est['ours_s'] == pytest.approx(18605 / ours)


def test_random_walk_labels_agree(smoke):
    b = smoke[0]['benchmarks']['random_walk_64x48']
    assert b['checks']['pixels'] == 48 * 64
    assert b['checks']['pixels_differ'] == 0
    assert [t['name'] for t in b['targets']] == [
        'speed vs dense (x)', 'peak memory vs dense (x)']


def test_markdown_table_is_written_and_printed(smoke):
    _, table, stdout = smoke
    assert table.strip() in stdout
    assert '| benchmark | variant |' in table
    for name in EXPECTED:
        assert f'| {name} |' in table
    assert 'Top ops of one bf16 step (ritc_step)' in table


def test_budget_exhausted_benchmarks_are_skipped(tmp_path):
    sys.path.insert(0, osp.dirname(SUITE))
    try:
        import gpu_suite
    finally:
        sys.path.remove(osp.dirname(SUITE))
    args = gpu_suite.parse_args(['--smoke', '--device', 'cpu', '--budget-s',
                                 '0', '--out', str(tmp_path)])
    res = gpu_suite.run_suite(args)
    assert sorted(res['benchmarks']) == sorted(EXPECTED)
    assert all(b['status'] == 'skipped' and 'budget' in b['reason']
               for b in res['benchmarks'].values())
    table = gpu_suite.to_markdown(res)
    assert 'skipped: time budget exhausted' in table


def test_core_components_build_from_the_registry_without_mmseg_models():
    """On mmcv-lite the mmseg MODELS registry must still build
    RegionTextHead (its first lookup would import mmseg.models and fail)."""
    code = BLOCK + '''
import torch
from mmengine.registry import init_default_scope
from mmseg.registry import MODELS
import qaclims_mm  # noqa: F401
init_default_scope('mmseg')
head = MODELS.build(dict(
    type='RegionTextHead', in_channels=8, num_classes=3, clip_input_size=32,
    clip=dict(type='MaskPromptedCLIP', model_cfg=dict(
        embed_dim=16, vision_cfg=dict(image_size=32, patch_size=8, width=32,
                                      layers=3, head_width=16))),
    text_source=dict(type='QACorpusTextSource'),
    losses=dict(loss_reg=dict(type='AreaRegularizationLoss'))))
assert type(head).__name__ == 'RegionTextHead'
try:
    MODELS.build(dict(type='EncoderDecoder'))
except KeyError as e:
    assert 'EncoderDecoder' in str(e)
else:
    raise AssertionError('EncoderDecoder built without mmseg.models')
print('built ok')
'''
    proc = subprocess.run([sys.executable, '-c', code], capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert 'built ok' in proc.stdout


def test_shell_wrapper_runs_the_suite_and_keeps_the_log(tmp_path):
    out = tmp_path / 'out'
    env = dict(os.environ, PYTHON=sys.executable, SUITE_TIMEOUT='300')
    proc = subprocess.run(
        ['bash', osp.join(REPO, 'benchmarks', 'gpu_suite.sh'), str(out),
         '--smoke', '--device', 'cpu', '--only', 'random_walk'],
        capture_output=True, text=True, timeout=400, env=env,
        cwd=str(tmp_path))
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    with open(out / 'results.json') as f:
        res = json.load(f)
    assert list(res['benchmarks']) == ['random_walk_64x48']
    assert res['benchmarks']['random_walk_64x48']['equal'] is True
    assert '| random_walk_64x48 |' in (out / 'log.txt').read_text()
