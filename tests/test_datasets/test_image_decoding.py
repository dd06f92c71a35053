"""Images are decoded with the EXIF orientation ignored, in every stage."""
import glob
import os.path as osp
from unittest import mock

import mmcv
import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmseg.registry import TRANSFORMS
from PIL import Image

import qaclims_mm  # noqa: F401
from qaclims_mm.structures.image_decoding import (IMAGE_COLOR_TYPE,
                                                ORIENTATION_FREE_COLOR_TYPES,
                                                read_image)

init_default_scope('mmseg')

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
STORED_HW = (24, 40)  # as stored in the file; the tag says "rotate 90"


def stored_pixels() -> np.ndarray:
    """Four flat colour blocks (JPEG keeps them nearly exact), RGB."""
    img = np.zeros(STORED_HW + (3, ), np.uint8)
    img[:12, :20] = (250, 10, 10)
    img[:12, 20:] = (10, 250, 10)
    img[12:, :20] = (10, 10, 250)
    img[12:, 20:] = (240, 240, 20)
    return img


@pytest.fixture(scope='module')
def exif_jpeg(tmp_path_factory) -> str:
    """A JPEG whose EXIF Orientation tag is 6 (display rotated 90 degrees)."""
    path = str(tmp_path_factory.mktemp('exif') / 'rotated.jpg')
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(stored_pixels()).save(path, quality=95, exif=exif)
    with Image.open(path) as img:
        assert img.getexif()[0x0112] == 6
    # the tag is effective: mmcv's default decode rotates the image
    assert mmcv.imread(path).shape[:2] == STORED_HW[::-1]
    return path


def assert_stored(image_rgb: np.ndarray) -> None:
    assert image_rgb.shape == STORED_HW + (3, )
    # block centres keep their colour (JPEG blurs only the block edges)
    centres = (slice(3, 9), slice(15, 21)), (slice(5, 15), slice(25, 35))
    for rows in centres[0]:
        for cols in centres[1]:
            diff = np.abs(image_rgb[rows, cols].astype(int) -
                          stored_pixels()[rows, cols].astype(int))
            assert diff.max() < 12, (rows, cols, diff.max())


def load_image_transforms(node, found):
    """Every ``LoadImageFromFile`` dict anywhere in a config."""
    if isinstance(node, dict):
        if node.get('type') == 'LoadImageFromFile':
            found.append(dict(node))
        for value in node.values():
            load_image_transforms(value, found)
    elif isinstance(node, (list, tuple)):
        for value in node:
            load_image_transforms(value, found)
    return found


CONFIGS = sorted(
    p for p in glob.glob(osp.join(REPO, 'configs', '**', '*.py'),
                         recursive=True)
    # pipeline configs hold stages, not data pipelines
    if '_base_' not in p and osp.sep + 'pipelines' + osp.sep not in p)


@pytest.mark.parametrize('config', CONFIGS,
                         ids=[osp.basename(p) for p in CONFIGS])
def test_every_config_decodes_without_orientation(config, exif_jpeg):
    cfg = Config.fromfile(config)
    found = load_image_transforms(cfg.to_dict(), [])
    if not found:
        pytest.skip('no image loading in this config')
    for spec in found:
        assert spec.get('color_type') in ORIENTATION_FREE_COLOR_TYPES, spec
        out = TRANSFORMS.build(spec)(dict(img_path=exif_jpeg))
        assert_stored(out['img'][..., ::-1])  # BGR -> RGB


def test_direct_reads_agree_with_the_pipeline(exif_jpeg):
    from qaclims_mm.refine.ir_label import read_rgb
    load = TRANSFORMS.build(
        dict(type='LoadImageFromFile', color_type=IMAGE_COLOR_TYPE))
    pipeline = load(dict(img_path=exif_jpeg))['img'][..., ::-1]
    ir_label_image = read_rgb(exif_jpeg)  # the IR-label step (PIL)
    crf_image = read_image(exif_jpeg)  # DeepLab CRF, CAM overlays
    for image in (pipeline, ir_label_image, crf_image):
        assert_stored(image)
    np.testing.assert_array_equal(crf_image, pipeline)
    np.testing.assert_array_equal(read_image(exif_jpeg, 'bgr'),
                                  crf_image[..., ::-1])


