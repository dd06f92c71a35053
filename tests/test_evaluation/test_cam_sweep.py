import os
import os.path as osp

import numpy as np
import pytest
from PIL import Image

from qaclims_mm.evaluation.cam_labels import cams_to_label
from qaclims_mm.evaluation.cam_sweep import (default_thresholds,
                                             sweep_confusion, sweep_summary)
from qaclims_mm.evaluation.confusion import (confusion_matrix,
                                             confusion_to_scores)
from qaclims_mm.evaluation.offline import evaluate_cam_dir
from qaclims_mm.evaluation.report import format_sweep_report
from qaclims_mm.utils.cam_file import save_cam

NUM_CLASSES = 5  # object classes; N = 6 with background


def ref_label(cams, keys, threshold):
    """The official recipe: pad a bg plane, argmax, map through keys."""
    padded = np.pad(cams, ((1, 0), (0, 0), (0, 0)), mode='constant',
                    constant_values=threshold)
    lut = np.pad(np.asarray(keys) + 1, (1, 0), mode='constant')
    return lut[np.argmax(padded, axis=0)]


def ref_confusion(gt, pred, n, ignore_index=255):
    """Hand-written bincount confusion matrix (rows = GT)."""
    mask = gt != ignore_index
    return np.bincount(n * gt[mask].astype(int) + pred[mask],
                       minlength=n * n).reshape(n, n)


def ref_miou(conf):
    """IoU = TP / (GT + Pred - TP), nanmean over classes, by hand."""
    ious = []
    for c in range(conf.shape[0]):
        tp = conf[c, c]
        union = conf[c, :].sum() + conf[:, c].sum() - tp
        ious.append(tp / union if union > 0 else np.nan)
    return np.nanmean(ious)


def random_image(rng, thresholds, num_maps=None, size=None):
    num_maps = rng.integers(0, 4) if num_maps is None else num_maps
    height, width = size or rng.integers(1, 25, 2)
    cams = rng.random((num_maps, height, width)).astype(np.float32)
    # exact ties with thresholds and between maps
    tie = rng.random(cams.shape) < 0.25
    cams[tie] = rng.choice(thresholds, tie.sum()).astype(np.float32)
    if num_maps > 1:
        same = rng.random((height, width)) < 0.2
        cams[1][same] = cams[0][same]
    keys = np.sort(rng.choice(NUM_CLASSES, num_maps, replace=False))
    gt = rng.integers(0, NUM_CLASSES + 1, (height, width)).astype(np.uint8)
    gt[rng.random((height, width)) < 0.15] = 255
    return cams, keys, gt


def test_default_thresholds():
    thr = default_thresholds()
    assert thr.shape == (55, )
    assert thr[0] == 0.05 and thr[-1] == 0.59 and thr[10] == 0.15
    np.testing.assert_array_equal(thr, np.round(np.arange(5, 60) / 100, 10))
    np.testing.assert_array_equal(default_thresholds(0.1, 0.3, 0.1),
                                  [0.1, 0.2, 0.3])
    with pytest.raises(ValueError):
        default_thresholds(step=0)


def test_cams_to_label_tie_rule():
    cams = np.array([[[0.15, 0.2, 0.5, 0.1]],
                     [[0.15, 0.2, 0.7, 0.0]]], dtype=np.float32)  # [2, 1, 4]
    keys = np.array([3, 7])
    label = cams_to_label(cams, keys, 0.15)
    # equal to bg -> bg; equal maps -> the first one; max wins; below -> bg
    np.testing.assert_array_equal(label, [[0, 4, 8, 0]])
    assert label.dtype == np.int64
    empty = cams_to_label(np.zeros((0, 3, 2), np.float32), [], 0.15)
    np.testing.assert_array_equal(empty, np.zeros((3, 2), np.int64))


def test_cams_to_label_matches_official_recipe():
    rng = np.random.default_rng(1)
    thr = default_thresholds()
    for _ in range(30):
        cams, keys, _ = random_image(rng, thr)
        for t in (0.05, 0.15, 0.3):
            np.testing.assert_array_equal(
                cams_to_label(cams, keys, t), ref_label(cams, keys, t))


