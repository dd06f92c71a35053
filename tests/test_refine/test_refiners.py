"""Registered refiners, the one threshold-argmax, palettes and metainfo."""
import os.path as osp

import numpy as np
import pytest
import torch
from PIL import Image

from qaclims_mm.datasets.class_names import (COCO_CLASSES, VOC_CLASSES,
                                             VOC_PALETTE, coco_palette)
from qaclims_mm.evaluation.cam_labels import cams_to_label
from qaclims_mm.models.utils.cam_ops import (DEFAULT_CAM_THRESHOLD,
                                             cams_to_seg)
from qaclims_mm.refine.ir_label import make_ir_label, threshold_channels
from qaclims_mm.refine.refiners import (REFINERS,
                                        RandomWalkRefiner, ThresholdRefiner,
                                        build_refiner)
from qaclims_mm.refine.stages import CAMLabelJob, make_pseudo_labels
from qaclims_mm.utils.cam_file import save_cam
from qaclims_mm.utils.label_io import (IGNORE_COLOR, label_colormap,
                                       label_png_palette)
from qaclims_mm.utils.metainfo import dataset_metainfo

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def official_label(cams, keys, threshold):
    """The official recipe: pad a bg plane, numpy argmax, map through keys."""
    padded = np.pad(cams, ((1, 0), (0, 0), (0, 0)), mode='constant',
                    constant_values=threshold)
    return np.concatenate([[0], np.asarray(keys) + 1])[padded.argmax(0)]


def tied_cams(rng, k=3, h=9, w=11):
    cams = rng.random((k, h, w)).astype(np.float32)
    cams[:, 0, :4] = np.float32(0.15)  # ties with the background plane
    cams[1, 1] = cams[0, 1]  # ties between maps
    return cams


def test_one_threshold_argmax_for_numpy_and_torch():
    rng = np.random.default_rng(0)
    for _ in range(5):
        cams, keys = tied_cams(rng), np.array([2, 7, 19])
        ref = official_label(cams, keys, 0.15)
        np.testing.assert_array_equal(cams_to_label(cams, keys, 0.15), ref)
        np.testing.assert_array_equal(
            cams_to_seg(torch.from_numpy(cams), torch.from_numpy(keys),
                        0.15).numpy(), ref)
        np.testing.assert_array_equal(
            threshold_channels(cams, 0.15),
            official_label(cams, np.arange(3), 0.15))
    assert DEFAULT_CAM_THRESHOLD == 0.15
    empty = cams_to_label(np.zeros((0, 4, 5), np.float32), [], 0.15)
    assert empty.shape == (4, 5) and not empty.any()


def test_refiners_are_registered_and_match_the_functions():
    for name in ('ThresholdRefiner', 'CRFRefiner', 'IRLabelRefiner',
                 'RandomWalkRefiner'):
        assert REFINERS.get(name) is not None, name
    rng = np.random.default_rng(1)
    cams, keys = tied_cams(rng), np.array([0, 4, 9])
    cam = dict(keys=keys, high_res=cams)
    thr = build_refiner(dict(type='ThresholdRefiner', threshold=0.3))
    np.testing.assert_array_equal(thr(cam), official_label(cams, keys, 0.3))
    ir = build_refiner(dict(type='IRLabelRefiner', use_crf=False))
    np.testing.assert_array_equal(
        ir(cam), make_ir_label(None, cams, keys, 0.30, 0.10, use_crf=False))
    with pytest.raises(ValueError, match='threshold must lie in'):
        ThresholdRefiner(1.5)
    with pytest.raises(ValueError, match='config and checkpoint'):
        RandomWalkRefiner(irn=dict())
    with pytest.raises(TypeError, match='with a type'):
        build_refiner(dict(threshold=0.1))


def test_palette_has_one_source():
    assert label_colormap(21) == VOC_PALETTE
    assert label_colormap(81) == coco_palette(81)
    assert label_colormap(256)[255] == list(IGNORE_COLOR)
    from qaclims_mm.synthetic.formats import voc_colormap
    assert voc_colormap(256).tolist() == label_colormap(256)
    png = label_png_palette(VOC_PALETTE)
    assert len(png) == 256 and png[:21] == VOC_PALETTE
    assert png[21] == [0, 0, 0] and png[255] == list(IGNORE_COLOR)


