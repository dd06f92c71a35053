"""CAMClassifier: build, loss, multi-scale inference, checkpoint conversion."""
import logging
import math
from unittest import mock

import pytest
import torch
import torch.nn.functional as F
from mmengine.registry import init_default_scope
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample

import qaclims_mm  # noqa: F401
from qaclims_mm.models.utils import (aggregate_multiscale_cams,
                                     convert_official_cam_state_dict)

init_default_scope('mmseg')


def r50_cfg(**head):
    return dict(
        type='CAMClassifier',
        backbone=dict(type='ResNet', depth=50, strides=(1, 2, 2, 1),
                      dilations=(1, 1, 1, 1), out_indices=(3, ),
                      style='pytorch', frozen_stages=0, norm_eval=True,
                      contract_dilation=False),
        cam_head=dict(type='CAMHead', in_channels=2048, num_classes=20,
                      **head))


def tiny_cfg(num_classes=4):
    return dict(
        type='CAMClassifier',
        backbone=dict(type='ResNet', depth=18, strides=(1, 2, 2, 1),
                      out_indices=(3, ), base_channels=8),
        cam_head=dict(type='CAMHead', in_channels=64,
                      num_classes=num_classes))


def sample(labels, hw, img_id='img'):
    s = SegDataSample()
    s.set_metainfo(dict(img_id=img_id, img_labels=labels, ori_shape=hw))
    return s


def test_r50_output_stride_16_and_frozen_stem():
    model = MODELS.build(r50_cfg())
    model.train()
    out = model(torch.zeros(1, 3, 512, 512), mode='tensor')
    assert tuple(out.shape) == (1, 20, 32, 32)
    assert not model.backbone.conv1.weight.requires_grad
    assert not model.backbone.bn1.weight.requires_grad
    assert model.backbone.layer1[0].conv1.weight.requires_grad
    # BN statistics frozen (norm_eval) but the affine parameters train
    assert not model.backbone.layer1[0].bn1.training
    assert model.backbone.layer1[0].bn1.weight.requires_grad
    assert model.cam_head.classifier.bias is None
    # torchvision weight names, so resnet50-19c8e357.pth loads as is
    keys = set(model.backbone.state_dict())
    assert {'conv1.weight', 'bn1.running_mean', 'layer4.2.bn3.weight',
            'layer2.0.downsample.0.weight'} <= keys


def test_loss_matches_multilabel_soft_margin_formula():
    torch.manual_seed(0)
    model = MODELS.build(tiny_cfg(num_classes=4))
    x = torch.randn(3, 3, 64, 64)
    samples = [sample([0], (64, 64)), sample([1, 3], (64, 64)),
               sample([2], (64, 64))]
    losses = model(x, samples, mode='loss')
    feat = model.backbone(x)[-1]
    logits = model.cam_head.classifier(feat.mean((2, 3), keepdim=True))[..., 0,
                                                                        0]
    y = torch.tensor([[1., 0, 0, 0], [0, 1, 0, 1], [0, 0, 1, 0]])
    # -mean_c [y log s(x) + (1 - y) log(1 - s(x))], then mean over the batch
    ref = -(y * F.logsigmoid(logits) +
            (1 - y) * F.logsigmoid(-logits)).mean(1).mean()
    torch.testing.assert_close(losses['loss_cls'], ref)


