import os.path as osp
from unittest import mock

import numpy as np
import pytest
import torch
from mmseg.evaluation import IoUMetric
from mmseg.registry import METRICS

from qaclims_mm.datasets.class_names import VOC_CLASSES
from qaclims_mm.evaluation.cam_labels import cams_to_label
from qaclims_mm.evaluation.metrics import cam_metric
from qaclims_mm.evaluation.metrics.cam_metric import CAMIoUMetric
from qaclims_mm.utils.cam_file import save_cam

CLASSES = ('background', ) + VOC_CLASSES  # N = 21


def random_images(num_images=8, seed=0, size=(13, 17)):
    """``(img_id, keys, high_res, gt)`` with ties, ignore pixels and K = 0."""
    rng = np.random.default_rng(seed)
    images = []
    for i in range(num_images):
        num_maps = i % 4
        keys = np.sort(rng.choice(20, num_maps, replace=False))
        high_res = rng.random((num_maps, ) + size).astype(np.float32)
        tie = rng.random(high_res.shape) < 0.2
        high_res[tie] = np.float32(0.15)
        gt = rng.integers(0, 21, size).astype(np.uint8)
        gt[rng.random(size) < 0.1] = 255
        images.append((f'img_{i}', keys, high_res, gt))
    return images


def cam_sample(img_id, keys, high_res, gt, with_pred=True):
    sample = dict(
        img_id=img_id,
        img_path=f'/data/JPEGImages/{img_id}.jpg',
        gt_sem_seg=dict(data=torch.from_numpy(gt.astype(np.int64))[None]))
    if with_pred:
        sample['pred_cam'] = dict(
            keys=torch.from_numpy(keys).long(),
            high_res=torch.from_numpy(high_res),
            cam=torch.from_numpy(np.ascontiguousarray(high_res[:, ::4, ::4])))
    return sample


def build_metric(**kwargs):
    metric = CAMIoUMetric(**kwargs)
    metric.dataset_meta = dict(classes=CLASSES, split='train')
    return metric


def run_metric(metric, images, batch_size=3, **sample_kwargs):
    samples = [cam_sample(*image, **sample_kwargs) for image in images]
    for start in range(0, len(samples), batch_size):
        metric.process({}, samples[start:start + batch_size])
    return metric


def test_registered():
    metric = METRICS.build(dict(type='CAMIoUMetric', threshold=0.2))
    assert isinstance(metric, CAMIoUMetric) and metric.threshold == 0.2


def test_equals_mmseg_iou_metric():
    images = random_images()
    ours = run_metric(build_metric(sweep=None), images)
    assert len(ours.results) == 1  # one summed histogram, O(1) memory
    iou_metric = IoUMetric(iou_metrics=['mIoU'])
    iou_metric.dataset_meta = dict(classes=CLASSES)
    samples = []
    for _, keys, high_res, gt in images:
        label = cams_to_label(high_res, keys, 0.15)
        samples.append(
            dict(
                pred_sem_seg=dict(data=torch.from_numpy(label)[None]),
                gt_sem_seg=dict(
                    data=torch.from_numpy(gt.astype(np.int64))[None])))
    iou_metric.process({}, samples)
    # exact integer areas
    inter, union, pred_area, gt_area = (
        sum(r[i] for r in iou_metric.results).numpy() for i in range(4))
    conf = ours.results[0][0]
    np.testing.assert_array_equal(np.diag(conf), inter)
    np.testing.assert_array_equal(conf.sum(0), pred_area)
    np.testing.assert_array_equal(conf.sum(1), gt_area)
    np.testing.assert_array_equal(
        conf.sum(0) + conf.sum(1) - np.diag(conf), union)
    ours_scores = ours.compute_metrics(ours.results)
    theirs = iou_metric.compute_metrics(iou_metric.results)
    assert ours_scores['mIoU'] == pytest.approx(theirs['mIoU'], abs=0.011)
    assert ours_scores['best_threshold'] == 0.15
    assert ours_scores['best_mIoU'] == ours_scores['mIoU']


def test_two_ranks_sum_to_one():
    images = random_images(num_images=10, seed=1)
    rank0 = run_metric(build_metric(), images[:6])
    rank1 = run_metric(build_metric(), images[6:])
    whole = run_metric(build_metric(), images)
    collected = rank0.results + rank1.results  # what collect_results returns
    assert len(collected) == 2
    np.testing.assert_array_equal(sum(collected), whole.results[0])
    assert whole.compute_metrics(whole.results) == \
        whole.compute_metrics(collected)


def test_sweep_values_match_single_threshold_metrics():
    images = random_images(seed=2)
    swept = run_metric(build_metric(), images)
    thresholds = swept.thresholds
    assert len(thresholds) == 55 and 0.15 in thresholds
    for t in (0.05, 0.15, 0.33, 0.59):
        single = run_metric(build_metric(threshold=t, sweep=None), images)
        index = int(np.flatnonzero(np.isclose(thresholds, t))[0])
        np.testing.assert_array_equal(swept.results[0][index],
                                      single.results[0][0])


