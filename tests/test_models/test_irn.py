"""IRNet: pair labels, loss, model, training through tools/train.py, and the
random-walk pseudo-mask tool (spec §6.4, §6.5)."""
import importlib.util
import os
import re
import os.path as osp
import subprocess
import sys

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

import qaclims_mm  # noqa: F401
import qaclims_mm.datasets.transforms.affinity_labels  # noqa: F401
import qaclims_mm.models.segmentors.irn  # noqa: F401
from mmengine.registry import init_default_scope
from mmseg.registry import MODELS, TRANSFORMS
from qaclims_mm.datasets.transforms.affinity_labels import \
    affinity_labels_from_seg
from qaclims_mm.models.heads.irn_heads import irn_affinity_displacement_loss
from qaclims_mm.structures.path_index import PathIndex
from qaclims_mm.utils.cam_file import save_cam
from qaclims_mm.utils.io import read_split

init_default_scope('mmseg')
REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
VOC_CONFIG = osp.join(REPO, 'configs/irn/irn_r50_1xb32-3e_voc12aug-512x512.py')
R18_CHANNELS = (64, 64, 128, 256, 512)


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny CPU convolutions: one thread avoids OpenMP start-up costs."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


# ------------------------------------------------------------ pair labels
def brute_pair_labels(label, radius, num_classes):
    """Loop over IRN's (source, direction) pairs."""
    h, w = label.shape
    pi = PathIndex(radius)
    rf = radius - 1
    out = np.zeros((3, pi.num_directions, (h - rf) * (w - 2 * rf)), bool)
    for d, (dy, dx) in enumerate(pi.directions.tolist()):
        m = 0
        for y in range(h - rf):
            for x in range(rf, w - rf):
                a, b = label[y, x], label[y + dy, x + dx]
                if a < num_classes and b < num_classes:
                    out[0, d, m] = a == b and a == 0
                    out[1, d, m] = a == b and a > 0
                    out[2, d, m] = a != b
                m += 1
    return out


def test_affinity_labels_match_brute_force():
    rng = np.random.default_rng(0)
    label = rng.choice([0, 0, 3, 7, 255, 21], size=(9, 12)).astype(np.uint8)
    got = np.stack(affinity_labels_from_seg(label, PathIndex(3), 21))
    np.testing.assert_array_equal(got, brute_pair_labels(label, 3, 21))
    # the three kinds are exclusive; 21 counts as valid for COCO (81 labels)
    assert got.sum(0).max() == 1
    coco = np.stack(affinity_labels_from_seg(label, PathIndex(3), 81))
    np.testing.assert_array_equal(coco, brute_pair_labels(label, 3, 81))
    assert coco.sum() > got.sum()


def test_affinity_labels_transform_downsamples_like_irn():
    rng = np.random.default_rng(1)
    label = rng.choice([0, 2, 255], size=(96, 100)).astype(np.uint8)
    t = TRANSFORMS.build(dict(type='AffinityLabels', radius=5))
    out = t(dict(gt_seg_map=label, img_id='x'))['aff_labels']
    # IRN's pil_rescale(label, 0.25, order=0): PIL nearest samples the
    # centre pixel 4i + 2 (OpenCV's nearest would take 4i)
    from PIL import Image
    reduced = np.asarray(Image.fromarray(label).resize((25, 24),
                                                       Image.NEAREST))
    np.testing.assert_array_equal(reduced, label[2::4, 2::4])
    assert out.dtype == torch.uint8
    np.testing.assert_array_equal(out.numpy(),
                                  brute_pair_labels(reduced, 5, 21))
    with pytest.raises(KeyError, match='IR label'):
        t(dict(img_id='y'))


def test_random_rescale_sizes_and_nearest_labels():
    np.random.seed(0)
    t = TRANSFORMS.build(dict(type='RandomRescale', scale_range=(0.5, 1.5)))
    img = np.random.randint(0, 255, (40, 60, 3), np.uint8)
    seg = np.zeros((40, 60), np.uint8)
    seg[10:30, 20:40] = 7
    res = t(dict(img=img, gt_seg_map=seg, seg_fields=['gt_seg_map']))
    h, w = res['img'].shape[:2]
    np.random.seed(0)
    np.random.randint(0, 255, (40, 60, 3), np.uint8)
    s = 0.5 + np.random.random()  # IRN: lo + random() * (hi - lo)
    assert (h, w) == (int(np.round(40 * s)), int(np.round(60 * s)))
    assert res['gt_seg_map'].shape == (h, w)
    assert set(np.unique(res['gt_seg_map'])) == {0, 7}