def test_predict_shapes_normalisation_and_flip_symmetry():
    torch.manual_seed(0)
    model = MODELS.build(tiny_cfg()).eval()
    # non-negative features x non-negative weights: no class map is all zero
    model.cam_head.classifier.weight.data.abs_()
    h, w = 45, 64
    half = torch.randn(3, h, w // 2)
    img = torch.cat([half, half.flip(-1)], dim=-1)  # mirror-symmetric input
    # bilinear resizes keep the mirror symmetry (nearest would not)
    scales = [img] + [
        F.interpolate(img[None], size=size, mode='bilinear')[0]
        for size in ((22, 32), (68, 96))]
    inputs = [[s] for s in scales]
    with torch.no_grad():
        out = model.predict(inputs, [sample([1, 3], (h, w))])[0]
    cam, high, keys = (out.pred_cam['cam'], out.pred_cam['high_res'],
                       out.pred_cam['keys'])
    assert keys.tolist() == [1, 3]
    assert tuple(cam.shape) == (2, math.ceil(h / 4), math.ceil(w / 4))
    assert tuple(high.shape) == (2, h, w)
    for maps in (cam, high):
        assert maps.min() >= 0
        peak = maps.flatten(1).amax(1)
        # each map divided by its own max + 1e-5: peak = m / (m + 1e-5)
        assert torch.all(peak < 1) and torch.all(peak > 0.99)
    # image + flipped image are summed, so a mirror-symmetric input gives
    # mirror-symmetric CAMs (high_res is cropped from a multiple of 16: with
    # w = 64 there is no crop to break the symmetry)
    torch.testing.assert_close(cam, cam.flip(-1), atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(high, high.flip(-1), atol=1e-5, rtol=1e-4)
    assert tuple(out.pred_sem_seg.data.shape) == (1, h, w)
    assert set(out.pred_sem_seg.data.unique().tolist()) <= {0, 2, 4}


def test_aggregate_multiscale_against_reference():
    """Sum over scales of resized maps; keys picked; per-map max-normalised."""
    torch.manual_seed(0)
    hw = (37, 50)
    maps = [torch.rand(5, 10, 13), torch.rand(5, 5, 7), torch.rand(5, 15, 19)]
    keys = torch.tensor([0, 3])
    cam, high = aggregate_multiscale_cams(maps, hw, keys)
    ref_cam = sum(F.interpolate(m[None], (10, 13), mode='bilinear',
                                align_corners=False)[0] for m in maps)[keys]
    ref_cam = ref_cam / (ref_cam.amax((1, 2), keepdim=True) + 1e-5)
    ref_high = sum(F.interpolate(m[None], (48, 64), mode='bilinear',
                                 align_corners=False)[0]
                   for m in maps)[keys][:, :37, :50]
    ref_high = ref_high / (ref_high.amax((1, 2), keepdim=True) + 1e-5)
    torch.testing.assert_close(cam, ref_cam)
    torch.testing.assert_close(high, ref_high)


def test_predict_without_labels_raises_naming_image():
    model = MODELS.build(tiny_cfg()).eval()
    s = SegDataSample()
    s.set_metainfo(dict(img_id='2007_000042', ori_shape=(32, 32)))
    with pytest.raises(KeyError, match='2007_000042'):
        model.predict(torch.zeros(1, 3, 32, 32), [s])
    all_keys = MODELS.build(dict(tiny_cfg(), test_cfg=dict(keys='all'))).eval()
    out = all_keys.predict(torch.zeros(1, 3, 32, 32), [s])[0]
    assert out.pred_cam['keys'].tolist() == [0, 1, 2, 3]


def official_layout(model):
    """Re-create the official res50_cam.pth key layout from our weights."""
    ours = model.state_dict()
    sd = {}
    for k, v in ours.items():
        if k.startswith('backbone.'):
            sd['resnet50.' + k[len('backbone.'):]] = v.clone()
    sd['classifier.weight'] = ours['cam_head.classifier.weight'].clone()
    sd['newly_added.0.weight'] = sd['classifier.weight'].clone()
    stage1 = {'conv1': '0', 'bn1': '1', 'layer1': '4'}
    for k in list(sd):
        if not k.startswith('resnet50.'):
            continue
        name, rest = k[len('resnet50.'):].split('.', 1)
        if name in stage1:
            sd[f'stage1.{stage1[name]}.{rest}'] = sd[k].clone()
            sd[f'backbone.0.{stage1[name]}.{rest}'] = sd[k].clone()
        else:
            n = int(name[-1])
            sd[f'stage{n}.0.{rest}'] = sd[k].clone()
            sd[f'backbone.{n - 1}.0.{rest}'] = sd[k].clone()
    return sd


def test_official_checkpoint_conversion_loads_strictly():
    torch.manual_seed(0)
    src = MODELS.build(r50_cfg())
    official = official_layout(src)
    # every backbone tensor three times, the classifier twice
    n_backbone = len(src.state_dict()) - 1
    assert len(official) == 3 * n_backbone + 2
    converted = convert_official_cam_state_dict(
        {'module.' + k: v for k, v in official.items()}, num_classes=20)
    dst = MODELS.build(r50_cfg())
    result = dst.load_state_dict(converted, strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    for k, v in src.state_dict().items():
        torch.testing.assert_close(dst.state_dict()[k], v)


def test_official_checkpoint_errors():
    model = MODELS.build(r50_cfg())
    official = official_layout(model)
    bad = dict(official, **{'resnet50.fc.weight': torch.zeros(2)})
    with pytest.raises(KeyError, match='fc.weight'):
        convert_official_cam_state_dict(bad, source='res50_cam.pth')
    bad = dict(official)
    bad['stage2.0.0.conv1.weight'] = bad['stage2.0.0.conv1.weight'] + 1
    with pytest.raises(ValueError, match='stage2.0.0.conv1.weight'):
        convert_official_cam_state_dict(bad)
    with pytest.raises(ValueError, match='20 classes, expected 80'):
        convert_official_cam_state_dict(official, num_classes=80,
                                        source='res50_cam.pth')
    # a missing tensor is reported by the strict load into our model
    converted = convert_official_cam_state_dict(official)
    converted.pop('backbone.layer3.1.bn2.running_var')
    with pytest.raises(KeyError, match='layer3.1.bn2.running_var'):
        model.load_state_dict(converted, strict=True)


def test_raw_official_checkpoint_is_refused():
    """load_from the unconverted res50_cam.pth must not train from random."""
    from mmengine.runner.checkpoint import load_state_dict
    model = MODELS.build(r50_cfg())
    with pytest.raises(KeyError, match='official_cam_to_mmseg'):
        load_state_dict(model, official_layout(model), strict=False)
    with pytest.raises(KeyError, match='cam_head.classifier.weight'):
        load_state_dict(model, {k: v for k, v in model.state_dict().items()
                                if not k.startswith('cam_head')})


def test_checkpoint_of_another_class_count_fails_loudly():
    from mmengine.runner.checkpoint import load_state_dict
    src = MODELS.build(tiny_cfg(num_classes=4))
    dst = MODELS.build(tiny_cfg(num_classes=6))
    with pytest.raises(KeyError, match=r'cam_head.classifier.weight: '
                       r'checkpoint \(4, 64, 1, 1\) vs model \(6, 64, 1, 1\)'):
        load_state_dict(dst, src.state_dict(), strict=False)
    # the head alone keeps its own message
    with pytest.raises(ValueError, match='4 classes.*num_classes=6'):
        dst.cam_head.load_state_dict(src.cam_head.state_dict())


# ------------------------------------------- checkpoints that do not match
def save_checkpoint(path, state_dict):
    """An MMEngine-style checkpoint file (``meta`` + ``state_dict``)."""
    torch.save(dict(meta=dict(epoch=1), state_dict=state_dict), str(path))
    return str(path)


def runner_load(model, path):
    """What Runner.load_checkpoint does for ``load_from`` / tools/test.py."""
    from mmengine.runner.checkpoint import (_load_checkpoint,
                                            _load_checkpoint_to_model)
    checkpoint = _load_checkpoint(path, map_location='cpu')
    return _load_checkpoint_to_model(model, checkpoint, strict=False,
                                     revise_keys=[(r'^module\.', '')])


def test_load_from_refuses_renamed_or_mis_shaped_backbone_keys(tmp_path):
    torch.manual_seed(0)
    src = MODELS.build(tiny_cfg())
    good = src.state_dict()
    dst = MODELS.build(tiny_cfg())
    runner_load(dst, save_checkpoint(tmp_path / 'good.pth', good))
    for k, v in good.items():
        torch.testing.assert_close(dst.state_dict()[k], v)

    renamed = {k.replace('backbone.layer2.', 'backbone.stage2.'): v
               for k, v in good.items()}
    path = save_checkpoint(tmp_path / 'renamed.pth', renamed)
    with pytest.raises(KeyError, match=r'model key\(s\) missing from the '
                       r'checkpoint \(first: backbone\.layer2\.0\.conv1'
                       r'\.weight, backbone\.layer2\.0\.bn1\.weight'):
        runner_load(MODELS.build(tiny_cfg()), path)

    shaped = dict(good)
    shaped['backbone.layer3.0.conv1.weight'] = torch.zeros(32, 16, 1, 1)
    path = save_checkpoint(tmp_path / 'shaped.pth', shaped)
    with pytest.raises(KeyError, match=r'backbone\.layer3\.0\.conv1\.weight'
                       r': checkpoint \(32, 16, 1, 1\) vs model'):
        runner_load(MODELS.build(tiny_cfg()), path)

    # the DDP prefix is stripped by revise_keys; a wrapper's prefix works too
    path = save_checkpoint(tmp_path / 'ddp.pth',
                           {'module.' + k: v for k, v in good.items()})
    runner_load(MODELS.build(tiny_cfg()), path)
    wrapper = torch.nn.Module()
    wrapper.module = MODELS.build(tiny_cfg())
    with pytest.raises(KeyError, match='backbone.layer2.0.conv1.weight'):
        from mmengine.runner.checkpoint import load_state_dict
        load_state_dict(wrapper, {'module.' + k: v
                                  for k, v in renamed.items()})


def test_allow_missing_keys_and_bn_counters(tmp_path):
    good = MODELS.build(tiny_cfg()).state_dict()
    no_counters = {k: v for k, v in good.items()
                   if not k.endswith('num_batches_tracked')}
    runner_load(MODELS.build(tiny_cfg()),
                save_checkpoint(tmp_path / 'a.pth', no_counters))
    no_head = {k: v for k, v in good.items() if not k.startswith('cam_head')}
    path = save_checkpoint(tmp_path / 'b.pth', no_head)
    with pytest.raises(KeyError, match='cam_head.classifier.weight'):
        runner_load(MODELS.build(tiny_cfg()), path)
    model = MODELS.build(dict(tiny_cfg(), allow_missing_keys=['cam_head.*']))
    runner_load(model, path)
    torch.testing.assert_close(model.backbone.conv1.weight,
                               good['backbone.conv1.weight'])


def test_allow_mismatched_keys_keeps_init_and_warns(tmp_path):
    """A 4-class checkpoint into a 6-class model: refused, with a message
    pointing at allow_mismatched_keys (not allow_missing_keys); with the
    pattern the head keeps its initialisation and a warning names it."""
    from qaclims_mm.models.segmentors import checkpoint_guard
    torch.manual_seed(0)
    src = MODELS.build(tiny_cfg(num_classes=4)).state_dict()
    path = save_checkpoint(tmp_path / 'four.pth', src)
    with pytest.raises(KeyError) as err:
        runner_load(MODELS.build(tiny_cfg(num_classes=6)), path)
    message = str(err.value)
    assert 'cam_head.classifier.weight: checkpoint (4, 64, 1, 1)' in message
    assert 'may have another shape' in message
    assert 'in allow_mismatched_keys' in message
    # allow_missing_keys is about absent keys only: it does not admit this
    with pytest.raises(KeyError, match='cam_head.classifier.weight'):
        runner_load(MODELS.build(dict(tiny_cfg(num_classes=6),
                                      allow_missing_keys=['cam_head.*'])),
                    path)
    model = MODELS.build(dict(tiny_cfg(num_classes=6),
                              allow_mismatched_keys=['cam_head.*']))
    init = model.cam_head.classifier.weight.detach().clone()
    with mock.patch.object(checkpoint_guard, 'print_log') as log:
        runner_load(model, path)
    torch.testing.assert_close(model.cam_head.classifier.weight, init)
    torch.testing.assert_close(model.backbone.conv1.weight,
                               src['backbone.conv1.weight'])
    (message, ), kwargs = log.call_args
    assert 'cam_head.classifier.weight' in message
    assert 'keep their initialisation' in message
    assert kwargs['level'] == logging.WARNING
    # the same pattern does not hide a missing key
    no_head = {k: v for k, v in src.items() if not k.startswith('cam_head')}
    with pytest.raises(KeyError, match='missing from the checkpoint'):
        runner_load(MODELS.build(dict(tiny_cfg(num_classes=6),
                                      allow_mismatched_keys=['cam_head.*'])),
                    save_checkpoint(tmp_path / 'no_head.pth', no_head))
    with pytest.raises(TypeError, match='allow_mismatched_keys'):
        MODELS.build(dict(tiny_cfg(), allow_mismatched_keys='cam_head.*'))


def test_stock_mmseg_test_tool_refuses_a_mismatched_checkpoint(tmp_path):
    """The stock tools/test.py path: Runner(load_from=...) + runner.test()
    loads through Runner.load_checkpoint; the renamed key must stop it."""
    from mmengine.runner import Runner
    good = MODELS.build(tiny_cfg()).state_dict()
    renamed = {k.replace('backbone.layer4.', 'backbone.stage4.'): v
               for k, v in good.items()}
    path = save_checkpoint(tmp_path / 'renamed.pth', renamed)
    runner = Runner(model=tiny_cfg(), work_dir=str(tmp_path / 'work'),
                    load_from=path, default_scope='mmseg')
    with pytest.raises(KeyError, match=r'first: backbone\.layer4\.0\.conv1'):
        runner.load_or_resume()


def test_other_backbone_by_config_alone():
    """An mmpretrain backbone through the scope prefix builds and gives CAMs."""
    model = MODELS.build(dict(
        type='CAMClassifier',
        backbone=dict(type='mmpretrain.ConvNeXt', arch='atto',
                      out_indices=(3, ), drop_path_rate=0.,
                      gap_before_final_norm=False),
        cam_head=dict(type='CAMHead', in_channels=320, num_classes=20))).eval()
    with torch.no_grad():
        out = model.predict(torch.randn(1, 3, 64, 96),
                            [sample([4, 7], (64, 96))])[0]
    assert tuple(out.pred_cam['high_res'].shape) == (2, 64, 96)
    assert tuple(out.pred_cam['cam'].shape) == (2, 16, 24)
