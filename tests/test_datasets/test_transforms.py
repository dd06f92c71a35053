"""The training/inference transforms against the official pipeline (§3.3)."""
import numpy as np
import pytest
from mmcv.transforms import Compose
from mmengine.registry import init_default_scope
from PIL import Image

from qaclims_mm.datasets.transforms import (MultiScaleImages, NormalizeImage,
                                            PackWSSSInputs, RandomCropWithPad,
                                            RandomLongSideResize)
from qaclims_mm.structures.normalization import IMAGENET_MEAN, IMAGENET_STD

init_default_scope('mmseg')


def _image(h=60, w=80, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), np.uint8)


def test_long_side_resize_range_aspect_and_pillow_bicubic():
    img = _image(60, 80)
    t = RandomLongSideResize(long_range=(100, 140))
    seen = set()
    for seed in range(40):
        np.random.seed(seed)
        out = t(dict(img=img.copy()))
        h, w = out['img'].shape[:2]
        assert 100 <= w <= 140 and w in range(100, 141)
        assert h == int(np.round(60 * w / 80))
        seen.add(w)
    assert len(seen) > 10  # really random over the range
    # parity: the pixels equal a Pillow bicubic resize (the official pil_resize)
    np.random.seed(3)
    out = t(dict(img=img.copy()))
    h, w = out['img'].shape[:2]
    ref = np.asarray(Image.fromarray(img).resize((w, h), Image.BICUBIC))
    np.testing.assert_array_equal(out['img'], ref)


def test_long_side_resize_portrait_uses_height():
    np.random.seed(0)
    out = RandomLongSideResize((50, 50))(dict(img=_image(100, 40)))
    assert out['img'].shape[:2] == (50, 20)


def test_long_side_resize_bad_range():
    with pytest.raises(ValueError, match='long_range'):
        RandomLongSideResize((640, 320))


def test_normalize_rgb_imagenet():
    img = _image()
    out = NormalizeImage()(dict(img=img.copy()))['img']
    assert out.dtype == np.float32
    rgb = img[..., ::-1].astype(np.float32)
    # the official code: (img / 255 - mean) / std with 0-1 statistics
    mean01 = np.array(IMAGENET_MEAN) / 255
    std01 = np.array(IMAGENET_STD) / 255
    np.testing.assert_allclose(out, (rgb / 255 - mean01) / std01, atol=1e-5)


def test_crop_pads_with_zero_after_normalisation():
    img = NormalizeImage()(dict(img=_image(30, 50)))['img']
    np.random.seed(1)
    out = RandomCropWithPad(crop_size=64)(dict(img=img))
    crop = out['img']
    assert crop.shape == (64, 64, 3)
    y0, y1, x0, x1 = out['crop_box']
    assert (y1 - y0, x1 - x0) == (30, 50)
    np.testing.assert_array_equal(crop[y0:y1, x0:x1], img)
    outside = np.ones((64, 64), bool)
    outside[y0:y1, x0:x1] = False
    assert outside.any() and np.all(crop[outside] == 0)


def test_crop_offsets_cover_the_official_ranges():
    """Larger axis: a random window; smaller axis: a random container offset."""
    img = np.arange(100 * 20, dtype=np.float32).reshape(100, 20, 1)
    t = RandomCropWithPad(crop_size=(50, 40))
    windows, offsets = set(), set()
    np.random.seed(0)
    for _ in range(1000):
        out = t(dict(img=img))
        y0, y1, x0, x1 = out['crop_box']
        assert (y0, y1) == (0, 50) and x1 - x0 == 20
        offsets.add(x0)
        windows.add(int(out['img'][0, x0, 0]) // 20)  # first image row used
    assert offsets == set(range(21))  # container offsets 0..40-20
    assert windows == set(range(51))  # image windows 0..100-50


def test_crop_seg_map_padded_with_ignore():
    np.random.seed(0)
    seg = np.ones((10, 10), np.uint8)
    out = RandomCropWithPad(16, seg_pad_val=255)(dict(
        img=np.zeros((10, 10, 3), np.float32), gt_seg_map=seg,
        seg_fields=['gt_seg_map']))
    y0, y1, x0, x1 = out['crop_box']
    assert np.all(out['gt_seg_map'][y0:y1, x0:x1] == 1)
    assert (out['gt_seg_map'] == 255).sum() == 16 * 16 - 100


def test_flip_keeps_labels_and_flips_pixels():
    pipeline = Compose([
        dict(type='NormalizeImage'),
        dict(type='RandomFlip', prob=1.0),
        dict(type='PackWSSSInputs'),
    ])
    img = _image(20, 30)
    seg = np.zeros((20, 30), np.uint8)
    seg[:, :5] = 3
    out = pipeline(dict(img=img, img_id='x', img_labels=[2],
                        gt_seg_map=seg, seg_fields=['gt_seg_map'],
                        ori_shape=(20, 30), img_shape=(20, 30)))
    ref = NormalizeImage()(dict(img=img))['img'][:, ::-1]
    np.testing.assert_allclose(out['inputs'].numpy().transpose(1, 2, 0), ref)
    assert out['data_samples'].img_labels == [2]
    assert out['data_samples'].flip is True
    gt = out['data_samples'].gt_sem_seg.data[0].numpy()
    assert np.all(gt[:, -5:] == 3) and np.all(gt[:, :-5] == 0)


def test_multiscale_images_and_pack():
    img = _image(37, 50)
    out = Compose([
        MultiScaleImages(scales=(1.0, 0.5, 1.5, 2.0)),
        NormalizeImage(),
        PackWSSSInputs(),
    ])(dict(img=img, img_id='a', img_labels=[0, 3], ori_shape=(37, 50)))
    shapes = [tuple(t.shape) for t in out['inputs']]
    # round() of numpy: 18.5 -> 18 (banker's rounding), as the official code
    assert shapes == [(3, 37, 50), (3, 18, 25), (3, 56, 75), (3, 74, 100)]
    assert out['data_samples'].img_id == 'a'
    assert out['data_samples'].img_labels == [0, 3]
    assert out['data_samples'].ms_scales == (1.0, 0.5, 1.5, 2.0)


def test_training_pipeline_output_shape():
    pipeline = Compose([
        dict(type='RandomLongSideResize', long_range=(40, 90)),
        dict(type='NormalizeImage'),
        dict(type='RandomFlip', prob=0.5),
        dict(type='RandomCropWithPad', crop_size=64),
        dict(type='PackWSSSInputs'),
    ])
    for seed in range(5):
        np.random.seed(seed)
        out = pipeline(dict(img=_image(60, 80, seed), img_id='i',
                            img_labels=[1]))
        assert tuple(out['inputs'].shape) == (3, 64, 64)
        assert out['inputs'].dtype.is_floating_point
