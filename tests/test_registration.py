"""Every component builds from a config dict in the mmseg scope."""
import pytest
import torch
from mmengine.registry import init_default_scope
from mmseg.registry import DATASETS, HOOKS, METRICS, MODELS, TRANSFORMS

import qaclims_mm  # noqa: F401

init_default_scope('mmseg')


@pytest.mark.parametrize('cfg', [
    dict(type='RandomLongSideResize', long_range=(320, 640)),
    dict(type='NormalizeImage'),
    dict(type='RandomCropWithPad', crop_size=512),
    dict(type='MultiScaleImages'),
    dict(type='PackWSSSInputs'),
    dict(type='LoadOptionalAnnotations'),
])
def test_transforms(cfg):
    assert type(TRANSFORMS.build(cfg)).__name__ == cfg['type']


@pytest.mark.parametrize('cfg', [
    dict(type='WSSSDataPreProcessor'),
    dict(type='MultiLabelSoftMarginLoss'),
    dict(type='CAMHead', in_channels=8, num_classes=3),
    dict(type='CAMClassifier',
         backbone=dict(type='ResNet', depth=18, out_indices=(3, )),
         cam_head=dict(type='CAMHead', in_channels=512, num_classes=20)),
])
def test_models(cfg):
    assert type(MODELS.build(cfg)).__name__ == cfg['type']


def test_metric_and_hook():
    assert type(METRICS.build(dict(type='CAMIoUMetric'))).__name__ == \
        'CAMIoUMetric'
    assert type(HOOKS.build(dict(type='SaveCAMHook', out_dir='x'))).__name__ \
        == 'SaveCAMHook'


def test_datasets(synthetic_voc_root):
    ds = DATASETS.build(dict(type='VOC12WSSSDataset',
                             data_root=synthetic_voc_root, pipeline=[]))
    assert len(ds) > 0
    assert 'COCO14WSSSDataset' in DATASETS.module_dict


def test_configs_parse_and_build_models():
    """Every shipped config parses; its model builds (no weights needed)."""
    import glob
    import os.path as osp
    from mmengine.config import Config
    root = osp.dirname(osp.dirname(osp.abspath(__file__)))
    configs = glob.glob(osp.join(root, 'configs', '*', '*.py'))
    configs = [c for c in configs if '_base_' not in c]
    assert configs
    for path in configs:
        cfg = Config.fromfile(path)
        assert cfg.custom_imports['imports'] == ['qaclims_mm'], path
        model_cfg = cfg.model
        model_cfg.backbone.init_cfg = None
        model = MODELS.build(model_cfg).eval()
        # every CAM config gives one map per class at its output stride
        maps = model(torch.zeros(1, 3, 64, 64), mode='tensor')
        assert maps.shape[:2] == (1, cfg.model.cam_head.num_classes), path