# ------------------------------------------------------------------- loss
def test_loss_matches_reference_formulas():
    g = torch.Generator().manual_seed(0)
    b, d, m = 2, 4, 5
    aff = torch.rand(b, d, m, generator=g)
    disp = torch.randn(b, 2, d, m, generator=g)
    target = torch.randn(1, 2, d, 1, generator=g)
    kind = torch.randint(0, 4, (b, d, m), generator=g)  # 3 = ignored
    bg, fg, neg = [(kind == k).float() for k in range(3)]
    out = irn_affinity_displacement_loss(aff, disp, target, bg, fg, neg)

    # element-wise loops, straight from IRN step/train_irn.py
    eps = 1e-5
    sums = dict(bg=0., fg=0., neg=0., dfg=0., dbg=0.)
    for i in range(b):
        for j in range(d):
            for k in range(m):
                a = float(aff[i, j, k])
                if kind[i, j, k] == 0:
                    sums['bg'] -= np.log(a + eps)
                    sums['dbg'] += float(disp[i, :, j, k].abs().sum())
                elif kind[i, j, k] == 1:
                    sums['fg'] -= np.log(a + eps)
                    sums['dfg'] += float(
                        (disp[i, :, j, k] - target[0, :, j, 0]).abs().sum())
                elif kind[i, j, k] == 2:
                    sums['neg'] -= np.log(1 + eps - a)
    n_bg, n_fg, n_neg = [float((kind == k).sum()) for k in range(3)]
    pos = sums['bg'] / (n_bg + eps) / 2 + sums['fg'] / (n_fg + eps) / 2
    neg_l = sums['neg'] / (n_neg + eps)
    dp_fg = sums['dfg'] / (2 * n_fg + eps)
    dp_bg = sums['dbg'] / (2 * n_bg + eps)
    assert out['pos_aff'].item() == pytest.approx(pos, rel=1e-5)
    assert out['neg_aff'].item() == pytest.approx(neg_l, rel=1e-5)
    assert out['dp_fg'].item() == pytest.approx(dp_fg, rel=1e-5)
    assert out['dp_bg'].item() == pytest.approx(dp_bg, rel=1e-5)
    total = (pos + neg_l) / 2 + (dp_fg + dp_bg) / 2
    assert (out['loss_aff'] + out['loss_dp']).item() == pytest.approx(
        total, rel=1e-5)


# ------------------------------------------------------------------ model
def build_irn(radius=5):
    return MODELS.build(
        dict(type='IRNet',
             backbone=dict(type='ResNet', depth=18, strides=(1, 2, 2, 1),
                           dilations=(1, 1, 1, 1), out_indices=(0, 1, 2, 3),
                           frozen_stages=4, norm_eval=True,
                           contract_dilation=False),
             edge_head=dict(type='IRNEdgeHead', in_channels=R18_CHANNELS),
             displacement_head=dict(type='IRNDisplacementHead',
                                    in_channels=R18_CHANNELS),
             train_cfg=dict(radius=radius)))


def test_irnet_shapes_frozen_backbone_and_training_step():
    from mmseg.structures import SegDataSample
    torch.manual_seed(0)
    model = build_irn(radius=5)
    model.train()
    assert not model.backbone.training
    assert not any(p.requires_grad for p in model.backbone.parameters())
    x = torch.randn(2, 3, 75, 90)
    feats = model.extract_feat(x)
    assert [f.shape[1] for f in feats] == list(R18_CHANNELS)
    assert feats[0].shape[-2:] == (19, 23)  # ceil(H / 4), ceil(W / 4)
    edge, dp = model._forward(x)
    assert edge.shape == (2, 1, 19, 23) and dp.shape == (2, 2, 19, 23)

    pi = PathIndex(5)
    samples = []
    rng = np.random.default_rng(0)
    for _ in range(2):
        lab = rng.choice([0, 5, 255], size=(19, 23)).astype(np.uint8)
        s = SegDataSample(metainfo=dict(img_id='a'))
        s.aff_labels = torch.from_numpy(
            np.stack(affinity_labels_from_seg(lab, pi)).astype(np.uint8))
        samples.append(s)
    backbone_before = [p.clone() for p in model.backbone.parameters()]
    mean_before = model.displacement_head.out[-1].running_mean.clone()
    losses = model.loss(x, samples)
    assert set(losses) >= {'loss_aff', 'loss_dp', 'pos_aff', 'neg_aff'}
    total = losses['loss_aff'] + losses['loss_dp']
    assert torch.isfinite(total)
    optim = torch.optim.SGD(
        [p for p in model.parameters() if p.requires_grad], lr=0.1)
    total.backward()
    assert model.edge_head.fuse.weight.grad.abs().sum() > 0
    assert model.displacement_head.branches[0][0].weight.grad is not None
    optim.step()
    for before, after in zip(backbone_before, model.backbone.parameters()):
        assert torch.equal(before, after)
    # MeanShift tracks the displacement mean in training mode
    assert not torch.equal(mean_before,
                           model.displacement_head.out[-1].running_mean)
    # wrong label grid: a clear error naming the image
    samples[0].aff_labels = samples[0].aff_labels[:, :, :-1]
    with pytest.raises(ValueError, match="image 'a'"):
        model.loss(x, samples)


