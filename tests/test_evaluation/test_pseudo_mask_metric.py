"""PseudoMaskMetric and tools/eval_pseudo_masks.py against a bincount reference
(spec §6.6: 255 in a pseudo mask counts as background, GT 255 ignored)."""
import os.path as osp
import subprocess
import sys

import numpy as np
import pytest
import torch
from mmengine.registry import init_default_scope
from mmengine.structures import PixelData
from mmseg.structures import SegDataSample
from PIL import Image

from qaclims_mm.evaluation.metrics.pseudo_mask_metric import (
    PseudoMaskMetric, evaluate_pseudo_masks, pseudo_mask_confusion)

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
NUM_CLASSES = 5  # background + 4 objects
CLASSES = ('background', 'cat', 'dog', 'car', 'bus')


def reference_scores(gts, preds, n):
    """Hand-written §6.6 reference: 255 -> 0 in the prediction, drop GT 255,
    crop the confusion to n x n, IoU = TP / (GT + Pred - TP)."""
    conf = np.zeros((n, n), np.int64)
    for gt, pred in zip(gts, preds):
        pred = np.where(pred == 255, 0, pred).astype(np.int64).ravel()
        gt = gt.astype(np.int64).ravel()
        keep = (gt != 255) & (gt < n) & (pred < n)
        for g, p in zip(gt[keep], pred[keep]):  # slow and obvious
            conf[g, p] += 1
    gt_count, pred_count, tp = conf.sum(1), conf.sum(0), np.diag(conf)
    union = gt_count + pred_count - tp
    with np.errstate(invalid='ignore', divide='ignore'):
        iou = tp / union
        fp = 1 - gt_count / union  # official eval_sem_seg formulas
        fn = 1 - pred_count / union
    return conf, iou, fp, fn


def make_pairs(rng, count=4):
    gts, preds = [], []
    for i in range(count):
        h, w = 12 + i, 15
        gt = rng.integers(0, NUM_CLASSES, (h, w))
        gt[rng.random((h, w)) < 0.1] = 255
        pred = np.where(rng.random((h, w)) < 0.6, gt,
                        rng.integers(0, NUM_CLASSES, (h, w)))
        pred[rng.random((h, w)) < 0.15] = 255  # IR-style ignore
        pred[0, 0] = NUM_CLASSES + 1  # outside the classes: not counted
        gt[gt == 4] = 3  # class 4 never appears in the GT ...
        pred[pred == 4] = 2  # ... nor in the prediction: IoU nan
        gts.append(gt.astype(np.uint8))
        preds.append(pred.astype(np.uint8))
    return gts, preds


def write_png(path, label):
    Image.fromarray(np.asarray(label, np.uint8), mode='L').save(path)


@pytest.fixture
def pairs(tmp_path):
    gts, preds = make_pairs(np.random.default_rng(0))
    ids = [f'im{i}' for i in range(len(gts))]
    (tmp_path / 'pseudo').mkdir()
    (tmp_path / 'gt').mkdir()
    for img_id, gt, pred in zip(ids, gts, preds):
        write_png(tmp_path / 'pseudo' / f'{img_id}.png', pred)
        write_png(tmp_path / 'gt' / f'{img_id}.png', gt)
    return ids, gts, preds, str(tmp_path / 'pseudo'), str(tmp_path / 'gt')


def test_confusion_follows_the_official_rule():
    gt = np.array([[0, 1, 255], [2, 1, 0]])
    pred = np.array([[255, 1, 1], [2, 255, 7]])
    conf = pseudo_mask_confusion(pred, gt, 3)
    expected = np.zeros((3, 3), np.int64)
    expected[0, 0] = 1  # pred 255 -> background
    expected[1, 1] = 1
    expected[2, 2] = 1
    expected[1, 0] = 1  # pred 255 -> background, a false negative of 1
    # gt 255 ignored; pred 7 (>= N) not counted
    np.testing.assert_array_equal(conf, expected)
    with pytest.raises(ValueError, match=r'\(2, 3\).*\(3, 2\)'):
        pseudo_mask_confusion(pred, gt.T, 3)


def samples_for(ids, gts):
    out = []
    for img_id, gt in zip(ids, gts):
        sample = SegDataSample(metainfo=dict(img_id=img_id,
                                             img_path=f'/x/{img_id}.jpg'))
        sample.gt_sem_seg = PixelData(data=torch.from_numpy(
            gt.astype(np.int64))[None])
        out.append(sample.to_dict())
    return out


