import filecmp
import hashlib
import importlib.util
import os
import os.path as osp
import re
import xml.etree.ElementTree as ET

import cv2
import numpy as np
import pytest
import scipy.io
from PIL import Image

from qaclims_mm.datasets.class_names import (VOC_CLASSES, VOC_PALETTE,
                                             VOC_XML_NAMES)
from qaclims_mm.synthetic import (CLASS_STYLES, CONTEXTS, GENERATOR_VERSION,
                                  IGNORE_INDEX, PRESETS, encode_label_png,
                                  make_synthetic_voc, preset_args,
                                  render_synthetic_image)

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
SMALL = dict(num_train=8, num_val=4, num_aug=8, min_long=64, max_long=96,
             progress=False)


def read_ids(path):
    with open(path) as f:
        return [line.strip() for line in f if line.strip()]


def stems(folder, ext):
    return {f[:-len(ext)] for f in os.listdir(folder) if f.endswith(ext)}


def xml_objects(path):
    root = ET.parse(path).getroot()
    objects = []
    for obj in root.findall('object'):
        box = obj.find('bndbox')
        objects.append((obj.find('name').text,
                        tuple(int(box.find(k).text)
                              for k in ('xmin', 'ymin', 'xmax', 'ymax'))))
    return root, objects


def load_sbd_mask(path):
    gt = scipy.io.loadmat(path)['GTcls']
    return gt['Segmentation'][0][0], gt['CategoriesPresent'][0][0]


@pytest.fixture(scope='module')
def dataset(tmp_path_factory):
    out_dir = str(tmp_path_factory.mktemp('synthetic_voc'))
    return make_synthetic_voc(out_dir, seed=3, **SMALL)


def test_layout_and_splits(dataset):
    voc, sbd = dataset['voc_root'], dataset['sbd_root']
    train, val, aug = dataset['train_ids'], dataset['val_ids'], dataset[
        'aug_ids']
    assert (len(train), len(val), len(aug)) == (8, 4, 8)
    all_ids = set(train) | set(val) | set(aug)
    assert len(all_ids) == 20 == dataset['num_images']
    assert all(re.fullmatch(r'20(0[7-9]|1[0-2])_\d{6}', i) for i in all_ids)

    seg_sets = osp.join(voc, 'ImageSets', 'Segmentation')
    assert read_ids(osp.join(seg_sets, 'train.txt')) == train
    assert read_ids(osp.join(seg_sets, 'val.txt')) == val
    trainval = set(read_ids(osp.join(seg_sets, 'trainval.txt')))
    assert trainval == set(train) | set(val)
    assert not set(train) & set(val)
    main_sets = osp.join(voc, 'ImageSets', 'Main')
    main_train = set(read_ids(osp.join(main_sets, 'train.txt')))
    main_val = set(read_ids(osp.join(main_sets, 'val.txt')))
    assert not main_train & main_val
    assert set(read_ids(osp.join(main_sets, 'trainval.txt'))) == all_ids
    assert main_train | main_val == all_ids

    # every image has a JPEG and an XML; masks exist for exactly their splits
    assert stems(osp.join(voc, 'JPEGImages'), '.jpg') == all_ids
    assert stems(osp.join(voc, 'Annotations'), '.xml') == all_ids
    assert stems(osp.join(voc, 'SegmentationClass'), '.png') == set(
        train) | set(val)
    sbd_train = read_ids(osp.join(sbd, 'train.txt'))
    sbd_val = read_ids(osp.join(sbd, 'val.txt'))
    assert sbd_train == dataset['sbd_train_ids']
    assert sbd_val == dataset['sbd_val_ids']
    assert not set(sbd_train) & set(sbd_val)
    assert set(sbd_train) | set(sbd_val) == set(train) | set(aug)
    assert not (set(sbd_train) | set(sbd_val)) & set(val)
    assert len(sbd_val) == 1 + 1  # every 5th image of train (8) and aug (8)
    assert stems(osp.join(sbd, 'cls'), '.mat') == set(train) | set(aug)
    for image_id in set(train) | set(aug):  # SBD images are the same JPEGs
        assert filecmp.cmp(
            osp.join(sbd, 'img', f'{image_id}.jpg'),
            osp.join(voc, 'JPEGImages', f'{image_id}.jpg'), shallow=False)
    assert set(dataset['contexts']) == all_ids
    assert set(dataset['contexts'].values()) <= set(CONTEXTS)


