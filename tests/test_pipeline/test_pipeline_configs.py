"""Every shipped pipeline config builds and validates its stage graph.

The files a user provides (datasets, weights) are replaced by tiny stand-ins
in a temporary folder, so that the graph check, the provided-file check and
every stage's fingerprint (its fully resolved sub-config) run for real.
"""
import glob
import os
import os.path as osp

import pytest
from mmengine.config import Config

import qaclims_mm  # noqa: F401
from qaclims_mm.pipeline import PipelineConfigError, WSSSPipelineRunner
from qaclims_mm.pipeline.graph import check_provided_files

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIGS = sorted(glob.glob(osp.join(REPO, 'configs', 'pipelines', '*.py')))


def _stand_in(path: str) -> None:
    """A folder for a dataset/model folder, a small file for weights."""
    if osp.splitext(path)[1] in ('.pth', '.pt', '.bin', '.safetensors'):
        os.makedirs(osp.dirname(path), exist_ok=True)
        with open(path, 'wb') as f:
            f.write(b'stand-in')
    else:
        os.makedirs(path, exist_ok=True)


def test_every_pipeline_config_is_tested():
    names = {osp.basename(c) for c in CONFIGS}
    assert {'qaclims_r50_voc12aug.py', 'qaclims_r50_coco14.py',
            'clims_r50_voc12aug.py', 'qaclims_synthetic-voc.py'} <= names


@pytest.mark.parametrize('config', CONFIGS, ids=osp.basename)
def test_pipeline_config_graph(config, tmp_path):
    cfg = Config.fromfile(config)
    assert cfg.runner_type == 'WSSSPipelineRunner'
    assert cfg.optim_wrapper.type == 'OptimWrapper'  # what --amp flips
    for name, entry in (cfg.get('files') or {}).items():
        entry['path'] = str(tmp_path / 'provided' / name / osp.basename(
            entry['path']))
        assert entry.get('help', '').startswith('docs/'), name
        _stand_in(entry['path'])
    cfg.work_dir = str(tmp_path / 'work')
    runner = WSSSPipelineRunner.from_cfg(cfg)
    check_provided_files(runner.graph, runner.selected)  # all present
    names = [n.name for n in runner.graph.nodes]
    assert len(names) == len(set(names)) >= 3
    for node in runner.graph.nodes:
        node.stage.settings()  # resolves every sub-config
        for path in node.outputs.values():
            assert path.startswith(cfg.work_dir), (node.name, path)


@pytest.mark.parametrize('config', [
    c for c in CONFIGS if Config.fromfile(c).get('files')
], ids=osp.basename)
def test_missing_files_listed_before_anything_runs(config, tmp_path):
    cfg = Config.fromfile(config)
    for name, entry in cfg.files.items():
        entry['path'] = str(tmp_path / 'absent' / name)
    cfg.work_dir = str(tmp_path / 'work')
    runner = WSSSPipelineRunner.from_cfg(cfg)
    with pytest.raises(PipelineConfigError) as error:
        runner.train()
    for name, entry in cfg.files.items():
        assert f'files.{name}' in str(error.value)
        assert entry['help'].split()[0] in str(error.value)
    assert not osp.exists(osp.join(cfg.work_dir, 'summary.json'))