def test_irnet_predict_is_flip_fused_sigmoid():
    from mmseg.structures import SegDataSample
    torch.manual_seed(0)
    model = build_irn().eval()
    x = torch.randn(1, 3, 64, 72)
    with torch.no_grad():
        # QA-CLIMS / CLIMS EdgeDisplacement (F.pad commented out): the image
        # and its flip unpadded, logits cropped to the stride-4 grid, flip
        # fused before the sigmoid
        unpadded = model._forward(torch.cat([x, x.flip(-1)]))[0]
        expect = torch.sigmoid(unpadded[0] / 2 + unpadded[1].flip(-1) / 2)
        # the original IRN pads the image and its flip to 512
        both = F.pad(torch.cat([x, x.flip(-1)]), (0, 512 - 72, 0, 512 - 64))
        logits = model._forward(both)[0][..., :16, :18]
        padded = torch.sigmoid(logits[0] / 2 + logits[1].flip(-1) / 2)
        sample = SegDataSample(metainfo=dict(img_shape=(61, 70)))
        out = model.predict(x, [sample])[0].pred_edge.data
        model.test_cfg['pad_size'] = 512
        sample = SegDataSample(metainfo=dict(img_shape=(61, 70)))
        out_padded = model.predict(x, [sample])[0].pred_edge.data
    assert out.shape == (1, 16, 18)  # cropped to ceil(61/4), ceil(70/4)
    torch.testing.assert_close(out, expect[:, :16, :18])
    assert not torch.allclose(out, padded[:, :16, :18], atol=1e-3)
    # padding stays available as an option
    torch.testing.assert_close(out_padded, padded[:, :16, :18])


def test_irnet_refuses_a_checkpoint_without_its_edge_branch():
    from mmengine.runner.checkpoint import load_state_dict
    good = build_irn().state_dict()
    partial = {k: v for k, v in good.items() if not k.startswith('edge_head')}
    with pytest.raises(KeyError, match=r'IRNet.*first: edge_head\.'):
        load_state_dict(build_irn(), partial, strict=False)
    load_state_dict(build_irn(), good, strict=True)


def test_irnet_default_test_cfg_does_not_pad():
    assert build_irn().test_cfg['pad_size'] is None
    from mmengine import Config
    cfg = Config.fromfile(
        os.path.join(REPO, 'configs/irn/irn_r50_1xb32-3e_voc12aug-512x512.py'))
    assert cfg.model.test_cfg.get('pad_size') is None


# -------------------------------------------------- tools, synthetic data
def run_tool(*args: str) -> str:
    env = dict(os.environ, PYTHONUNBUFFERED='1', OMP_NUM_THREADS='1')
    proc = subprocess.run([sys.executable, *args], cwd=REPO, env=env,
                          capture_output=True, text=True)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    return out


