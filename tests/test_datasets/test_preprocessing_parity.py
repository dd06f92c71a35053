"""Normalising in the data pre-processor equals the official pipeline.

The official training input normalises the image, flips it and takes a random
512 crop padded with 0 AFTER normalisation (spec §3.3). The shipped configs
leave the image un-normalised in the pipeline and let ``WSSSDataPreProcessor``
normalise and fill the area outside ``crop_box`` with 0. These tests run the
real transforms both ways, with the same random draws, and compare the model
inputs pixel for pixel (``torch.equal``, no tolerance).
"""
import cv2
import numpy as np
import pytest
import torch
from mmcv.transforms import Compose
from mmengine.dataset import pseudo_collate
from mmengine.registry import init_default_scope

from qaclims_mm.models import WSSSDataPreProcessor
from qaclims_mm.structures.normalization import (CLIP_MEAN, CLIP_STD,
                                                 IMAGENET_MEAN,
                                                 IMAGENET_MEAN_01,
                                                 IMAGENET_STD,
                                                 IMAGENET_STD_01)

init_default_scope('mmseg')

LOAD = dict(type='LoadImageFromFile', color_type='color_ignore_orientation')
NORM = dict(type='NormalizeImage')
PREPROCESSOR = dict(mean=IMAGENET_MEAN, std=IMAGENET_STD, bgr_to_rgb=True)


def _write_images(tmp_path, sizes):
    paths = []
    rng = np.random.default_rng(0)
    for i, (h, w) in enumerate(sizes):
        img = rng.integers(0, 256, (h, w, 3), np.uint8)
        path = str(tmp_path / f'{i}.png')
        cv2.imwrite(path, img)
        seg = rng.integers(0, 21, (h, w), np.uint8)
        cv2.imwrite(str(tmp_path / f'{i}_seg.png'), seg)
        paths.append(path)
    return paths


def _run(pipeline, paths, seed, preprocessor, with_seg=False):
    """Each image through ``pipeline`` with the same seed, then batched."""
    pipe = Compose(pipeline)
    data = []
    for i, path in enumerate(paths):
        np.random.seed(seed + i)
        results = dict(img_path=path, img_id=str(i), img_labels=[0],
                       seg_fields=[], reduce_zero_label=False)
        if with_seg:
            results['seg_map_path'] = path.replace('.png', '_seg.png')
        data.append(pipe(results))
    batch = preprocessor(pseudo_collate(data), True)
    return batch['inputs'], batch['data_samples']


def _official_and_new(official_pipeline):
    new_pipeline = [t for t in official_pipeline if t is not NORM]
    assert len(new_pipeline) == len(official_pipeline) - 1
    return new_pipeline


# image sizes after the resize are both smaller and larger than the crop, on
# either axis, so the batch mixes pure crops, pure padding and both
SIZES = [(40, 90), (90, 40), (30, 30), (100, 120), (64, 64)]


DEVICES = ['cpu', pytest.param('cuda', marks=pytest.mark.skipif(
    not torch.cuda.is_available(), reason='no CUDA device'))]


@pytest.mark.parametrize('device', DEVICES)
@pytest.mark.parametrize('seed', [0, 1, 2])
def test_training_crop_is_pixel_identical(tmp_path, seed, device):
    """Also on the GPU: there the pre-processor normalises on the device."""
    official = [
        LOAD,
        dict(type='RandomLongSideResize', long_range=(40, 110)),
        NORM,
        dict(type='RandomFlip', prob=0.5),
        dict(type='RandomCropWithPad', crop_size=64),
        dict(type='PackWSSSInputs'),
    ]
    paths = _write_images(tmp_path, SIZES)
    old, _ = _run(official, paths, seed, WSSSDataPreProcessor())
    new, samples = _run(_official_and_new(official), paths, seed,
                        WSSSDataPreProcessor(**PREPROCESSOR).to(device))
    assert new.device.type == device
    new = new.cpu()
    assert old.dtype == new.dtype == torch.float32
    assert old.shape == new.shape == (len(SIZES), 3, 64, 64)
    assert torch.equal(old, new)
    # the batch really exercised the padding: some zeros outside the boxes
    padded = [s.crop_box != (0, 64, 0, 64) for s in samples]
    assert any(padded) and not all(padded)