def test_dense_crf_reads_the_stored_orientation(exif_jpeg):
    from qaclims_mm.models.segmentors.msc_encoder_decoder import \
        dense_crf_labels
    probs = torch.full((2, ) + STORED_HW, 0.5)
    labels = dense_crf_labels(exif_jpeg, probs, dict(n_iters=1))
    assert labels.shape == (1, ) + STORED_HW


def test_read_image_names_bad_files(tmp_path):
    with pytest.raises(FileNotFoundError, match='nope.jpg'):
        read_image(str(tmp_path / 'nope.jpg'))
    bad = tmp_path / 'bad.jpg'
    bad.write_bytes(b'not an image')
    with pytest.raises(ValueError, match='bad.jpg'):
        read_image(str(bad))


def test_dataset_warns_about_orientation_applying_decoders(synthetic_voc_root):
    from qaclims_mm.datasets import wsss_dataset
    with mock.patch.object(wsss_dataset, 'print_log') as log:
        wsss_dataset.VOC12WSSSDataset(
            data_root=synthetic_voc_root,
            pipeline=[dict(type='LoadImageFromFile')])
    assert any('EXIF orientation' in c.args[0] for c in log.call_args_list)
    with mock.patch.object(wsss_dataset, 'print_log') as log:
        wsss_dataset.VOC12WSSSDataset(
            data_root=synthetic_voc_root,
            pipeline=[dict(type='LoadImageFromFile',
                           color_type=IMAGE_COLOR_TYPE)])
    assert not log.call_args_list


# ------------------------------------ tools/test.py --show / --show-dir
def drawn_image(hook, exif_jpeg) -> np.ndarray:
    """The image a visualization hook hands to the visualizer."""
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample
    sample = SegDataSample(metainfo=dict(img_path=exif_jpeg,
                                         ori_shape=STORED_HW))
    sample.pred_sem_seg = PixelData(
        data=torch.zeros((1, ) + STORED_HW, dtype=torch.long))
    with mock.patch.object(hook._visualizer, 'add_datasample') as add:
        hook.after_test_iter(mock.Mock(iter=0), 0, {}, [sample])
    (name, image), kwargs = add.call_args
    assert name == 'test_rotated.jpg' and kwargs['data_sample'] is sample
    return image


@pytest.mark.parametrize('config', CONFIGS,
                         ids=[osp.basename(p) for p in CONFIGS])
def test_show_dir_paints_on_the_stored_orientation(config, exif_jpeg,
                                                   tmp_path):
    """The visualization hook of every config (what tools/test.py --show-dir
    turns on) reads the image as the pipeline does."""
    from mmengine.registry import HOOKS
    from mmengine.visualization import Visualizer
    cfg = Config.fromfile(config)
    spec = dict(cfg.default_hooks.visualization, draw=True, interval=1)
    Visualizer.get_instance(
        f'vis_{osp.basename(config)}', vis_backends=[
            dict(type='LocalVisBackend')
        ], save_dir=str(tmp_path))
    hook = HOOKS.build(spec)
    assert_stored(drawn_image(hook, exif_jpeg))


def test_visualization_hook_with_a_file_backend(exif_jpeg, tmp_path):
    from mmengine.visualization import Visualizer

    from qaclims_mm.engine.hooks import WSSSVisualizationHook
    Visualizer.get_instance('vis_backend_args', save_dir=str(tmp_path))
    hook = WSSSVisualizationHook(draw=True, interval=1,
                                 backend_args=dict(backend='local'))
    image = drawn_image(hook, exif_jpeg)
    assert_stored(image)
    np.testing.assert_array_equal(image, read_image(exif_jpeg, 'rgb'))