def load_tool(name: str):
    """Import ``tools/<name>.py`` (run in-process: no interpreter start-up)."""
    spec = importlib.util.spec_from_file_location(
        name, osp.join(REPO, 'tools', name + '.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def write_ir_labels(voc_root: str, out_dir: str) -> list:
    """Synthetic IR labels: GT masks with a 255 band on class boundaries."""
    os.makedirs(out_dir, exist_ok=True)
    ids = read_split(osp.join(voc_root, 'ImageSets/Segmentation/'
                              'train_aug.txt'))
    for img_id in ids:
        gt = np.array(Image.open(
            osp.join(voc_root, 'SegmentationClassAug', img_id + '.png')))
        grown = cv2.dilate(gt, np.ones((5, 5), np.uint8))
        shrunk = cv2.erode(gt, np.ones((5, 5), np.uint8))
        ir = gt.copy()
        ir[grown != shrunk] = 255
        Image.fromarray(ir).save(osp.join(out_dir, img_id + '.png'))
    return ids


@pytest.fixture(scope='module')
def trained_irn(synthetic_voc_root, tmp_path_factory):
    """One epoch (6 iterations) of a small IRNet through tools/train.py."""
    tmp = tmp_path_factory.mktemp('irn')
    ir_dir = str(tmp / 'ir_label')
    write_ir_labels(synthetic_voc_root, ir_dir)
    cfg = tmp / 'irn_test.py'
    cfg.write_text(f"""
_base_ = [{VOC_CONFIG!r}]
data_root = {synthetic_voc_root!r}
model = dict(
    backbone=dict(depth=18, init_cfg=None),
    edge_head=dict(in_channels={R18_CHANNELS}),
    displacement_head=dict(in_channels={R18_CHANNELS}))
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='RandomRescale', scale_range=(0.5, 1.5)),
    dict(type='RandomFlip', prob=0.5),
    dict(type='RandomCropWithPad', crop_size=96, seg_pad_val=255),
    dict(type='AffinityLabels', radius=10, downsample=4, num_classes=21),
    dict(type='PackWSSSInputs', extra_fields=('aff_labels', )),
]
train_dataloader = dict(
    batch_size=8, num_workers=0, persistent_workers=False,
    dataset=dict(data_root=data_root, pipeline=train_pipeline,
                 data_prefix=dict(img_path='JPEGImages',
                                  seg_map_path={ir_dir!r})))
param_scheduler = [dict(type='PolyLR', power=0.9, eta_min=0., begin=0,
                        end=1, by_epoch=True, convert_to_iter_based=True)]
train_cfg = dict(max_epochs=1)
default_hooks = dict(logger=dict(interval=2),
                     checkpoint=dict(interval=1))
randomness = dict(seed=0)
""")
    work = str(tmp / 'work')
    out = run_tool('tools/train.py', str(cfg), '--work-dir', work)
    with open(osp.join(work, 'last_checkpoint')) as f:
        return str(cfg), f.read().strip(), out


def test_training_iterations_through_tools(trained_irn):
    _, ckpt, out = trained_irn
    assert 'loss_dp' in out and 'pos_aff' in out
    values = [float(v) for v in re.findall(r'loss_aff: ([-\d.e+nainf]+)', out)]
    assert len(values) >= 3 and np.isfinite(values).all()
    state = torch.load(ckpt, map_location='cpu',
                       weights_only=False)['state_dict']
    assert 'edge_head.fuse.weight' in state
    # MeanShift learned a displacement mean; the optimizer saw both lr groups
    assert state['displacement_head.out.4.running_mean'].abs().sum() > 0


def test_make_sem_seg_labels_tool(trained_irn, synthetic_voc_root, tmp_path,
                                  capsys):
    cfg, ckpt, _ = trained_irn
    voc = synthetic_voc_root
    ids = read_split(osp.join(voc, 'ImageSets/Segmentation/train.txt'))[:4]
    split = tmp_path / 'split.txt'
    split.write_text('\n'.join(ids) + '\n')
    cam_dir = tmp_path / 'cams'
    rng = np.random.default_rng(0)
    keys_of = {}
    for img_id in ids:
        w, h = Image.open(osp.join(voc, 'JPEGImages', img_id + '.jpg')).size
        keys = np.array([2, 9])
        keys_of[img_id] = keys
        cam = rng.random((2, -(-h // 4), -(-w // 4))).astype(np.float32)
        save_cam(str(cam_dir / (img_id + '.npz')), keys, cam, None)
    out_dir = tmp_path / 'sem_seg'
    tool = load_tool('make_sem_seg_labels')
    args = [cfg, ckpt, '--cam-dir', str(cam_dir), '--out-dir', str(out_dir),
            '--ann-file', str(split), '--device', 'cpu',
            '--no-progress']
    assert tool.main(args) == 0
    assert '4 PNG(s) written' in capsys.readouterr().out
    for img_id in ids:
        png = Image.open(out_dir / (img_id + '.png'))
        assert png.mode == 'P'
        lab = np.array(png)
        size = Image.open(osp.join(voc, 'JPEGImages', img_id + '.jpg')).size
        assert lab.shape == size[::-1]
        assert set(np.unique(lab)) <= {0, 3, 10}
    # resumable: nothing left to do
    assert tool.main(args) == 0
    assert '0 PNG(s) written' in capsys.readouterr().out
    # a missing CAM file is named
    os.remove(out_dir / (ids[0] + '.png'))
    os.remove(cam_dir / (ids[0] + '.npz'))
    with pytest.raises(FileNotFoundError, match=ids[0]):
        tool.main(args)
