"""Every shipped config builds, and the configs follow the layout rules.

Named weight files (backbone checkpoints, CLIP, the text tower) are replaced
by tiny stand-ins, so every model builds on CPU without downloads.
"""
import glob
import os.path as osp
import re

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmseg.registry import MODELS, TRANSFORMS

import qaclims_mm  # noqa: F401
from qaclims_mm.structures.normalization import IMAGENET_MEAN, IMAGENET_STD
from qaclims_mm.testing import (TINY_CLIP_TEXT, TINY_CLIP_VISION,
                                save_tiny_clip)

init_default_scope('mmseg')

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG_DIR = osp.join(REPO, 'configs')
LEAF_CONFIGS = sorted(
    osp.relpath(p, REPO)
    for p in glob.glob(osp.join(CONFIG_DIR, '**', '*.py'), recursive=True)
    # pipeline configs hold stages, not a model: test_pipeline_configs.py
    if '_base_' not in p and osp.sep + 'pipelines' + osp.sep not in p)
VISION, TEXT = TINY_CLIP_VISION, TINY_CLIP_TEXT


@pytest.fixture(scope='module')
def tiny_weights(tmp_path_factory):
    """A tiny random open_clip model: a CLIP checkpoint and a text tower."""
    root = tmp_path_factory.mktemp('tiny_weights')
    text_dir = root / 'text'
    save_tiny_clip(str(root / 'clip.pt'), str(text_dir))
    # CLIMS prompt caches (what tools/build_text_cache.py --clims-prompts
    # writes), encoded by the tiny text tower
    from qaclims_mm.datasets.class_names import get_classes
    from qaclims_mm.models.losses.clims_losses import (
        clims_background_prompts, clims_class_prompts)
    from qaclims_mm.qape.text_cache import build_prompt_text_cache
    prompt_caches = {}
    for dataset in ('voc', 'coco'):
        names = get_classes(dataset)
        prefix = str(root / f'clims_{dataset}')
        build_prompt_text_cache(f'local-dir:{text_dir}', None, prefix, names,
                                clims_class_prompts(names),
                                clims_background_prompts(dataset))
        prompt_caches[len(names)] = prefix
    return dict(clip=str(root / 'clip.pt'), text=f'local-dir:{text_dir}',
                prompt_caches=prompt_caches)


def with_stand_ins(cfg, weights: dict):
    """A copy of a model config whose named weight files are stand-ins:
    pretrained initialisations off, CLIP and text towers tiny."""
    if isinstance(cfg, (list, tuple)):
        return type(cfg)(with_stand_ins(v, weights) for v in cfg)
    if not isinstance(cfg, dict):
        return cfg
    out = {}
    for key, value in cfg.items():
        if key == 'init_cfg' and isinstance(value, dict) and \
                value.get('type') == 'Pretrained':
            value = None
        elif key == 'pretrained' and isinstance(value, str):
            value = None
        elif key == 'clip' and isinstance(value, dict) and 'weights' in value:
            value = dict(value, model_name='tiny', model_cfg=VISION,
                         weights=weights['clip'])
            if 'ovseg_checkpoint' in value:
                value['ovseg_checkpoint'] = None
        elif key == 'text_encoder' and isinstance(value, dict):
            value = dict(value, model_name=weights['text'], pretrained=None)
        elif key == 'cam_head' and isinstance(value, dict) and \
                isinstance(value.get('text_source'), dict) and \
                value['text_source'].get('type') == 'PromptTextSource':
            value = dict(value, text_source=dict(
                value['text_source'],
                cache=weights['prompt_caches'][value['num_classes']]))
        elif key == 'clip_input_size':
            value = VISION['vision_cfg']['image_size']
        out[key] = with_stand_ins(value, weights)
    return out


def pipelines(cfg: Config) -> dict:
    """Every dataloader pipeline of a config, by dataloader name."""
    found = {}
    for name in ('train_dataloader', 'val_dataloader', 'test_dataloader',
                 'infer_dataloader'):
        loader = cfg.get(name)
        if loader:
            found[name] = loader['dataset']['pipeline']
    return found