def test_sweep_equals_per_threshold_reference():
    rng = np.random.default_rng(0)
    thr = default_thresholds()
    n = NUM_CLASSES + 1
    seen_empty = False
    for _ in range(150):
        cams, keys, gt = random_image(rng, thr)
        seen_empty |= cams.shape[0] == 0
        conf = sweep_confusion(cams, keys, gt, thr, NUM_CLASSES)
        assert conf.shape == (55, n, n) and conf.dtype == np.int64
        ref = np.stack([
            ref_confusion(gt, ref_label(cams, keys, t), n) for t in thr])
        np.testing.assert_array_equal(conf, ref)
    assert seen_empty


def test_sweep_float32_threshold_tie_is_background():
    # float32(0.15) > float64(0.15): the comparison must use the CAM dtype
    cams = np.full((1, 2, 2), 0.15, dtype=np.float32)
    gt = np.ones((2, 2), np.uint8)
    conf = sweep_confusion(cams, [0], gt, [0.1, 0.15, 0.2], NUM_CLASSES)
    assert conf[0, 1, 1] == 4  # fg at 0.1
    assert conf[1, 1, 0] == 4  # bg at 0.15 (tie)
    assert conf[2, 1, 0] == 4


def test_sweep_k0_and_all_ignored():
    gt = np.array([[0, 1], [255, 2]], np.uint8)
    conf = sweep_confusion(np.zeros((0, 2, 2), np.float32), [], gt,
                           [0.1, 0.2], NUM_CLASSES)
    assert conf[:, 0, 0].tolist() == [1, 1]
    assert conf[:, 1, 0].tolist() == [1, 1]
    assert conf[:, 2, 0].tolist() == [1, 1]
    assert conf.sum() == 6
    conf = sweep_confusion(np.ones((1, 2, 2), np.float32), [0],
                           np.full((2, 2), 255, np.uint8), [0.1],
                           NUM_CLASSES)
    assert conf.sum() == 0


def test_sweep_validation():
    cams = np.zeros((1, 4, 5), np.float32)
    with pytest.raises(ValueError, match=r'\(4, 6\).*\(4, 5\)'):
        sweep_confusion(cams, [0], np.zeros((4, 6), np.uint8), [0.1],
                        NUM_CLASSES)
    with pytest.raises(ValueError, match='outside'):
        sweep_confusion(cams, [NUM_CLASSES], np.zeros((4, 5), np.uint8),
                        [0.1], NUM_CLASSES)
    with pytest.raises(ValueError, match='sorted'):
        sweep_confusion(cams, [0], np.zeros((4, 5), np.uint8), [0.2, 0.1],
                        NUM_CLASSES)
    with pytest.raises(ValueError, match='GT labels'):
        sweep_confusion(cams, [0], np.full((4, 5), 9, np.uint8), [0.1],
                        NUM_CLASSES)
    # a [1, H, W] GT is accepted
    conf = sweep_confusion(cams, [0], np.zeros((1, 4, 5), np.uint8), [0.1],
                           NUM_CLASSES)
    assert conf[0, 0, 0] == 20


def test_confusion_to_scores_by_hand():
    conf = np.array([[50, 10, 0, 0],
                     [5, 20, 5, 0],
                     [0, 0, 10, 0],
                     [0, 0, 0, 0]])
    s = confusion_to_scores(conf)
    # class 0: TP 50, GT 60, Pred 55 -> union 65
    assert s['IoU'][0] == pytest.approx(50 / 65)
    assert s['IoU'][1] == pytest.approx(20 / (30 + 30 - 20))
    assert s['IoU'][2] == pytest.approx(10 / (10 + 15 - 10))
    assert np.isnan(s['IoU'][3])  # never in GT nor predicted
    assert s['mIoU'] == pytest.approx(
        np.mean([50 / 65, 20 / 40, 10 / 15]))
    assert isinstance(s['mIoU'], float)
    assert s['fp_rate'][0] == pytest.approx(5 / 65)
    assert s['fn_rate'][0] == pytest.approx(10 / 65)
    np.testing.assert_allclose(
        (s['IoU'] + s['fp_rate'] + s['fn_rate'])[:3], 1.0)
    # predicted fg = columns 1.. = 30 + 15; with GT bg = 10 + 0
    assert s['fg_false_activation'] == pytest.approx(10 / 45)


