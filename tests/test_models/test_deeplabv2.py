"""DeepLab v2 on pseudo masks (spec §6.7): ASPP-v2 head, MSC segmentor,
balanced CE, lr groups, caffe-weight conversion and the dense-CRF option."""
import os.path as osp
import subprocess
import sys
from unittest import mock

import mmcv
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmengine.registry import init_default_scope
from mmengine.structures import PixelData
from PIL import Image

init_default_scope('mmseg')

from mmseg.registry import MODELS  # noqa: E402
from mmseg.structures import SegDataSample  # noqa: E402

from qaclims_mm.models.heads.aspp_v2_head import ASPPV2Head  # noqa: E402
from qaclims_mm.models.losses.balanced_ce import (  # noqa: E402
    BalancedCrossEntropyLoss, balanced_cross_entropy)
import qaclims_mm.models.segmentors.msc_encoder_decoder as msc_module  # noqa
from qaclims_mm.models.segmentors.msc_encoder_decoder import (  # noqa: E402
    DEFAULT_CRF_CFG, DenseCRFSegTTAModel, MSCEncoderDecoder,
    dense_crf_labels, resize_labels_nearest)
from qaclims_mm.models.utils.deeplab_checkpoint import \
    convert_deeplab_resnet101_state_dict  # noqa: E402
from qaclims_mm.structures.crf import crf_from_probs  # noqa: E402

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
V2_CONFIG = osp.join(
    REPO, 'configs/deeplab/'
    'deeplabv2_r101-os8-msc_1xb10-ga2-30k_voc12aug-pseudo-321x321.py')
V2_COCOINIT_CONFIG = osp.join(
    REPO, 'configs/deeplab/'
    'deeplabv2_r101-os8-msc-cocoinit_1xb5-ga2-20k_voc12aug-pseudo-321x321.py')

# a tiny ResNet-101 (the real block counts, 8 base channels)
STEM, BASE = 8, 8
TINY_BACKBONE = dict(stem_channels=STEM, base_channels=BASE, init_cfg=None)
TINY_OUT = BASE * 8 * 4  # layer4 planes * expansion = 256


def tiny_v2_cfg(config: str = V2_CONFIG, num_classes: int = 5,
                depth: int = 101) -> Config:
    """The shipped config with a tiny backbone: the real ResNet-101 block
    counts with 8 base channels, or a ResNet-18 (64 output channels) where
    only the segmentor logic matters."""
    cfg = Config.fromfile(config)
    cfg.model.backbone.update(TINY_BACKBONE, depth=depth)
    out = TINY_OUT if depth == 101 else BASE * 8
    cfg.model.decode_head.update(in_channels=out, num_classes=num_classes)
    return cfg


def build_tiny_v2(num_classes: int = 5, depth: int = 18,
                  **test_cfg) -> MSCEncoderDecoder:
    cfg = tiny_v2_cfg(num_classes=num_classes, depth=depth)
    cfg.model.test_cfg.update(test_cfg)
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    return model


# --------------------------------------------------------------- ASPP-v2 head
def test_aspp_v2_head_is_the_sum_of_its_dilated_branches():
    torch.manual_seed(0)
    head = ASPPV2Head(in_channels=6, num_classes=4, dilations=(1, 2, 3, 5))
    head.init_weights()
    for conv in head.convs:  # non-zero biases so they are checked too
        torch.nn.init.normal_(conv.bias)
    x = torch.randn(2, 6, 11, 13)
    ref = sum(
        F.conv2d(x, conv.weight, conv.bias, padding=d, dilation=d)
        for conv, d in zip(head.convs, (1, 2, 3, 5)))
    out = head([x])
    assert out.shape == (2, 4, 11, 13)
    torch.testing.assert_close(out, ref)
    torch.testing.assert_close(sum(head.branch_logits([x])), ref)
    # a classifier per branch, with bias; no BN, no dropout, no conv_seg
    names = sorted(n for n, _ in head.named_parameters())
    assert names == sorted(f'convs.{i}.{p}' for i in range(4)
                           for p in ('weight', 'bias'))
    assert head.dropout is None and not hasattr(head, 'conv_seg')
    with pytest.raises(ValueError, match='dropout'):
        ASPPV2Head(in_channels=6, num_classes=4, dropout_ratio=0.1)


def test_aspp_v2_head_init_is_deeplab_normal_001():
    torch.manual_seed(0)
    head = ASPPV2Head(in_channels=256, num_classes=21)
    head.init_weights()
    w = torch.cat([c.weight.flatten() for c in head.convs])
    assert abs(w.std().item() - 0.01) < 1e-3
    assert all(torch.all(c.bias == 0) for c in head.convs)
    assert [c.dilation[0] for c in head.convs] == [6, 12, 18, 24]
    assert [c.padding[0] for c in head.convs] == [6, 12, 18, 24]