def test_xml_matches_masks(dataset):
    voc, sbd = dataset['voc_root'], dataset['sbd_root']
    segmented = set(dataset['train_ids']) | set(dataset['val_ids'])
    sbd_ids = set(dataset['sbd_train_ids']) | set(dataset['sbd_val_ids'])
    for image_id in sorted(dataset['contexts']):
        root, objects = xml_objects(
            osp.join(voc, 'Annotations', f'{image_id}.xml'))
        assert root.find('folder').text == 'VOC2012'
        assert root.find('filename').text == f'{image_id}.jpg'
        w, h = Image.open(osp.join(voc, 'JPEGImages', f'{image_id}.jpg')).size
        assert int(root.find('size/width').text) == w
        assert int(root.find('size/height').text) == h
        assert root.find('size/depth').text == '3'
        assert root.find('segmented').text == str(int(image_id in segmented))
        assert objects, f'{image_id} has no object'
        names = [name for name, _ in objects]
        assert set(names) <= set(VOC_XML_NAMES)
        xml_classes = {VOC_XML_NAMES.index(n) + 1 for n in names}
        assert tuple(sorted(c - 1 for c in xml_classes)) == dataset['labels'][
            image_id]
        for _, (xmin, ymin, xmax, ymax) in objects:  # 1-based, inside image
            assert 1 <= xmin <= xmax <= w and 1 <= ymin <= ymax <= h

        masks = []
        if image_id in segmented:
            png = np.array(Image.open(
                osp.join(voc, 'SegmentationClass', f'{image_id}.png')))
            assert png.shape == (h, w)
            assert set(np.unique(png)) - {0, IGNORE_INDEX} == xml_classes
            masks.append(png)
        if image_id in sbd_ids:
            seg, present = load_sbd_mask(osp.join(sbd, 'cls',
                                                  f'{image_id}.mat'))
            assert seg.shape == (h, w) and seg.dtype == np.uint8
            assert set(np.unique(seg)) - {0} == xml_classes  # no void in SBD
            assert present.shape == (len(xml_classes), 1)
            assert set(present[:, 0]) == xml_classes
            masks.append(seg)
        for mask in masks:  # class pixels lie inside that class's boxes
            for c in xml_classes:
                inside = np.zeros((h, w), bool)
                for name, (xmin, ymin, xmax, ymax) in objects:
                    if VOC_XML_NAMES.index(name) + 1 == c:
                        inside[ymin - 1:ymax, xmin - 1:xmax] = True
                assert not ((mask == c) & ~inside).any()
        if len(masks) == 2:  # VOC train: PNG = SBD mask outside the void
            png, seg = masks
            keep = png != IGNORE_INDEX
            np.testing.assert_array_equal(png[keep], seg[keep])


def test_png_palette_and_void_border(dataset):
    voc, sbd = dataset['voc_root'], dataset['sbd_root']
    for image_id in dataset['train_ids']:
        png = Image.open(osp.join(voc, 'SegmentationClass', f'{image_id}.png'))
        assert png.mode == 'P'
        palette = np.array(png.getpalette()).reshape(-1, 3)
        assert len(palette) == 256
        assert palette[:21].tolist() == VOC_PALETTE
        assert palette[255].tolist() == [224, 224, 192]
        labels = np.array(png)
        void = labels == IGNORE_INDEX
        assert void.any()
        seg, _ = load_sbd_mask(osp.join(sbd, 'cls', f'{image_id}.mat'))
        # the void band hugs the object outlines: within 1 px of an object,
        # and every object/background edge of the SBD mask is void
        near_object = cv2.dilate((seg > 0).astype(np.uint8),
                                 np.ones((3, 3), np.uint8)).astype(bool)
        assert not (void & ~near_object).any()
        edge = seg[:, 1:] != seg[:, :-1]
        assert void[:, 1:][edge].all() and void[:, :-1][edge].all()
        # the band is thin: most object pixels stay labelled
        assert ((labels > 0) & ~void).sum() > 0.5 * (seg > 0).sum()