def test_metainfo_comes_from_the_dataset():
    import qaclims_mm  # noqa: F401  (registers the datasets)
    voc = dataset_metainfo('VOC12WSSSDataset')
    assert voc['classes'] == ('background', ) + VOC_CLASSES
    assert voc['palette'] == VOC_PALETTE
    coco = dataset_metainfo(
        osp.join(REPO, 'configs/irn/irn_r50_1xb32-3e_coco14-512x512.py'))
    assert coco['classes'] == ('background', ) + COCO_CLASSES
    assert coco['palette'] == coco_palette(81)
    with pytest.raises(ValueError, match='20 classes given'):
        dataset_metainfo('COCO14WSSSDataset', num_classes=20)
    generic = dataset_metainfo(None, num_classes=3)
    assert generic['classes'] == ('background', 'class0', 'class1', 'class2')


def test_make_pseudo_labels_with_a_refiner_config(tmp_path):
    rng = np.random.default_rng(2)
    cam_dir = str(tmp_path / 'cams')
    data = {}
    for i in range(4):
        cams = tied_cams(rng, h=8 + i)
        keys = np.array([1, 3, 17])
        save_cam(osp.join(cam_dir, f'im{i}.npz'), keys, None, cams)
        data[f'im{i}'] = (cams, keys)
    outs = []
    for workers in (0, 2):
        out = str(tmp_path / f'out{workers}')
        result = make_pseudo_labels(
            cam_dir, list(data), out,
            dict(type='ThresholdRefiner', threshold=0.2), workers=workers,
            progress=False)
        assert result.written == 4
        outs.append(out)
    for img_id, (cams, keys) in data.items():
        labels = [np.asarray(Image.open(osp.join(o, img_id + '.png')))
                  for o in outs]
        np.testing.assert_array_equal(labels[0],
                                      official_label(cams, keys, 0.2))
        np.testing.assert_array_equal(labels[0], labels[1])
        # the files the threshold stage has always written: VOC's 21 colours
        with Image.open(osp.join(outs[0], img_id + '.png')) as img:
            assert img.getpalette() == [c for rgb in VOC_PALETTE for c in rgb]


def test_unlabeled_images_need_no_cam_file(tmp_path):
    """Label-less images (COCO) get all background without a CAM file."""

    class SizeOnly(ThresholdRefiner):
        needs_image = True

        def refine(self, cam, img_path, img_id):
            assert cam['keys'].size == 0
            with Image.open(img_path) as img:
                return np.zeros(img.size[::-1], np.uint8)

    Image.fromarray(np.zeros((5, 7, 3), np.uint8)).save(
        str(tmp_path / 'a.jpg'))
    job = CAMLabelJob(str(tmp_path / 'nocams'), SizeOnly(),
                      tuple(map(tuple, label_png_palette(VOC_PALETTE))), 20,
                      str(tmp_path), unlabeled=frozenset({'a'}))
    job.check('a')  # no CAM file needed
    with pytest.raises(FileNotFoundError, match="'b'"):
        job.check('b')
    label = np.asarray(Image.open(__import__('io').BytesIO(job('a'))))
    assert label.shape == (5, 7) and not label.any()


@pytest.mark.parametrize('name', ['voc12aug', 'coco14'])
def test_irn_configs_have_no_ad_hoc_keys(name):
    """The edge pipeline is the standard test_pipeline; the walk's settings
    are RandomWalkRefiner's arguments, not config keys read by convention."""
    from mmengine.config import Config
    cfg = Config.fromfile(
        osp.join(REPO, f'configs/irn/irn_r50_1xb32-3e_{name}-512x512.py'))
    assert 'infer_dataloader' not in cfg and 'random_walk' not in cfg
    assert [t['type'] for t in cfg.test_pipeline] == [
        'LoadImageFromFile', 'PackWSSSInputs']
    refiner = RandomWalkRefiner.__init__.__defaults__
    assert refiner == (5, 10., 8, 0.2, None)  # spec §6.5
