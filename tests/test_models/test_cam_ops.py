"""CAM arithmetic: images without labels, and the test-time threshold."""
import math

import numpy as np
import torch
from mmengine.registry import init_default_scope
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample

import qaclims_mm  # noqa: F401
from qaclims_mm.models.utils import aggregate_multiscale_cams, cams_to_seg

init_default_scope('mmseg')


def tiny_model(**test_cfg):
    return MODELS.build(
        dict(
            type='CAMClassifier',
            backbone=dict(type='ResNet', depth=18, strides=(1, 2, 2, 1),
                          out_indices=(3, ), base_channels=8),
            cam_head=dict(type='CAMHead', in_channels=64, num_classes=4),
            test_cfg=test_cfg)).eval()


def sample(labels, hw, img_id='img'):
    s = SegDataSample()
    s.set_metainfo(dict(img_id=img_id, img_labels=labels, ori_shape=hw))
    return s


def test_aggregate_without_keys_gives_empty_maps():
    maps = [torch.rand(5, 10, 13), torch.rand(5, 5, 7)]
    cam, high = aggregate_multiscale_cams(maps, (37, 50),
                                          torch.zeros(0, dtype=torch.long))
    assert tuple(cam.shape) == (0, 10, 13)
    assert tuple(high.shape) == (0, 37, 50)
    assert cam.dtype == high.dtype == maps[0].dtype


def test_predict_image_without_labels():
    """A label-less image (COCO keeps them) gives K = 0 and all background.

    QA-CLIMS / CLIMS models are CAMClassifiers too (with a RegionTextHead),
    so they share this inference path."""
    model = tiny_model()
    h, w = 45, 61
    scales = [torch.randn(3, h, w), torch.randn(3, 23, 31)]
    with torch.no_grad():
        out = model.predict([[s] for s in scales],
                            [sample([], (h, w), 'COCO_000000000025')])[0]
    pred = out.pred_cam
    assert pred['keys'].numel() == 0
    assert tuple(pred['cam'].shape) == (0, math.ceil(h / 4), math.ceil(w / 4))
    assert tuple(pred['high_res'].shape) == (0, h, w)
    seg = out.pred_sem_seg.data
    assert tuple(seg.shape) == (1, h, w) and not seg.any()


def test_cams_to_seg_hand_computed_at_two_thresholds():
    cams = torch.tensor([[[0.10, 0.50, 0.90], [0.40, 0.40, 0.00]],
                         [[0.20, 0.60, 0.30], [0.40, 0.70, 0.45]]])
    keys = torch.tensor([2, 7])  # labels 3 and 8
    # per pixel: the larger map wins when its value exceeds the threshold;
    # ties between maps go to the first map, ties with the threshold to bg
    expected = {
        0.25: [[0, 8, 3], [3, 8, 8]],
        0.55: [[0, 8, 3], [0, 8, 0]],
    }
    for thr, labels in expected.items():
        got = cams_to_seg(cams, keys, thr)
        assert got.dtype == torch.int64
        assert got.tolist() == labels, thr
    # exactly at the threshold: background
    assert cams_to_seg(cams, keys, 0.40).tolist() == [[0, 8, 3], [0, 8, 8]]
    # no maps: all background
    assert not cams_to_seg(cams[:0], keys[:0], 0.1).any()


def test_predict_uses_test_cfg_threshold():
    """pred_sem_seg follows model.test_cfg.threshold (two settings)."""
    torch.manual_seed(0)
    h, w = 40, 52
    img = torch.randn(3, h, w)
    outs = {}
    for thr in (0.2, 0.7):
        torch.manual_seed(1)  # the same weights for both thresholds
        model = tiny_model(threshold=thr)
        model.cam_head.classifier.weight.data.abs_()
        with torch.no_grad():
            outs[thr] = model.predict([[img]], [sample([1, 3], (h, w))])[0]
    for thr, out in outs.items():
        high = out.pred_cam['high_res'].numpy()
        keys = out.pred_cam['keys'].numpy()
        # the rule written out: label of the strongest map where it beats thr
        peak = high.max(0)
        hand = np.where(peak > thr, keys[high.argmax(0)] + 1, 0)
        np.testing.assert_array_equal(out.pred_sem_seg.data[0].numpy(), hand)
    low, high_thr = (outs[t].pred_sem_seg.data for t in (0.2, 0.7))
    # the two settings give different, non-trivial maps (test not vacuous)
    assert (low > 0).sum() > (high_thr > 0).sum() > 0