def test_mask_matches_drawn_pixels():
    for k in range(20):
        sample = render_synthetic_image(np.random.default_rng([5, k]), 64, 96)
        fg = sample.class_map > 0
        np.testing.assert_array_equal(sample.image[~fg],
                                      sample.background[~fg])
        changed = (sample.image != sample.background).any(-1)
        assert changed[fg].mean() > 0.9  # the objects are painted over fg
        for obj in sample.objects:
            xmin, ymin, xmax, ymax = obj.bbox
            box = sample.class_map[ymin - 1:ymax, xmin - 1:xmax]
            assert (box == obj.class_index + 1).sum() >= obj.visible_pixels > 0
        for cls in sample.labels:
            assert (sample.class_map == cls + 1).sum() == sum(
                o.visible_pixels for o in sample.objects
                if o.class_index == cls)
        seg = sample.seg_map
        keep = seg != IGNORE_INDEX
        np.testing.assert_array_equal(seg[keep], sample.class_map[keep])


def test_deterministic(tmp_path):
    args = dict(num_train=3, num_val=2, num_aug=2, min_long=64, max_long=80,
                progress=False)
    a = make_synthetic_voc(str(tmp_path / 'a'), seed=7, **args)
    b = make_synthetic_voc(str(tmp_path / 'b'), seed=7, **args)
    c = make_synthetic_voc(str(tmp_path / 'c'), seed=8, **args)
    assert a['train_ids'] == b['train_ids'] == c['train_ids']

    def files(root):
        return sorted(
            osp.relpath(osp.join(d, f), root) for d, _, fs in os.walk(root)
            for f in fs)

    assert files(str(tmp_path / 'a')) == files(str(tmp_path / 'b'))
    for rel in files(str(tmp_path / 'a')):
        assert filecmp.cmp(str(tmp_path / 'a' / rel),
                           str(tmp_path / 'b' / rel), shallow=False), rel
    image_id = a['train_ids'][0]
    for rel in (f'VOC2012/JPEGImages/{image_id}.jpg',
                f'VOC2012/SegmentationClass/{image_id}.png',
                f'SBD/cls/{image_id}.mat'):
        assert not filecmp.cmp(str(tmp_path / 'a' / rel),
                               str(tmp_path / 'c' / rel), shallow=False), rel

    # an image does not depend on how many images the other splits hold
    d = make_synthetic_voc(str(tmp_path / 'd'), seed=7, num_train=5,
                           num_val=1, num_aug=0, min_long=64, max_long=80,
                           progress=False)
    assert set(a['train_ids']) < set(d['train_ids'])
    for image_id in a['train_ids']:
        rel = f'VOC2012/JPEGImages/{image_id}.jpg'
        assert filecmp.cmp(str(tmp_path / 'a' / rel),
                           str(tmp_path / 'd' / rel), shallow=False)


def test_class_styles_are_distinct():
    assert len(CLASS_STYLES) == len(VOC_CLASSES)
    assert len({s.shape for s in CLASS_STYLES}) == len(CLASS_STYLES)
    looks = {(s.colour, s.texture) for s in CLASS_STYLES}
    assert len(looks) == len(CLASS_STYLES)


def test_class_correlated_context():
    boat, cow = VOC_CLASSES.index('boat'), VOC_CLASSES.index('cow')
    contexts = {boat: [], cow: []}
    blueness = {boat: [], cow: []}
    num_classes = []
    for k in range(600):
        sample = render_synthetic_image(
            np.random.default_rng([11, k]), 48, 48, max_objects=3)
        num_classes.append(len(sample.labels))
        for cls in (boat, cow):
            if sample.labels == (cls, ):
                contexts[cls].append(sample.context)
                bg = sample.image[sample.class_map == 0].astype(float)
                blueness[cls].append(bg[:, 2].mean() - bg[:, 0].mean())
    assert len(contexts[boat]) >= 10 and len(contexts[cow]) >= 10
    assert np.mean([c == 'water' for c in contexts[boat]]) > 0.6
    assert np.mean([c == 'grass' for c in contexts[cow]]) > 0.6
    # the scene shows in the pixels: boat backgrounds are bluer than cow ones
    assert np.mean(blueness[boat]) > np.mean(blueness[cow]) + 30
    # VOC-like label counts: mostly one class, some two or three
    counts = np.bincount(num_classes, minlength=4)[1:] / len(num_classes)
    assert 0.5 < counts[0] < 0.75 and counts[1] > 0.15 and counts[2] > 0.03


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match='num_train'):
        make_synthetic_voc(str(tmp_path / 'x'), num_train=0, progress=False)
    with pytest.raises(ValueError, match='min_long'):
        make_synthetic_voc(str(tmp_path / 'x'), min_long=130, max_long=128,
                           progress=False)
    with pytest.raises(ValueError, match='seed'):
        make_synthetic_voc(str(tmp_path / 'x'), seed=-1, progress=False)
    assert not (tmp_path / 'x').exists()  # nothing written on a bad call