def transform_types(pipeline) -> list:
    types = []
    for t in pipeline:
        types.append(t['type'])
        for sub in t.get('transforms', []):
            types += transform_types(sub if isinstance(sub, list) else [sub])
    return types


@pytest.mark.parametrize('path', LEAF_CONFIGS)
def test_config_builds_model_and_pipelines(path, tiny_weights):
    cfg = Config.fromfile(osp.join(REPO, path))
    model = MODELS.build(with_stand_ins(cfg.model.to_dict(), tiny_weights))
    assert isinstance(model, torch.nn.Module)
    for name, pipeline in pipelines(cfg).items():
        for t in pipeline:
            TRANSFORMS.build(t)
    assert cfg.train_dataloader.dataset.pipeline, path


def test_every_config_is_found():
    assert len(LEAF_CONFIGS) >= 17
    assert any('deeplabv3plus' in p and 'coco' in p for p in LEAF_CONFIGS)


def test_custom_imports_only_in_default_runtime():
    homes = [
        osp.relpath(p, REPO)
        for p in glob.glob(osp.join(CONFIG_DIR, '**', '*.py'), recursive=True)
        if re.search(r'^custom_imports\s*=', open(p).read(), re.M)
    ]
    assert homes == ['configs/_base_/default_runtime.py']
    for path in LEAF_CONFIGS:
        cfg = Config.fromfile(osp.join(REPO, path))
        assert cfg.custom_imports.imports[0] == 'qaclims_mm', path


@pytest.mark.parametrize('path', LEAF_CONFIGS)
def test_model_owns_the_normalisation(path):
    """No pipeline normalises; WSSS models normalise with the constants."""
    cfg = Config.fromfile(osp.join(REPO, path))
    for name, pipeline in pipelines(cfg).items():
        assert 'NormalizeImage' not in transform_types(pipeline), (path, name)
    pre = cfg.model.data_preprocessor
    if pre.type == 'WSSSDataPreProcessor':
        assert tuple(pre.mean) == IMAGENET_MEAN, path
        assert tuple(pre.std) == IMAGENET_STD, path
        assert pre.bgr_to_rgb is True and pre.pad_val == 0, path


@pytest.mark.parametrize('path', LEAF_CONFIGS)
def test_hooks_follow_the_train_loop(path):
    """Logging and checkpoints are epoch- or iteration-based as the loop."""
    cfg = Config.fromfile(osp.join(REPO, path))
    by_epoch = cfg.train_cfg.type == 'EpochBasedTrainLoop'
    assert cfg.log_processor.by_epoch is by_epoch, path
    assert cfg.default_hooks.checkpoint.by_epoch is by_epoch, path
    assert cfg.default_hooks.logger.log_metric_by_epoch is by_epoch, path


def test_runtime_leaves_hooks_to_the_schedules():
    runtime = Config.fromfile(
        osp.join(CONFIG_DIR, '_base_', 'default_runtime.py'))
    assert 'default_hooks' not in runtime and 'log_processor' not in runtime
    for path in glob.glob(osp.join(CONFIG_DIR, '_base_', 'schedules', '*')):
        schedule = Config.fromfile(path)
        assert {'default_hooks', 'log_processor', 'train_cfg'} <= set(
            schedule), path


def test_qaclims_pipelines_extend_the_inherited_one():
    """QA-CLIMS adds LoadQACorpus after loading; the rest is the CAM
    training pipeline unchanged (VOC and COCO, with their own corpus)."""
    base = Config.fromfile(
        osp.join(CONFIG_DIR, '_base_', 'datasets', 'voc12_wsss.py'))
    for name, classes in (('19830it_voc12aug', 'voc'),
                          ('155205it_coco14', 'coco')):
        cfg = Config.fromfile(osp.join(
            CONFIG_DIR, 'qaclims', f'qaclims_r50-os16_2xb4-{name}-512x512.py'))
        pipeline = cfg.train_dataloader.dataset.pipeline
        assert pipeline[1].type == 'LoadQACorpus'
        assert pipeline[1].classes == classes
        assert pipeline[1].cache_prefix == cfg.qa_cache
        assert pipeline[:1] + pipeline[2:] == base.train_pipeline