def test_best_threshold_reporting():
    # GT fg pixels score 0.5, GT bg pixels 0.3: perfect for t in [0.30, 0.50)
    high_res = np.array([[[0.5, 0.5, 0.3, 0.3]] * 2], np.float32)
    gt = np.array([[8, 8, 0, 0]] * 2, np.uint8)
    metric = run_metric(build_metric(), [('img', np.array([7]), high_res, gt)])
    with mock.patch.object(cam_metric, 'print_log') as log:
        scores = metric.compute_metrics(metric.results)
    assert scores == dict(
        mIoU=25.0,  # at 0.15 everything is "cat": IoU bg 0, cat 4/8
        best_mIoU=100.0,
        best_threshold=0.3,
        fg_false_act=50.0)
    assert all(isinstance(v, float) for v in scores.values())
    logged = '\n'.join(str(call.args[0]) for call in log.call_args_list)
    assert "split 'train'" in logged and "'high_res'" in logged
    assert 'background threshold 0.15' in logged
    assert 'best threshold 0.3' in logged and 'cat' in logged


def test_threshold_outside_sweep_is_added():
    images = random_images(seed=3)
    metric = run_metric(build_metric(threshold=0.155), images)
    assert len(metric.thresholds) == 56 and 0.155 in metric.thresholds
    single = run_metric(build_metric(threshold=0.155, sweep=None), images)
    assert metric.compute_metrics(metric.results)['mIoU'] == \
        single.compute_metrics(single.results)['mIoU']


def test_split_label():
    metric = CAMIoUMetric(split='val')
    metric.dataset_meta = dict(classes=CLASSES)
    run_metric(metric, random_images(num_images=2))
    with mock.patch.object(cam_metric, 'print_log') as log:
        metric.compute_metrics(metric.results)
    assert "split 'val'" in str(log.call_args_list[-1].args[0])
    metric = CAMIoUMetric()
    metric.dataset_meta = dict(classes=CLASSES)
    run_metric(metric, random_images(num_images=2))
    with mock.patch.object(cam_metric, 'print_log') as log:
        metric.compute_metrics(metric.results)
    assert "split 'unknown'" in str(log.call_args_list[-1].args[0])


def test_offline_cam_dir(tmp_path):
    images = random_images(seed=4)
    for img_id, keys, high_res, _ in images:
        save_cam(osp.join(tmp_path, img_id + '.npz'), keys,
                 high_res[:, ::4, ::4], high_res)
    online = run_metric(build_metric(), images)
    offline = run_metric(
        build_metric(cam_dir=str(tmp_path)), images, with_pred=False)
    np.testing.assert_array_equal(online.results[0], offline.results[0])
    # a missing file names the image
    missing = build_metric(cam_dir=str(tmp_path))
    with pytest.raises(FileNotFoundError, match='img_missing'):
        missing.process({}, [
            cam_sample('img_missing', *images[0][1:], with_pred=False)])


def test_errors_name_the_image():
    keys, high_res = np.array([3]), np.zeros((1, 6, 8), np.float32)
    metric = build_metric()
    with pytest.raises(ValueError, match=r"'img_size'.*\(5, 8\).*\(6, 8\)"):
        metric.process({}, [
            cam_sample('img_size', keys, high_res,
                       np.zeros((5, 8), np.uint8))])
    with pytest.raises(ValueError, match="'img_key'.*outside"):
        metric.process({}, [
            cam_sample('img_key', np.array([20]), high_res,
                       np.zeros((6, 8), np.uint8))])
    with pytest.raises(KeyError, match='img_nopred.*cam_dir'):
        metric.process({}, [
            cam_sample('img_nopred', keys, high_res,
                       np.zeros((6, 8), np.uint8), with_pred=False)])
    stride4 = build_metric(cam_type='cam')
    with pytest.raises(ValueError, match=r"'img_cam'.*stride-4.*\(9, 8\)"):
        stride4.process({}, [
            cam_sample('img_cam', keys, high_res, np.zeros((9, 8),
                                                           np.uint8))])
    with pytest.raises(ValueError, match='cam_type'):
        CAMIoUMetric(cam_type='low_res')


def test_img_id_from_path():
    keys, high_res = np.array([3]), np.zeros((1, 6, 8), np.float32)
    sample = cam_sample('x', keys, high_res, np.zeros((5, 8), np.uint8))
    del sample['img_id']
    sample['img_path'] = '/data/JPEGImages/2007_000123.jpg'
    with pytest.raises(ValueError, match='2007_000123'):
        build_metric().process({}, [sample])