def test_overwrite(tmp_path):
    out_dir = tmp_path / 'out'
    out_dir.mkdir()
    (out_dir / 'keep.txt').write_text('user file')
    args = dict(num_train=2, num_val=1, num_aug=1, min_long=48, max_long=64,
                progress=False)
    with pytest.raises(FileExistsError, match=re.escape(str(out_dir))):
        make_synthetic_voc(str(out_dir), **args)
    first = make_synthetic_voc(str(out_dir), overwrite=True, **args)
    stale = out_dir / 'VOC2012' / 'JPEGImages' / 'stale.jpg'
    stale.write_bytes(b'x')
    jpg = out_dir / 'VOC2012' / 'JPEGImages' / f'{first["train_ids"][0]}.jpg'
    before = jpg.read_bytes()
    make_synthetic_voc(str(out_dir), overwrite=True, **args)
    assert not stale.exists()  # regenerated from scratch
    assert jpg.read_bytes() == before
    assert (out_dir / 'keep.txt').read_text() == 'user file'


def test_command_line_tool(tmp_path):
    path = osp.join(REPO_ROOT, 'tools', 'dataset_converters',
                    'make_synthetic_voc.py')
    spec = importlib.util.spec_from_file_location('make_synthetic_voc_tool',
                                                  path)
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)

    args = tool.parse_args(['--preset', 'demo', '--num-train', '5'])
    assert (args.num_train, args.num_val, args.num_aug) == (5, 60, 240)
    assert (args.min_long, args.max_long) == (160, 224)
    assert tool.parse_args([]).out_dir == 'data/synthetic_voc'

    out_dir = str(tmp_path / 'cli')
    argv = ['--out-dir', out_dir, '--num-train', '2', '--num-val', '1',
            '--num-aug', '1', '--min-long', '48', '--max-long', '56',
            '--no-progress']
    summary = tool.main(argv)
    assert len(summary['train_ids']) == 2
    assert osp.isfile(osp.join(out_dir, 'VOC2012', 'ImageSets', 'Segmentation',
                               'val.txt'))
    with pytest.raises(FileExistsError, match=re.escape(out_dir)):
        tool.main(argv)
    tool.main(argv + ['--overwrite'])


def test_rendering_is_pinned():
    """Images, labels, objects and label PNGs equal those of the generator
    before it was split into :mod:`qaclims_mm.synthetic` (sha256 of six
    images drawn with up to four objects on 64-160 px)."""
    digest = hashlib.sha256()
    for seed in range(6):
        sample = render_synthetic_image(np.random.default_rng([seed, 1, 7]),
                                        64, 160, 4)
        for array in (sample.image, sample.background, sample.class_map,
                      sample.seg_map):
            digest.update(np.ascontiguousarray(array).tobytes())
        digest.update(repr([(o.class_index, o.bbox, o.truncated,
                             o.visible_pixels)
                            for o in sample.objects]).encode())
        digest.update(sample.context.encode())
        digest.update(encode_label_png(sample.seg_map))
    # a change of the rendering changes this hash: bump GENERATOR_VERSION
    # (cached world models are keyed by it) and pin the pair anew
    assert (GENERATOR_VERSION, digest.hexdigest()) == (
        1, '22996255f1f9cd2df1ec42acb20e02525262d5dba29cf307c9bcda56dc546442')


def test_presets():
    assert preset_args('test') == dict(num_train=24, num_val=12, num_aug=24,
                                       min_long=96, max_long=128)
    assert preset_args('demo')['num_train'] == 240
    args = preset_args('test')
    args['num_train'] = 1  # a copy: the preset is unchanged
    assert PRESETS['test']['num_train'] == 24
    with pytest.raises(KeyError, match="'huge'.*demo"):
        preset_args('huge')
