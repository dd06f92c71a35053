"""An image without labels: inference writes K = 0, every consumer reads it
as all background (CAM metric, eval tool, pseudo labels, IR labels, the
random walk and the label hook)."""
import importlib.util
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.registry import init_default_scope
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample
from PIL import Image

import qaclims_mm  # noqa: F401
from qaclims_mm.datasets.class_names import VOC_CLASSES
from qaclims_mm.engine.hooks.save_cam_hook import SaveCAMHook
from qaclims_mm.evaluation.offline import evaluate_cam_dir
from qaclims_mm.evaluation.metrics.cam_metric import CAMIoUMetric
from qaclims_mm.refine.irn_inference import random_walk_label
from qaclims_mm.refine.stages import write_pseudo_labels
from qaclims_mm.utils.cam_file import load_cam

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
H, W = 29, 38
IMG_ID = 'COCO_train2014_000000000025'


def load_tool(name):
    spec = importlib.util.spec_from_file_location(
        name, osp.join(REPO, 'tools', name + '.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope='module')
def empty_cam_dir(tmp_path_factory):
    """The CAM file that inference + SaveCAMHook write for a label-less
    image."""
    init_default_scope('mmseg')
    model = MODELS.build(
        dict(type='CAMClassifier',
             backbone=dict(type='ResNet', depth=18, strides=(1, 2, 2, 1),
                           out_indices=(3, ), base_channels=8),
             cam_head=dict(type='CAMHead', in_channels=64,
                           num_classes=20))).eval()
    sample = SegDataSample()
    sample.set_metainfo(dict(img_id=IMG_ID, img_labels=[], ori_shape=(H, W)))
    with torch.no_grad():
        out = model.predict(torch.randn(1, 3, H, W), [sample])
    root = tmp_path_factory.mktemp('no_labels')
    cam_dir = str(root / 'cams')
    hook = SaveCAMHook(cam_dir)
    hook._out, hook._vis, hook._num_written = cam_dir, None, 0
    hook.after_test_iter(None, 0, None, out)
    return root, cam_dir


def test_cam_file_has_zero_maps(empty_cam_dir):
    _, cam_dir = empty_cam_dir
    cam = load_cam(osp.join(cam_dir, IMG_ID + '.npz'), 20)
    assert cam['keys'].shape == (0, )
    assert cam['cam'].shape == (0, math_ceil(H), math_ceil(W))
    assert cam['high_res'].shape == (0, H, W)


def math_ceil(n):
    return -(-n // 4)


def gt_with_objects():
    gt = np.zeros((H, W), np.uint8)
    gt[5:20, 4:30] = 7
    gt[0, :] = 255
    return gt


@pytest.mark.parametrize('cam_type', ['high_res', 'cam'])
def test_metric_and_eval_counts_all_background(empty_cam_dir, cam_type):
    root, cam_dir = empty_cam_dir
    gt = gt_with_objects()
    metric = CAMIoUMetric(cam_dir=cam_dir, sweep=None, cam_type=cam_type)
    metric.dataset_meta = dict(classes=('background', ) + VOC_CLASSES)
    metric.process({}, [dict(img_id=IMG_ID, gt_sem_seg=dict(
        data=torch.from_numpy(gt.astype(np.int64))[None]))])
    conf = metric.results[0][0]
    # every scored pixel is predicted background
    assert conf[:, 1:].sum() == 0
    assert conf[0, 0] == (gt == 0).sum() and conf[7, 0] == (gt == 7).sum()
    gt_dir = root / f'gt_{cam_type}'
    gt_dir.mkdir()
    Image.fromarray(gt).save(str(gt_dir / (IMG_ID + '.png')))
    offline = evaluate_cam_dir(cam_dir, str(gt_dir), [IMG_ID], [0.15],
                               cam_type=cam_type)
    np.testing.assert_array_equal(offline[0], conf)


def test_pseudo_labels_ir_labels_and_random_walk(empty_cam_dir, tmp_path):
    _, cam_dir = empty_cam_dir
    out = str(tmp_path / 'pseudo')
    assert write_pseudo_labels(cam_dir, [IMG_ID], out, progress=False) == 1
    with Image.open(osp.join(out, IMG_ID + '.png')) as img:
        label = np.asarray(img)
    assert label.shape == (H, W) and not label.any()

    pytest.importorskip('pydensecrf')
    from qaclims_mm.refine.stages import make_ir_labels
    img_dir = tmp_path / 'img'
    img_dir.mkdir()
    Image.fromarray(np.full((H, W, 3), 128, np.uint8)).save(
        str(img_dir / (IMG_ID + '.jpg')))
    ir_out = str(tmp_path / 'ir')
    assert make_ir_labels(cam_dir, str(img_dir), [IMG_ID], ir_out,
                          progress=False) == 1
    with Image.open(osp.join(ir_out, IMG_ID + '.png')) as img:
        ir = np.asarray(img)
    assert ir.shape == (H, W) and not ir.any()

    cam = load_cam(osp.join(cam_dir, IMG_ID + '.npz'), 20, fields=('cam', ))
    edge = torch.rand(math_ceil(H), math_ceil(W))
    rw = random_walk_label(cam, edge, (H, W), dict(radius=5, beta=10,
                                                   exp_times=8, bg_thr=0.2))
    assert rw.shape == (H, W) and not rw.any()


def test_label_hook_job(empty_cam_dir, tmp_path):
    from qaclims_mm.datasets.class_names import VOC_PALETTE
    from qaclims_mm.engine.hooks.cam_to_pseudo_label_hook import \
        refine_to_png
    from qaclims_mm.refine.refiners import IRLabelRefiner, ThresholdRefiner
    from qaclims_mm.utils.label_io import label_png_palette
    _, cam_dir = empty_cam_dir
    cam = load_cam(osp.join(cam_dir, IMG_ID + '.npz'), 20)
    for ir_label in (False, True):
        out = str(tmp_path / f'{ir_label}.png')
        refiner = (IRLabelRefiner(0.3, 0.1, use_crf=False) if ir_label else
                   ThresholdRefiner(0.15))
        with open(out, 'wb') as f:
            f.write(refine_to_png(IMG_ID, refiner, cam, None,
                                  label_png_palette(VOC_PALETTE)))
        with Image.open(out) as img:
            assert not np.asarray(img).any()


def test_eval_cam_tool(empty_cam_dir, tmp_path, capsys):
    root, cam_dir = empty_cam_dir
    gt_dir = tmp_path / 'gt'
    gt_dir.mkdir()
    Image.fromarray(gt_with_objects()).save(str(gt_dir / (IMG_ID + '.png')))
    split = tmp_path / 'split.txt'
    split.write_text(IMG_ID + '\n')
    tool = load_tool('eval_cam')
    assert tool.main(['--cam-dir', cam_dir, '--gt-dir', str(gt_dir),
                      '--split-file', str(split), '--no-sweep']) == 0
    out = capsys.readouterr().out
    gt = gt_with_objects()
    n_bg, n_obj = int((gt == 0).sum()), int((gt == 7).sum())
    # IoU: background n_bg / (n_bg + n_obj), class 7 zero, others absent
    miou = (n_bg / (n_bg + n_obj) + 0.0) / 2 * 100
    assert f'mIoU {miou:.2f}' in out