# ------------------------------------------------------------- MSC segmentor
def pil_nearest(label: np.ndarray, hw) -> np.ndarray:
    """deeplab-pytorch's resize_labels: PIL NEAREST on a float image."""
    img = Image.fromarray(label.astype(np.float32))
    return np.asarray(img.resize((hw[1], hw[0]), resample=Image.NEAREST))


@pytest.mark.parametrize('hw', [(41, 41), (21, 21), (31, 31), (9, 14),
                                (40, 112)])
def test_label_resize_matches_pil_nearest(hw):
    rng = np.random.RandomState(0)
    label = rng.randint(0, 21, size=(64, 72))
    label[rng.rand(64, 72) < 0.1] = 255
    ours = resize_labels_nearest(torch.from_numpy(label)[None, None], hw)
    np.testing.assert_array_equal(ours[0, 0].numpy(), pil_nearest(label, hw))


def make_batch(n=2, hw=(64, 64), num_classes=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    inputs = torch.randn(n, 3, *hw, generator=g) * 50
    samples = []
    for i in range(n):
        label = torch.randint(0, num_classes, (1, *hw), generator=g)
        label[:, :5] = 255
        s = SegDataSample(metainfo=dict(img_shape=hw, pad_shape=hw,
                                        ori_shape=hw))
        s.gt_sem_seg = PixelData(data=label)
        samples.append(s)
    return inputs, samples


def test_msc_training_has_a_loss_per_scale_and_for_the_max():
    model = build_tiny_v2()
    model.train()
    inputs, samples = make_batch()
    losses = model.loss(inputs, samples)
    names = ['scale1.0', 'scale0.5', 'scale0.75', 'max']
    assert sorted(k for k in losses if 'loss' in k) == sorted(
        f'decode_{n}.loss_balanced_ce' for n in names)

    # reference: deeplab-pytorch MSC + criterion_balance, written out here
    def logits_of(x):
        return model.decode_head(model.backbone(x))

    full = logits_of(inputs)
    outs = {'scale1.0': full}
    for s in (0.5, 0.75):
        outs[f'scale{s}'] = logits_of(
            F.interpolate(inputs, scale_factor=s, mode='bilinear',
                          align_corners=False))
    outs['max'] = torch.max(torch.stack([full] + [
        F.interpolate(outs[f'scale{s}'], size=full.shape[-2:],
                      mode='bilinear', align_corners=False)
        for s in (0.5, 0.75)
    ]), dim=0)[0]
    # output stride 8 with the ceil-mode stem pool of deeplab-pytorch:
    # 64 -> conv 32 -> pool 17 -> 9
    assert full.shape[-2:] == (9, 9)
    assert outs['scale0.5'].shape[-2:] == (5, 5)  # 32 -> 16 -> 9 -> 5
    assert outs['scale0.75'].shape[-2:] == (7, 7)  # 48 -> 24 -> 13 -> 7
    labels = np.stack([s.gt_sem_seg.data[0].numpy() for s in samples])
    for name, logits in outs.items():
        hw = logits.shape[-2:]
        lab = torch.from_numpy(
            np.stack([pil_nearest(l, hw) for l in labels])).long()
        ce = F.cross_entropy(logits, lab, reduction='none', ignore_index=255)
        bg, fg = lab == 0, (lab != 0) & (lab != 255)
        ref = ((ce * bg).sum() / bg.sum() + (ce * fg).sum() / fg.sum()) / 2
        torch.testing.assert_close(
            losses[f'decode_{name}.loss_balanced_ce'], ref)


def test_msc_test_time_is_the_max_fusion_upsampled():
    model = build_tiny_v2()
    model.eval()
    inputs, samples = make_batch(n=1, hw=(57, 61))
    with torch.no_grad():
        outs = model.multi_scale_logits(inputs)
        fused = model._forward(inputs)
        results = model.predict(inputs, samples)
    torch.testing.assert_close(fused, outs['max'])
    up = F.interpolate(fused, size=(57, 61), mode='bilinear',
                       align_corners=False)
    torch.testing.assert_close(results[0].seg_logits.data, up[0])
    assert torch.equal(results[0].pred_sem_seg.data, up.argmax(1))
    assert results[0].dense_crf is False


def test_backbone_layout_is_deeplab_v2():
    model = build_tiny_v2(depth=101)
    bb = model.backbone
    # caffe style: the stride sits on the first 1x1 conv of a bottleneck
    assert bb.layer2[0].conv1.stride == (2, 2)
    assert bb.layer2[0].conv2.stride == (1, 1)
    assert [bb.layer3[i].conv2.dilation[0] for i in (0, 22)] == [2, 2]
    assert [bb.layer4[i].conv2.dilation[0] for i in (0, 2)] == [4, 4]
    assert [len(getattr(bb, f'layer{i}')) for i in (1, 2, 3, 4)] == \
        [3, 4, 23, 3]
    # BN frozen (no affine training, statistics in eval mode in training)
    model.train()
    bns = [m for m in bb.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert bns and all(not m.training for m in bns)
    assert all(not p.requires_grad for m in bns for p in m.parameters())
    assert bb.conv1.weight.requires_grad  # stem conv trained, as CLIMS's 1x


# --------------------------------------------------------------- balanced CE
def reference_balanced_ce(logits: np.ndarray, labels: np.ndarray) -> float:
    """Pixel loops: mean CE over bg pixels and over fg pixels, averaged;
    an empty group is left out."""
    bg, fg = [], []
    n, c, h, w = logits.shape
    for b in range(n):
        for i in range(h):
            for j in range(w):
                y = labels[b, i, j]
                if y == 255:
                    continue
                z = logits[b, :, i, j]
                ce = np.log(np.exp(z - z.max()).sum()) + z.max() - z[y]
                (bg if y == 0 else fg).append(ce)
    groups = [np.mean(g) for g in (bg, fg) if g]
    return float(np.mean(groups)) if groups else 0.


@pytest.mark.parametrize('case', ['mixed', 'all_background', 'all_fg',
                                  'all_ignored'])
def test_balanced_ce_matches_reference(case):
    rng = np.random.RandomState(1)
    logits = rng.randn(2, 4, 5, 6).astype(np.float32)
    labels = rng.randint(0, 4, size=(2, 5, 6))
    labels[0, 0] = 255
    if case == 'all_background':
        labels[labels != 255] = 0
    elif case == 'all_fg':
        labels[labels == 0] = 2
    elif case == 'all_ignored':
        labels[:] = 255
    z = torch.from_numpy(logits).requires_grad_()
    loss_fn = BalancedCrossEntropyLoss(loss_weight=2.0)
    loss = loss_fn(z, torch.from_numpy(labels), ignore_index=255)
    assert torch.isfinite(loss)
    ref = reference_balanced_ce(logits, labels)
    assert loss.item() == pytest.approx(2.0 * ref, rel=1e-5, abs=1e-6)
    loss.backward()
    assert torch.isfinite(z.grad).all()
    if case == 'all_ignored':
        assert torch.all(z.grad == 0)
    if case == 'mixed':  # CLIMS criterion_balance, literally
        ce = F.cross_entropy(z, torch.from_numpy(labels), reduction='none',
                             ignore_index=255)
        lab = torch.from_numpy(labels)
        bg = (lab == 0).float()
        fg = ((lab != 0) & (lab != 255)).float()
        clims = ((ce * bg).sum() / bg.sum() + (ce * fg).sum() / fg.sum()) / 2
        assert loss.item() == pytest.approx(2.0 * clims.item(), rel=1e-5)
    assert loss_fn.loss_name == 'loss_balanced_ce'


def test_balanced_ce_is_not_the_plain_ce():
    logits = torch.zeros(1, 2, 1, 4)
    logits[0, 1, 0, 0] = 3.  # one well-classified fg pixel, 3 bg pixels
    labels = torch.tensor([[[1, 0, 0, 0]]])
    ce = F.cross_entropy(logits, labels, reduction='none')[0, 0]
    expected = (ce[1:].mean() + ce[0]) / 2
    assert balanced_cross_entropy(logits, labels).item() == pytest.approx(
        expected.item())
    assert expected != pytest.approx(ce.mean().item())


# ------------------------------------------------------------------ lr groups
@pytest.mark.parametrize('config', [V2_CONFIG, V2_COCOINIT_CONFIG])
def test_lr_groups_are_1x_10x_20x_without_bias_decay(config):
    cfg = tiny_v2_cfg(config)
    model = MODELS.build(cfg.model)
    wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    assert wrapper._accumulative_counts == 2
    opt = wrapper.optimizer
    assert isinstance(opt, torch.optim.SGD)
    assert opt.defaults['momentum'] == 0.9
    names = {id(p): n for n, p in model.named_parameters()}
    seen = {}
    for group in opt.param_groups:
        for p in group['params']:
            seen[names[id(p)]] = (group['lr'], group['weight_decay'])
    base = 2.5e-4
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert set(seen) == trainable  # frozen BN parameters are left out
    assert not any('bn' in n or 'downsample.1' in n for n in seen)
    assert 'backbone.conv1.weight' in seen
    for name, (lr, wd) in seen.items():
        if name.startswith('backbone.'):
            assert name.endswith('.weight')
            assert (lr, wd) == (pytest.approx(base), pytest.approx(5e-4))
        elif name.endswith('.weight'):
            assert (lr, wd) == (pytest.approx(10 * base), pytest.approx(5e-4))
        else:
            assert name.endswith('.bias') and name.startswith('decode_head.')
            assert (lr, wd) == (pytest.approx(20 * base), 0)
    assert sum(n.startswith('decode_head.') for n in seen) == 8


# ------------------------------------------------------ checkpoint conversion
def deeplab_pytorch_state_dict(stem=STEM, base=BASE, blocks=(3, 4, 23, 3),
                               num_classes=None, seed=0):
    """A state dict in deeplab-pytorch's ResNet-101 layout (its resnet.py:
    layer1 = stem conv1, layer2..5 = residual layers; conv / bn units)."""
    g = torch.Generator().manual_seed(seed)
    sd = {}

    def unit(prefix, cin, cout, k):
        sd[f'{prefix}.conv.weight'] = torch.randn(
            cout, cin, k, k, generator=g) * (2. / (cin * k * k))**0.5
        sd[f'{prefix}.bn.weight'] = 1 + 0.1 * torch.randn(cout, generator=g)
        sd[f'{prefix}.bn.bias'] = 0.1 * torch.randn(cout, generator=g)
        sd[f'{prefix}.bn.running_mean'] = 0.1 * torch.randn(cout, generator=g)
        sd[f'{prefix}.bn.running_var'] = 1 + torch.rand(cout, generator=g)
        sd[f'{prefix}.bn.num_batches_tracked'] = torch.tensor(0)

    unit('layer1.conv1', 3, stem, 7)
    cin = stem
    for i, n in enumerate(blocks):
        mid, cout = base * 2**i, base * 2**i * 4
        for b in range(1, n + 1):
            p = f'layer{i + 2}.block{b}'
            unit(f'{p}.reduce', cin if b == 1 else cout, mid, 1)
            unit(f'{p}.conv3x3', mid, mid, 3)
            unit(f'{p}.increase', mid, cout, 1)
            if b == 1:
                unit(f'{p}.shortcut', cin, cout, 1)
        cin = cout
    if num_classes:
        sd['fc.weight'] = torch.randn(num_classes, cin, 1, 1, generator=g)
        sd['fc.bias'] = torch.randn(num_classes, generator=g)
    return sd


def deeplab_pytorch_forward(sd, x, blocks=(3, 4, 23, 3)):
    """deeplab-pytorch's DeepLabV2 backbone, written with functional ops."""
    def cbr(prefix, x, stride=1, padding=0, dilation=1, relu=True):
        x = F.conv2d(x, sd[f'{prefix}.conv.weight'], None, stride, padding,
                     dilation)
        x = F.batch_norm(x, sd[f'{prefix}.bn.running_mean'],
                         sd[f'{prefix}.bn.running_var'],
                         sd[f'{prefix}.bn.weight'], sd[f'{prefix}.bn.bias'],
                         False, 0., 1e-5)
        return F.relu(x) if relu else x

    x = cbr('layer1.conv1', x, stride=2, padding=3)
    x = F.max_pool2d(x, 3, 2, 1, ceil_mode=True)
    for i, (n, stride, dil) in enumerate(zip(blocks, (1, 2, 1, 1),
                                             (1, 1, 2, 4))):
        for b in range(1, n + 1):
            p = f'layer{i + 2}.block{b}'
            s = stride if b == 1 else 1
            h = cbr(f'{p}.reduce', x, stride=s)
            h = cbr(f'{p}.conv3x3', h, padding=dil, dilation=dil)
            h = cbr(f'{p}.increase', h, relu=False)
            sc = cbr(f'{p}.shortcut', x, stride=s, relu=False) if b == 1 \
                else x
            x = F.relu(h + sc)
    return x


def test_converted_caffe_weights_reproduce_deeplab_pytorch_backbone():
    sd = deeplab_pytorch_state_dict(num_classes=91)  # the COCO DeepLab v1
    converted, dropped = convert_deeplab_resnet101_state_dict(
        {f'module.{k}': v for k, v in sd.items()}, source='coco.pth')
    assert sorted(dropped) == ['fc.bias', 'fc.weight']
    assert all(k.startswith('backbone.') for k in converted)
    torch.testing.assert_close(converted['backbone.layer3.22.conv2.weight'],
                               sd['layer4.block23.conv3x3.conv.weight'])
    torch.testing.assert_close(
        converted['backbone.layer1.0.downsample.1.bias'],
        sd['layer2.block1.shortcut.bn.bias'])
    model = build_tiny_v2(depth=101)
    # the backbone alone would leave the head random: the segmentor refuses
    # it, whatever the loader (torch or MMEngine, strict or not)
    with pytest.raises(KeyError, match=r'8 model key\(s\) missing.*'
                       r'first: decode_head\.convs\.0\.weight'):
        model.load_state_dict(converted, strict=False)
    model.backbone.load_state_dict(
        {k[len('backbone.'):]: v for k, v in converted.items()}, strict=True)
    model.eval()
    # odd conv1 output sizes: deeplab-pytorch's ceil-mode stem pool agrees
    x = torch.randn(1, 3, 41, 45)
    with torch.no_grad():
        ours = model.backbone(x)[-1]
        ref = deeplab_pytorch_forward(sd, x)
    assert ours.shape == ref.shape == (1, TINY_OUT, 6, 6)
    torch.testing.assert_close(ours, ref, rtol=1e-4, atol=1e-4)


def test_converter_maps_the_v2_aspp_and_rejects_bad_files():
    sd = deeplab_pytorch_state_dict()
    sd = {f'base.{k}': v for k, v in sd.items()}
    for i in range(4):
        sd[f'base.aspp.c{i}.weight'] = torch.randn(5, TINY_OUT, 3, 3)
        sd[f'base.aspp.c{i}.bias'] = torch.randn(5)
    converted, dropped = convert_deeplab_resnet101_state_dict(sd)
    assert dropped == []
    model = build_tiny_v2(depth=101)
    model.load_state_dict(converted, strict=True)
    torch.testing.assert_close(model.decode_head.convs[2].bias,
                               sd['base.aspp.c2.bias'])
    _, dropped = convert_deeplab_resnet101_state_dict(sd, keep_head=False)
    assert len(dropped) == 8

    good = deeplab_pytorch_state_dict()
    bad = dict(good, **{'layer2.block1.reduce.conv.bias': torch.zeros(8)})
    with pytest.raises(KeyError, match='not part of.*reduce.conv.bias'):
        convert_deeplab_resnet101_state_dict(bad, source='x.pth')
    bad = {k: v for k, v in good.items()
           if k != 'layer3.block2.conv3x3.bn.running_var'}
    with pytest.raises(KeyError,
                       match=r'missing.*layer2\.1\.bn2\.running_var'):
        convert_deeplab_resnet101_state_dict(bad, source='x.pth')
    bad = {k: v for k, v in good.items() if not k.startswith('layer5.block3')}
    with pytest.raises(ValueError, match='layer5 has 2 blocks, expected 3'):
        convert_deeplab_resnet101_state_dict(bad, source='x.pth')
    # without BN counters (older conversions) they are filled in
    no_count = {k: v for k, v in good.items()
                if not k.endswith('num_batches_tracked')}
    converted, _ = convert_deeplab_resnet101_state_dict(no_count)
    model.backbone.load_state_dict(
        {k[len('backbone.'):]: v for k, v in converted.items()}, strict=True)


def test_converter_tool_checks_against_a_config(tmp_path):
    src, dst = str(tmp_path / 'src.pth'), str(tmp_path / 'dst.pth')
    torch.save(deeplab_pytorch_state_dict(num_classes=91), src)
    cfg = tmp_path / 'tiny.py'
    cfg.write_text(
        f"_base_ = ['{V2_CONFIG}']\n"
        f"model = dict(backbone=dict(stem_channels={STEM}, "
        f"base_channels={BASE}), decode_head=dict(in_channels={TINY_OUT}))\n")
    proc = subprocess.run(
        [sys.executable,
         'tools/model_converters/deeplabv1_resnet101_to_mmseg.py', src, dst,
         '--config', str(cfg)], cwd=REPO, capture_output=True, text=True)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    assert 'strict backbone load' in out and "['fc.weight', 'fc.bias']" in out
    saved = torch.load(dst, map_location='cpu', weights_only=True)
    assert saved['meta']['dropped_keys'] == ['fc.weight', 'fc.bias']
    # the backbone init_cfg of the configs reads it with prefix='backbone.'
    init_cfg = dict(type='Pretrained', checkpoint=dst, prefix='backbone.')
    model = MODELS.build(dict(tiny_v2_cfg().model,
                              backbone=dict(tiny_v2_cfg().model.backbone,
                                            init_cfg=init_cfg)))
    model.init_weights()
    torch.testing.assert_close(model.backbone.conv1.weight,
                               saved['state_dict']['backbone.conv1.weight'])


# ---------------------------------------------------------------- dense CRF
def toy_crf_case(tmp_path):
    """Black left half, white right half; the logits put the boundary 6
    pixels too far left, with low confidence in the wrong band."""
    h, w = 32, 40
    img = np.zeros((h, w, 3), np.uint8)
    img[:, 20:] = 255
    path = str(tmp_path / 'toy.png')
    mmcv.imwrite(img, path)
    p1 = np.full((h, w), 0.05, np.float32)
    p1[:, 20:] = 0.95
    p1[:, 14:20] = 0.6
    logits = torch.from_numpy(np.log(np.stack([1 - p1, p1])))[None]
    return img, path, logits


def test_crf_post_processing_fixes_the_boundary(tmp_path, monkeypatch):
    img, path, logits = toy_crf_case(tmp_path)
    h, w = img.shape[:2]
    model = build_tiny_v2(num_classes=2, crf=True)
    model.eval()
    model.inference = lambda inputs, metas: logits  # a fixed network output
    sample = SegDataSample(metainfo=dict(img_path=path, img_shape=(h, w),
                                         ori_shape=(h, w), pad_shape=(h, w)))
    records = []
    monkeypatch.setattr(msc_module, 'print_log',
                        lambda msg, **kwargs: records.append(msg))
    result = model.predict(torch.zeros(1, 3, h, w), [sample])[0]
    assert any('dense CRF post-processing: ON' in m for m in records)
    pred = result.pred_sem_seg.data[0].numpy()
    ref = crf_from_probs(img, logits[0].softmax(0).numpy(),
                         **DEFAULT_CRF_CFG).argmax(0)
    np.testing.assert_array_equal(pred, ref)
    no_crf = logits[0].argmax(0).numpy()
    assert (no_crf[:, 14:20] == 1).all()  # the network's error
    assert (pred[:, :20] == 0).all() and (pred[:, 20:] == 1).all()
    assert result.dense_crf is True
    # the logits stay the network's
    torch.testing.assert_close(result.seg_logits.data, logits[0])
    # the helper alone
    np.testing.assert_array_equal(
        dense_crf_labels(path, logits[0].softmax(0))[0].numpy(), ref)


def test_crf_rejects_a_size_mismatch_and_a_missing_path(tmp_path):
    _, path, logits = toy_crf_case(tmp_path)
    with pytest.raises(ValueError, match='toy.png'):
        dense_crf_labels(path, logits[0, :, :16].softmax(0))
    with pytest.raises(ValueError, match='img_path'):
        dense_crf_labels(None, logits[0].softmax(0))


def test_tta_model_applies_the_crf_once_on_the_merged_probabilities(
        tmp_path):
    img, path, logits = toy_crf_case(tmp_path)
    model = build_tiny_v2(num_classes=2, crf=True)
    tta = DenseCRFSegTTAModel(module=model)
    tta._crf_on = True
    passes = []
    for shift in (0., 0.3):
        s = SegDataSample(metainfo=dict(img_path=path))
        s.seg_logits = PixelData(data=logits[0] + shift * torch.tensor(
            [1., -1.])[:, None, None])
        passes.append(s)
    merged = tta.merge_preds([passes])[0]
    probs = torch.stack([p.seg_logits.data.softmax(0) for p in passes]).mean(0)
    ref = crf_from_probs(img, probs.numpy(), **DEFAULT_CRF_CFG).argmax(0)
    np.testing.assert_array_equal(merged.pred_sem_seg.data[0].numpy(), ref)


# ------------------------------------------------------------------- configs
@pytest.mark.parametrize('name,classes,loss,iters,batch,scales', [
    ('deeplabv2_r101-os8-msc_1xb10-ga2-30k_voc12aug-pseudo-321x321', 21,
     'BalancedCrossEntropyLoss', 60000, 10, 7),
    ('deeplabv2_r101-os8-msc-cocoinit_1xb5-ga2-20k_voc12aug-pseudo-321x321',
     21, 'CrossEntropyLoss', 40000, 5, 5),
    ('deeplabv2_r101-os8-msc_1xb10-ga2-30k_coco14-pseudo-321x321', 81,
     'BalancedCrossEntropyLoss', 60000, 10, 7),
    ('deeplabv3plus_r101-d8_4xb4-40k_voc12aug-pseudo-512x512', 21,
     'CrossEntropyLoss', 40000, 4, None),
    ('deeplabv3plus_r101-d8_4xb4-80k_coco14-pseudo-512x512', 81,
     'CrossEntropyLoss', 80000, 4, None),
])
def test_shipped_configs(name, classes, loss, iters, batch, scales):
    cfg = Config.fromfile(osp.join(REPO, 'configs/deeplab', name + '.py'))
    assert cfg.model.decode_head.num_classes == classes
    assert cfg.model.decode_head.loss_decode.type == loss
    assert cfg.train_cfg.max_iters == iters
    assert cfg.param_scheduler[0].end == iters
    assert cfg.train_dataloader.batch_size == batch
    train = cfg.train_dataloader.dataset
    val = cfg.val_dataloader.dataset
    assert train.with_seg_map and train.data_prefix.seg_map_path == \
        'pseudo_labels/sem_seg'
    assert val.data_prefix.seg_map_path in ('SegmentationClass',
                                            'wsss/mask/val2014')
    assert cfg.val_evaluator.type == 'IoUMetric'
    assert 'tta_pipeline' in cfg
    init = cfg.model.backbone.init_cfg
    assert init.type == 'Pretrained' and init.checkpoint.startswith(
        'data/pretrained/')  # local files only
    if scales is None:  # mmseg's DeepLabV3+, with the checkpoint check
        assert cfg.model.type == 'StrictEncoderDecoder'
        assert cfg.model.get('pretrained') is None
        return
    assert cfg.model.type == 'MSCEncoderDecoder'
    assert cfg.model.scales == (0.5, 0.75)
    assert cfg.optim_wrapper.accumulative_counts == 2
    choice = train.pipeline[2]
    assert choice.type == 'RandomChoice' and len(choice.transforms) == scales
    assert train.pipeline[3].crop_size == (321, 321)
    assert cfg.model.data_preprocessor.mean == [104.008, 116.669, 122.675]
    assert cfg.model.data_preprocessor.bgr_to_rgb is False
    assert cfg.model.test_cfg.crf is False
    assert cfg.tta_model.type == 'DenseCRFSegTTAModel'


def test_v2_configs_use_the_deeplab_pytorch_stem_pool_and_ce_mean():
    """ceil-mode stem pooling (feature sizes of deeplab-pytorch) and plain
    CE averaged over non-ignored pixels (torch's CrossEntropyLoss)."""
    import glob
    import os.path as osp

    from mmengine.config import Config
    root = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
    for path in glob.glob(osp.join(root, 'configs/deeplab/deeplabv2_*.py')):
        cfg = Config.fromfile(path)
        assert cfg.model.stem_pool_ceil_mode is True, path
        loss = cfg.model.decode_head.loss_decode
        if loss.type == 'CrossEntropyLoss':
            assert loss.avg_non_ignore is True, path
    init_default_scope('mmseg')
    model = MODELS.build(dict(
        type='MSCEncoderDecoder', stem_pool_ceil_mode=True,
        backbone=dict(type='ResNet', depth=18, strides=(1, 2, 1, 1),
                      dilations=(1, 1, 2, 4), out_indices=(3, )),
        decode_head=dict(type='ASPPV2Head', in_channels=512, channels=512,
                         num_classes=21)))
    assert model.backbone.maxpool.ceil_mode
    # 0.75 branch of a 321 crop: 241 -> conv 121 -> ceil pool 61 (floor: 60)
    feats = model.extract_feat(torch.zeros(1, 3, 241, 241))
    assert feats[-1].shape[-1] == 31


# --------------------------------------- DeepLabV3+: checkpoints that differ
V3P_CONFIGS = ('deeplabv3plus_r101-d8_4xb4-40k_voc12aug-pseudo-512x512',
               'deeplabv3plus_r101-d8_4xb4-80k_coco14-pseudo-512x512')


def tiny_v3plus_model_cfg(name: str, **model) -> dict:
    """A shipped DeepLabV3+ config's model, with a ResNet-18-V1c of 8 base
    channels (64 output channels) and narrow heads."""
    cfg = Config.fromfile(osp.join(REPO, 'configs/deeplab', name + '.py'))
    cfg.model.backbone.update(depth=18, stem_channels=16, base_channels=8,
                              init_cfg=None)
    cfg.model.decode_head.update(in_channels=64, channels=16,
                                 c1_in_channels=8, c1_channels=8)
    cfg.model.auxiliary_head.update(in_channels=32, channels=16)
    cfg.model.update(model)
    return cfg.model.to_dict()


def runner_load_from(model, state_dict: dict, tmp_path):
    """Runner(load_from=...).load_or_resume(): the path of the stock
    tools/train.py ``load_from`` and tools/test.py CHECKPOINT (``model``: a
    config or a built model)."""
    from mmengine.runner import Runner
    path = str(tmp_path / 'checkpoint.pth')
    torch.save(dict(meta=dict(iter=1), state_dict=state_dict), path)
    runner = Runner(model=model, work_dir=str(tmp_path / 'work'),
                    load_from=path, default_scope='mmseg')
    runner.load_or_resume()
    return runner.model


@pytest.mark.parametrize('name', V3P_CONFIGS)
def test_deeplabv3plus_load_from_refuses_a_mismatched_checkpoint(
        name, tmp_path):
    """mmseg's EncoderDecoder would log a warning and test with random
    layer4 / head weights; the shipped configs must refuse."""
    torch.manual_seed(0)
    good = MODELS.build(tiny_v3plus_model_cfg(name)).state_dict()
    loaded = runner_load_from(tiny_v3plus_model_cfg(name), good, tmp_path)
    for key, value in good.items():
        torch.testing.assert_close(loaded.state_dict()[key], value)

    renamed = {k.replace('backbone.layer4.', 'backbone.stage4.'): v
               for k, v in good.items()}
    with pytest.raises(KeyError, match=r'StrictEncoderDecoder.*missing from '
                       r'the checkpoint \(first: backbone\.layer4\.0\.conv1'
                       r'\.weight'):
        runner_load_from(tiny_v3plus_model_cfg(name), renamed, tmp_path)

    shaped = dict(good)
    shaped['decode_head.conv_seg.weight'] = torch.zeros(3, 16, 1, 1)
    with pytest.raises(KeyError, match=r'decode_head\.conv_seg\.weight: '
                       r'checkpoint \(3, 16, 1, 1\) vs model'):
        runner_load_from(tiny_v3plus_model_cfg(name), shaped, tmp_path)


def test_deeplabv3plus_coco_checkpoint_into_voc_classes(tmp_path):
    """allow_mismatched_keys: an 81-class COCO model fine-tuned into the 21
    VOC classes loads everything but the classifiers, which keep their
    initialisation, with a warning naming them."""
    from qaclims_mm.models.segmentors import checkpoint_guard
    torch.manual_seed(0)
    coco = MODELS.build(tiny_v3plus_model_cfg(V3P_CONFIGS[1])).state_dict()
    voc_cfg = tiny_v3plus_model_cfg(V3P_CONFIGS[0])
    with pytest.raises(KeyError, match='allow_mismatched_keys'):
        runner_load_from(voc_cfg, coco, tmp_path)
    allowed = ['decode_head.conv_seg.*', 'auxiliary_head.conv_seg.*']
    model = MODELS.build(dict(voc_cfg, allow_mismatched_keys=allowed))
    init = {k: v.clone() for k, v in model.state_dict().items()}
    with mock.patch.object(checkpoint_guard, 'print_log') as log:
        assert runner_load_from(model, coco, tmp_path) is model
    heads = {f'{h}.conv_seg.{p}' for h in ('decode_head', 'auxiliary_head')
             for p in ('weight', 'bias')}
    warnings = [c.args[0] for c in log.call_args_list]
    assert len(warnings) == 1 and 'keep their initialisation' in warnings[0]
    assert all(key in warnings[0] for key in heads), warnings
    state = model.state_dict()
    for key, value in coco.items():
        if key in heads:
            assert state[key].shape[0] == 21
            torch.testing.assert_close(state[key], init[key])
        else:
            torch.testing.assert_close(state[key], value)
    # other patterns still guard the rest
    shaped = dict(coco)
    shaped['backbone.layer4.0.conv1.weight'] = torch.zeros(1, 1, 1, 1)
    with pytest.raises(KeyError, match=r'backbone\.layer4\.0\.conv1'):
        runner_load_from(dict(voc_cfg, allow_mismatched_keys=allowed),
                         shaped, tmp_path)


def test_every_shipped_model_checks_its_checkpoints():
    """No shipped config uses a segmentor that loads mismatched checkpoints
    with a warning only."""
    import glob
    from qaclims_mm.models.segmentors.checkpoint_guard import \
        StrictCheckpointMixin
    paths = [p for p in glob.glob(osp.join(REPO, 'configs', '**', '*.py'),
                                  recursive=True) if '_base_' not in p]
    assert len(paths) > 5
    for path in paths:
        cfg = Config.fromfile(path)
        if 'model' not in cfg:
            continue
        cls = MODELS.get(cfg.model.type)
        assert issubclass(cls, StrictCheckpointMixin), (path, cls)