def test_miou_against_hand_written_reference():
    rng = np.random.default_rng(2)
    thr = np.array([0.1, 0.15, 0.3])
    n = NUM_CLASSES + 1
    total = np.zeros((3, n, n), np.int64)
    for _ in range(20):
        cams, keys, gt = random_image(rng, thr)
        total += sweep_confusion(cams, keys, gt, thr, NUM_CLASSES)
    scores = confusion_to_scores(total)
    for t in range(3):
        assert scores['mIoU'][t] == pytest.approx(ref_miou(total[t]))
        assert confusion_to_scores(total[t])['mIoU'] == pytest.approx(
            ref_miou(total[t]))


def test_confusion_matrix_ignores():
    gt = np.array([[0, 1, 255]])
    pred = np.array([[1, 1, 2]])
    conf = confusion_matrix(gt, pred, 3)
    assert conf.tolist() == [[0, 1, 0], [0, 1, 0], [0, 0, 0]]


def write_dataset(root, rng, num_images=6, size=(9, 11)):
    cam_dir, gt_dir = osp.join(root, 'cams'), osp.join(root, 'gt')
    os.makedirs(gt_dir, exist_ok=True)
    thr = default_thresholds()
    ids, data = [], {}
    for i in range(num_images):
        cams, keys, gt = random_image(rng, thr, num_maps=i % 3, size=size)
        img_id = f'img_{i}'
        save_cam(osp.join(cam_dir, img_id + '.npz'), keys, cams[:, ::4, ::4],
                 cams)
        Image.fromarray(gt).save(osp.join(gt_dir, img_id + '.png'))
        ids.append(img_id)
        data[img_id] = (cams, keys, gt)
    return cam_dir, gt_dir, ids, data


def test_evaluate_cam_dir(tmp_path):
    rng = np.random.default_rng(3)
    cam_dir, gt_dir, ids, data = write_dataset(str(tmp_path), rng)
    thr = default_thresholds()
    conf = evaluate_cam_dir(cam_dir, gt_dir, ids, thr, NUM_CLASSES)
    ref = sum(
        np.stack([
            ref_confusion(gt, ref_label(cams, keys, t), NUM_CLASSES + 1)
            for t in thr
        ]) for cams, keys, gt in data.values())
    np.testing.assert_array_equal(conf, ref)
    with pytest.raises(FileNotFoundError, match='img_missing'):
        evaluate_cam_dir(cam_dir, gt_dir, ids + ['img_missing'], thr,
                         NUM_CLASSES)


def test_sweep_summary_and_report():
    # GT fg pixels score 0.5, GT bg pixels 0.3: perfect for t in [0.3, 0.5)
    cams = np.array([[[0.5, 0.5, 0.3, 0.3]]], np.float32)
    gt = np.array([[1, 1, 0, 0]], np.uint8)
    thr = default_thresholds()
    conf = sweep_confusion(cams, [0], gt, thr, 1)
    summary = sweep_summary(conf, thr, 0.15)
    assert summary['best_threshold'] == 0.3
    assert summary['scores_at_best']['mIoU'] == 1.0
    # at 0.15 all four pixels are fg: IoU bg 0, fg 2/4
    assert summary['scores_at_threshold']['mIoU'] == pytest.approx(0.25)
    assert summary['scores_at_threshold']['fg_false_activation'] == 0.5
    report = format_sweep_report(conf, thr, 0.15, ['background', 'cat'],
                                 split='train', cam_type='high_res')
    head = report.splitlines()[:3]
    assert "'train'" in head[0] and "'high_res'" in head[0]
    assert '0.15' in head[0] and 'best threshold 0.3' in head[2]
    assert 'cat' in report and '100.0' in report
    with pytest.raises(ValueError, match='not one of'):
        sweep_summary(conf, thr, 0.155)
