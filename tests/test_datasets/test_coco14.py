"""COCO 2014 -> WSSS converter (``qaclims_mm.datasets.converters.coco14``)."""
import json
import os
import os.path as osp
import re
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as mask_utils

from qaclims_mm.datasets.class_names import (COCO_CATEGORY_IDS, COCO_CLASSES,
                                             coco_palette)
from qaclims_mm.datasets.converters.coco14 import (coco_category_to_index,
                                                   coco_id_to_stem,
                                                   convert_coco14,
                                                   stem_to_coco_id)
from qaclims_mm.datasets.labels_file import load_labels_file

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))

# category id -> (name, expected 0-based index), checked by hand against the
# official COCO 2014 category list (ids 12, 26, 29, 30, 45, 66, 68, 69, 71,
# 83 are unused gaps)
CATS = {
    1: ('person', 0),
    3: ('car', 2),
    44: ('bottle', 39),
    62: ('chair', 56),
    88: ('teddy bear', 77),
    90: ('toothbrush', 79),
}

# train image 9 (40 x 30): a small toothbrush lying on a large person (listed
# first, with the smaller annotation id, so that painting in file order would
# bury it), and a crowd of teddy bears stored as uncompressed RLE
SMALL = (10, 5, 16, 11)  # x0, y0, x1, y1
LARGE = (0, 0, 30, 20)
CROWD = (32, 22, 38, 28)


def _rect_polygon(x0, y0, x1, y1):
    return [[x0, y0, x1, y0, x1, y1, x0, y1]]


def _box_mask(h, w, x0, y0, x1, y1):
    m = np.zeros((h, w), dtype=np.uint8)
    m[y0:y1, x0:x1] = 1
    return m


def _uncompressed_rle(binary):
    """Uncompressed (list-of-counts) RLE, column-major, starting with 0s."""
    flat = binary.flatten(order='F')
    counts, value, run = [], 0, 0
    for v in flat:
        if v == value:
            run += 1
        else:
            counts.append(run)
            value, run = v, 1
    counts.append(run)
    return dict(size=list(binary.shape), counts=[int(c) for c in counts])


def _compressed_rle(binary):
    rle = mask_utils.encode(np.asfortranarray(binary))
    return dict(size=[int(s) for s in rle['size']],
                counts=rle['counts'].decode('ascii'))


def _ann(ann_id, image_id, cat_id, segmentation, area, iscrowd=0):
    return dict(id=ann_id, image_id=image_id, category_id=cat_id,
                segmentation=segmentation, area=float(area), iscrowd=iscrowd,
                bbox=[0, 0, 1, 1])


def _image(split, image_id, w, h):
    return dict(id=image_id, file_name=coco_id_to_stem(split, image_id) +
                '.jpg', width=w, height=h)


def _write_split(root, split, images, anns):
    os.makedirs(osp.join(root, f'{split}2014'), exist_ok=True)
    for img in images:
        Image.new('RGB', (img['width'], img['height']), (90, 120, 30)).save(
            osp.join(root, f'{split}2014', img['file_name']), 'JPEG')
    cats = [
        dict(id=i, name=name, supercategory='x')
        for i, (name, _) in CATS.items()
    ]
    os.makedirs(osp.join(root, 'annotations'), exist_ok=True)
    path = osp.join(root, 'annotations', f'instances_{split}2014.json')
    with open(path, 'w') as f:
        json.dump(dict(images=images, annotations=anns, categories=cats), f)
    return path


def make_fake_coco(root):
    """A 3-image train2014 and a 2-image val2014 with hand-made annotations."""
    train_images = [
        _image('train', 9, 40, 30),
        _image('train', 25, 32, 24),  # no annotation at all
        _image('train', 30, 20, 20),
    ]
    crowd = _box_mask(30, 40, *CROWD)
    train_anns = [
        _ann(1, 9, 90, _rect_polygon(*SMALL), 36),
        _ann(2, 9, 1, _rect_polygon(*LARGE), 600),
        _ann(3, 9, 88, _uncompressed_rle(crowd), crowd.sum(), iscrowd=1),
        _ann(4, 30, 3, _rect_polygon(2, 2, 8, 8), 36),
        _ann(5, 30, 3, _rect_polygon(10, 10, 18, 18), 64),
        _ann(6, 30, 44, _rect_polygon(12, 2, 18, 6), 24),
    ]
    val_images = [_image('val', 42, 24, 16), _image('val', 73, 16, 16)]
    people = _box_mask(16, 24, 0, 8, 24, 16)
    val_anns = [
        _ann(7, 42, 62, _rect_polygon(4, 2, 10, 12), 60),
        _ann(8, 42, 1, _compressed_rle(people), people.sum(), iscrowd=1),
        _ann(9, 73, 44, _rect_polygon(3, 3, 12, 12), 81),
    ]
    _write_split(root, 'train', train_images, train_anns)
    _write_split(root, 'val', val_images, val_anns)
    return root


