"""The WSSS segmentors share one refusal of ``pretrained`` and one default
pre-processor (``checkpoint_guard.segmentor_base_kwargs``)."""
import pytest

from qaclims_mm.models.segmentors.checkpoint_guard import \
    segmentor_base_kwargs


def test_defaults_to_wsss_preprocessor_and_accepts_none():
    assert segmentor_base_kwargs('CAMClassifier', None, None, None) == dict(
        data_preprocessor=dict(type='WSSSDataPreProcessor'), init_cfg=None)
    pre = dict(type='SegDataPreProcessor')
    init = dict(type='Normal')
    assert segmentor_base_kwargs('IRNet', None, pre, init) == dict(
        data_preprocessor=pre, init_cfg=init)


@pytest.mark.parametrize('owner', ['CAMClassifier', 'IRNet'])
def test_refuses_pretrained_naming_the_class(owner):
    with pytest.raises(ValueError, match=rf"{owner} takes no "
                       r"pretrained='x.pth'.*backbone\.init_cfg"):
        segmentor_base_kwargs(owner, 'x.pth', None, None)


@pytest.mark.parametrize('type_name', ['CAMClassifier', 'IRNet'])
def test_segmentors_refuse_pretrained(type_name):
    from mmseg.registry import MODELS

    import qaclims_mm.models  # noqa: F401
    cfg = dict(type=type_name, backbone=dict(type='ResNetV1c', depth=18),
               pretrained='x.pth')
    if type_name == 'CAMClassifier':
        cfg['cam_head'] = dict(type='CAMHead', in_channels=512,
                               num_classes=2)
    with pytest.raises(ValueError, match=f'{type_name} takes no pretrained'):
        MODELS.build(cfg)