def test_metric_matches_the_reference_across_ranks(pairs):
    init_default_scope('mmseg')
    ids, gts, preds, pseudo_dir, _ = pairs
    conf, iou, fp, fn = reference_scores(gts, preds, NUM_CLASSES)
    assert np.isnan(iou[4])  # the nanmean matters
    metric = PseudoMaskMetric(pseudo_dir,
                              settings=dict(beta=10, exp_times=8, bg=0.2))
    metric.dataset_meta = dict(classes=CLASSES)
    samples = samples_for(ids, gts)
    metric.process({}, samples[:2])
    metric.process({}, samples[2:])
    assert len(metric.results) == 1  # one summed matrix per rank
    np.testing.assert_array_equal(metric.results[0]['conf'], conf)
    # two "ranks": the collected per-rank entries are summed
    rank0 = PseudoMaskMetric(pseudo_dir)
    rank0.dataset_meta = metric.dataset_meta
    rank0.process({}, samples[:1])
    rank1 = PseudoMaskMetric(pseudo_dir)
    rank1.dataset_meta = metric.dataset_meta
    rank1.process({}, samples[1:])
    results = metric.compute_metrics(rank0.results + rank1.results)
    assert results['mIoU'] == pytest.approx(np.nanmean(iou) * 100, abs=0.01)
    assert results['bg_fp_rate'] == pytest.approx(fp[0] * 100, abs=0.01)
    assert results['bg_fn_rate'] == pytest.approx(fn[0] * 100, abs=0.01)
    assert results['fg_fp_rate'] == pytest.approx(
        np.nanmean(fp[1:]) * 100, abs=0.01)
    assert results['fg_fn_rate'] == pytest.approx(
        np.nanmean(fn[1:]) * 100, abs=0.01)
    # evaluate() goes through the mmengine collection path
    out = metric.evaluate(len(ids))
    assert out['mIoU'] == results['mIoU']


def test_metric_logs_settings_and_table(pairs, capsys):
    init_default_scope('mmseg')
    ids, gts, _, pseudo_dir, _ = pairs
    metric = PseudoMaskMetric(pseudo_dir,
                              settings='random walk beta=10 exp=8 bg=0.20',
                              split='train')
    metric.dataset_meta = dict(classes=CLASSES)
    metric.process({}, samples_for(ids, gts))
    from mmengine.logging import MMLogger
    MMLogger.get_instance('pseudo_mask_test')
    metric.evaluate(len(ids))
    text = capsys.readouterr()
    text = text.out + text.err
    assert 'random walk beta=10 exp=8 bg=0.20' in text
    assert "split 'train', 4 images" in text
    assert 'FP rate' in text and 'dog' in text


def test_metric_errors_name_the_image(pairs, tmp_path):
    init_default_scope('mmseg')
    ids, gts, _, pseudo_dir, _ = pairs
    metric = PseudoMaskMetric(pseudo_dir)
    metric.dataset_meta = dict(classes=CLASSES)
    missing = samples_for(['ghost'], gts[:1])
    with pytest.raises(FileNotFoundError, match='ghost'):
        metric.process({}, missing)
    wrong_size = samples_for(ids[:1], [gts[0][:, :-1]])
    with pytest.raises(ValueError, match=rf"{ids[0]}.*\(12, 15\).*\(12, 14\)"):
        metric.process({}, wrong_size)
    with pytest.raises(FileNotFoundError):
        PseudoMaskMetric(str(tmp_path / 'nowhere'))


def test_offline_tool_matches_the_metric(pairs, tmp_path):
    ids, gts, preds, pseudo_dir, gt_dir = pairs
    conf, iou, _, _ = reference_scores(gts, preds, NUM_CLASSES)
    np.testing.assert_array_equal(
        evaluate_pseudo_masks(pseudo_dir, gt_dir, ids, num_classes=4), conf)
    split = tmp_path / 'train.txt'
    split.write_text('\n'.join(ids) + '\n')
    proc = subprocess.run(
        [sys.executable, 'tools/eval_pseudo_masks.py', '--pseudo-dir',
         pseudo_dir, '--gt-dir', gt_dir, '--split-file', str(split),
         '--num-classes', '4', '--settings', 'crf bg=0.15'],
        cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert 'crf bg=0.15' in proc.stdout
    assert f'mIoU {np.nanmean(iou) * 100:.2f}' in proc.stdout
    with pytest.raises(FileNotFoundError, match='ghost'):
        evaluate_pseudo_masks(pseudo_dir, gt_dir, ids + ['ghost'],
                              num_classes=4)