@pytest.fixture
def coco_root(tmp_path):
    return make_fake_coco(str(tmp_path / 'coco'))


def _read_mask(path):
    png = Image.open(path)
    return png, np.asarray(png)


def _mtimes(folder):
    return {
        osp.join(d, f): os.stat(osp.join(d, f)).st_mtime_ns
        for d, _, files in os.walk(folder) for f in files
    }


def test_stem_and_category_helpers():
    assert coco_id_to_stem('train', 9) == 'COCO_train2014_000000000009'
    assert coco_id_to_stem('val', 581929) == 'COCO_val2014_000000581929'
    assert stem_to_coco_id('COCO_val2014_000000581929') == 581929
    assert stem_to_coco_id('COCO_train2014_000000000009.jpg') == 9
    for cat_id, (name, idx) in CATS.items():
        assert coco_category_to_index(cat_id) == idx
        assert COCO_CLASSES[idx] == name
    assert [coco_category_to_index(c) for c in COCO_CATEGORY_IDS] == list(
        range(80))
    with pytest.raises(ValueError, match=r'img_x.*unknown COCO category id'):
        coco_category_to_index(12, 'img_x')


def test_split_lists_and_labels(coco_root):
    summary = convert_coco14(coco_root, write_masks=False, progress=False)
    out = osp.join(coco_root, 'wsss')
    with open(osp.join(out, 'train.txt')) as f:
        assert f.read().split('\n') == [
            'COCO_train2014_000000000009', 'COCO_train2014_000000000025',
            'COCO_train2014_000000000030', ''
        ]
    with open(osp.join(out, 'val.txt')) as f:
        assert f.read().split() == [
            'COCO_val2014_000000000042', 'COCO_val2014_000000000073'
        ]

    train = load_labels_file(osp.join(out, 'cls_labels_train.json'),
                             classes=COCO_CLASSES)
    # crowd annotations count; duplicates collapse; the empty image is []
    assert train == {
        'COCO_train2014_000000000009': [0, 77, 79],  # person, teddy, brush
        'COCO_train2014_000000000025': [],
        'COCO_train2014_000000000030': [2, 39],  # car (x2), bottle
    }
    val = load_labels_file(osp.join(out, 'cls_labels_val.json'),
                           classes=COCO_CLASSES)
    assert val == {
        'COCO_val2014_000000000042': [0, 56],  # chair + crowd of people
        'COCO_val2014_000000000073': [39],
    }
    with open(osp.join(out, 'cls_labels_train.json')) as f:
        assert json.load(f)['dataset'] == 'coco'

    assert summary['train']['num_images'] == 3
    assert summary['train']['num_annotations'] == 6
    assert summary['train']['num_crowd'] == 1
    assert summary['train']['num_empty'] == 1
    assert summary['train']['empty_images'] == ['COCO_train2014_000000000025']
    assert summary['val']['num_empty'] == 0
    assert summary['train']['mask_dir'] is None
    assert not osp.exists(osp.join(out, 'mask'))