def test_irn_crop_with_labels_is_pixel_identical(tmp_path):
    official = [
        LOAD,
        dict(type='LoadAnnotations'),
        dict(type='RandomRescale', scale_range=(0.5, 1.5)),
        NORM,
        dict(type='RandomFlip', prob=0.5),
        dict(type='RandomCropWithPad', crop_size=64, seg_pad_val=255),
        dict(type='AffinityLabels', radius=5, downsample=4, num_classes=21),
        dict(type='PackWSSSInputs', extra_fields=('aff_labels', )),
    ]
    paths = _write_images(tmp_path, SIZES)
    old, old_s = _run(official, paths, 7, WSSSDataPreProcessor(), True)
    new, new_s = _run(_official_and_new(official), paths, 7,
                      WSSSDataPreProcessor(**PREPROCESSOR), True)
    assert torch.equal(old, new)
    for a, b in zip(old_s, new_s):
        assert torch.equal(a.gt_sem_seg.data, b.gt_sem_seg.data)
        assert torch.equal(a.aff_labels, b.aff_labels)


def test_multi_scale_cam_inputs_are_pixel_identical(tmp_path):
    official = [
        LOAD,
        dict(type='MultiScaleImages', scales=(1.0, 0.5, 1.5, 2.0)),
        NORM,
        dict(type='PackWSSSInputs'),
    ]
    paths = _write_images(tmp_path, SIZES[:2])
    old, _ = _run(official, paths, 0, WSSSDataPreProcessor())
    new, _ = _run(_official_and_new(official), paths, 0,
                  WSSSDataPreProcessor(**PREPROCESSOR))
    assert len(old) == len(new) == 4  # scales
    for old_scale, new_scale in zip(old, new):
        assert len(old_scale) == len(new_scale) == 2  # images
        for a, b in zip(old_scale, new_scale):
            assert a.dtype == b.dtype == torch.float32
            assert torch.equal(a, b)


def test_double_normalisation_is_refused(tmp_path):
    pipeline = [LOAD, NORM, dict(type='PackWSSSInputs')]
    paths = _write_images(tmp_path, SIZES[:1])
    with pytest.raises(ValueError, match='image 0 was normalised in the '
                       'pipeline'):
        _run(pipeline, paths, 0, WSSSDataPreProcessor(**PREPROCESSOR))


def test_mean_and_std_are_given_together():
    with pytest.raises(ValueError, match='both mean and std'):
        WSSSDataPreProcessor(mean=IMAGENET_MEAN)


def test_constants_have_one_home():
    """The 0-1 literals and the 0-255 values describe the same statistics,
    and the readers take them from qaclims_mm.structures.normalization."""
    np.testing.assert_allclose(np.array(IMAGENET_MEAN) / 255,
                               IMAGENET_MEAN_01, rtol=0, atol=1e-12)
    np.testing.assert_allclose(np.array(IMAGENET_STD) / 255,
                               IMAGENET_STD_01, rtol=0, atol=1e-12)
    from qaclims_mm.datasets.transforms import NormalizeImage
    from qaclims_mm.models.heads import ritc_head
    from qaclims_mm.qape.engines import blip
    assert NormalizeImage().mean.tolist() == list(
        np.float32(IMAGENET_MEAN))
    assert blip.CLIP_MEAN is CLIP_MEAN and blip.CLIP_STD is CLIP_STD
    assert ritc_head.CLIP_MEAN is CLIP_MEAN
    assert ritc_head.IMAGENET_MEAN_01 is IMAGENET_MEAN_01