def test_masks(coco_root):
    convert_coco14(coco_root, progress=False)
    mask_dir = osp.join(coco_root, 'wsss', 'mask', 'train2014')
    assert sorted(os.listdir(mask_dir)) == [
        'COCO_train2014_000000000009.png', 'COCO_train2014_000000000025.png',
        'COCO_train2014_000000000030.png'
    ]

    png, m = _read_mask(osp.join(mask_dir, 'COCO_train2014_000000000009.png'))
    assert png.mode == 'P'
    assert png.getpalette()[:81 * 3] == [
        v for rgb in coco_palette(81) for v in rgb
    ]
    assert m.dtype == np.uint8 and m.shape == (30, 40)  # H, W from the JSON
    assert set(np.unique(m)) == {0, 1, 78, 80}
    # the small toothbrush (index 79 -> 80) stays on top of the person (1)
    x0, y0, x1, y1 = SMALL
    assert (m[y0 + 1:y1 - 1, x0 + 1:x1 - 1] == 80).all()
    assert m[2, 2] == 1 and m[15, 25] == 1
    # crowd region: painted with its class (teddy bear 77 -> 78), not 255
    x0, y0, x1, y1 = CROWD
    assert (m[y0:y1, x0:x1] == 78).all()
    assert (m == 78).sum() == (x1 - x0) * (y1 - y0)
    # background
    assert m[25, 5] == 0 and m[29, 39] == 0 and m[0, 35] == 0

    # the image without annotation: all background, at its own size
    png, m = _read_mask(osp.join(mask_dir, 'COCO_train2014_000000000025.png'))
    assert png.mode == 'P' and m.shape == (24, 32) and not m.any()

    # two instances of one class and one of another
    _, m = _read_mask(osp.join(mask_dir, 'COCO_train2014_000000000030.png'))
    assert m.shape == (20, 20) and set(np.unique(m)) == {0, 3, 40}
    assert m[5, 5] == 3 and m[14, 14] == 3 and m[4, 15] == 40 and m[0, 0] == 0

    # val: compressed-RLE crowd of people (1) under a chair (57)
    _, m = _read_mask(
        osp.join(coco_root, 'wsss', 'mask', 'val2014',
                 'COCO_val2014_000000000042.png'))
    assert m.shape == (16, 24)
    assert set(np.unique(m)) == {0, 1, 57}
    assert m[4, 6] == 57 and m[10, 6] == 57  # the chair, on the crowd too
    assert (m[8:, 12:] == 1).all() and (m[13:, :] == 1).all()
    assert m[0, 20] == 0 and m[6, 2] == 0


def test_resume_and_overwrite(coco_root):
    first = convert_coco14(coco_root, progress=False)
    assert first['train']['masks_written'] == 3
    assert first['train']['split_file_written']
    assert first['train']['labels_file_written']
    out = osp.join(coco_root, 'wsss')
    before = _mtimes(out)
    assert len(before) == 3 + 2 + 2 + 2  # masks + split lists + label files

    again = convert_coco14(coco_root, progress=False)
    for split, n in (('train', 3), ('val', 2)):
        assert again[split]['masks_written'] == 0
        assert again[split]['masks_skipped'] == n
        assert not again[split]['split_file_written']
        assert not again[split]['labels_file_written']
    assert _mtimes(out) == before  # nothing rewritten, no temporary left

    # a lost mask is the only one written again
    lost = osp.join(out, 'mask', 'val2014', 'COCO_val2014_000000000073.png')
    os.remove(lost)
    resumed = convert_coco14(coco_root, splits=('val', ), progress=False)
    assert list(resumed) == ['val']
    assert resumed['val']['masks_written'] == 1
    assert resumed['val']['masks_skipped'] == 1
    after = _mtimes(out)
    assert set(after) == set(before)
    assert {p for p in after if after[p] != before[p]} == {lost}

    forced = convert_coco14(coco_root, splits='train', overwrite=True,
                            progress=False)
    assert forced['train']['masks_written'] == 3


def test_worker_pool_matches_in_process(coco_root):
    convert_coco14(coco_root, progress=False)
    convert_coco14(coco_root, out_subdir='wsss_mp', num_workers=2,
                   progress=False)
    for split in ('train', 'val'):
        a = osp.join(coco_root, 'wsss', 'mask', f'{split}2014')
        b = osp.join(coco_root, 'wsss_mp', 'mask', f'{split}2014')
        assert sorted(os.listdir(a)) == sorted(os.listdir(b))
        for name in os.listdir(a):
            np.testing.assert_array_equal(
                _read_mask(osp.join(a, name))[1],
                _read_mask(osp.join(b, name))[1])


def test_unknown_category_names_the_image(coco_root):
    path = osp.join(coco_root, 'annotations', 'instances_train2014.json')
    with open(path) as f:
        data = json.load(f)
    data['annotations'].append(
        _ann(99, 30, 12, _rect_polygon(0, 0, 2, 2), 4))  # 12: an unused gap
    with open(path, 'w') as f:
        json.dump(data, f)
    with pytest.raises(
            ValueError,
            match=r'COCO_train2014_000000000030.*unknown COCO category id 12'):
        convert_coco14(coco_root, splits=('train', ), progress=False)
    # checked before anything is written
    assert not osp.exists(osp.join(coco_root, 'wsss'))


@pytest.mark.parametrize('num_workers', [0, 2])
def test_mask_error_names_the_image(coco_root, num_workers):
    path = osp.join(coco_root, 'annotations', 'instances_val2014.json')
    with open(path) as f:
        data = json.load(f)
    data['annotations'].append(_ann(99, 73, 44, 'not a segmentation', 4))
    with open(path, 'w') as f:
        json.dump(data, f)
    with pytest.raises(Exception, match='COCO_val2014_000000000073'):
        convert_coco14(coco_root, splits=('val', ), num_workers=num_workers,
                       progress=False)
    mask_dir = osp.join(coco_root, 'wsss', 'mask', 'val2014')
    assert not osp.exists(osp.join(mask_dir, 'COCO_val2014_000000000073.png'))
    assert not [f for f in os.listdir(mask_dir) if not f.endswith('.png')]


def test_missing_annotation_file_names_the_path(tmp_path):
    root = str(tmp_path / 'coco')
    os.makedirs(root)
    path = osp.join(root, 'annotations', 'instances_val2014.json')
    with pytest.raises(FileNotFoundError, match=re.escape(path)):
        convert_coco14(root, splits=('val', ), progress=False)


def test_command_line_tool(coco_root):
    proc = subprocess.run(
        [
            sys.executable, 'tools/dataset_converters/coco14_wsss.py',
            coco_root, '--splits', 'val', '--no-masks', '--quiet'
        ],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert '[val] 2 images, 3 annotations (1 crowd), 0 images without labels' \
        in proc.stdout
    assert osp.join(coco_root, 'wsss', 'cls_labels_val.json') in proc.stdout
    assert osp.isfile(osp.join(coco_root, 'wsss', 'val.txt'))
    assert not osp.exists(osp.join(coco_root, 'wsss', 'train.txt'))
    assert not osp.exists(osp.join(coco_root, 'wsss', 'mask'))


def test_loads_with_coco14_wsss_dataset(coco_root):
    import mmseg.datasets  # noqa: F401  (a hard dependency: never skip)
    from qaclims_mm.datasets.wsss_dataset import COCO14WSSSDataset

    convert_coco14(coco_root, progress=False)

    def ids(ds):
        return [ds.get_data_info(i)['img_id'] for i in range(len(ds))]

    train = COCO14WSSSDataset(
        data_root=coco_root, with_seg_map=True, pipeline=[],
        skip_unlabeled=True)
    assert ids(train) == [
        'COCO_train2014_000000000009', 'COCO_train2014_000000000030'
    ]
    info = train.get_data_info(0)
    assert info['img_labels'] == [0, 77, 79]
    assert info['img_path'] == osp.join(coco_root, 'train2014',
                                        'COCO_train2014_000000000009.jpg')
    assert info['seg_map_path'] == osp.join(
        coco_root, 'wsss', 'mask', 'train2014',
        'COCO_train2014_000000000009.png')
    assert osp.isfile(info['img_path']) and osp.isfile(info['seg_map_path'])
    assert train.metainfo['classes'] == ('background', ) + COCO_CLASSES

    full = COCO14WSSSDataset(
        data_root=coco_root, with_seg_map=True, pipeline=[],
        skip_unlabeled=False)
    assert ids(full) == [
        'COCO_train2014_000000000009', 'COCO_train2014_000000000025',
        'COCO_train2014_000000000030'
    ]
    empty = full.get_data_info(1)
    assert empty['img_labels'] == []
    assert empty['seg_map_path'] == osp.join(
        coco_root, 'wsss', 'mask', 'train2014',
        'COCO_train2014_000000000025.png')

    val = COCO14WSSSDataset(
        data_root=coco_root,
        ann_file='wsss/val.txt',
        labels_file='wsss/cls_labels_val.json',
        data_prefix=dict(img_path='val2014', seg_map_path='wsss/mask/val2014'),
        with_seg_map=True,
        pipeline=[])
    assert ids(val) == [
        'COCO_val2014_000000000042', 'COCO_val2014_000000000073'
    ]
    assert [val.get_data_info(i)['img_labels'] for i in range(2)] == [[0, 56],
                                                                     [39]]
    assert val.get_data_info(1)['img_path'] == osp.join(
        coco_root, 'val2014', 'COCO_val2014_000000000073.jpg')
