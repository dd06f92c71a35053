"""VOC converter and dataset on the synthetic VOC-format set."""
import json
import os
import os.path as osp
import shutil
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from mmengine.registry import init_default_scope
from PIL import Image

from qaclims_mm.datasets import VOC12WSSSDataset, VOC_CLASSES
from qaclims_mm.datasets.converters.voc12 import convert_voc12, parse_voc_xml
from qaclims_mm.datasets.labels_file import load_labels_file
from qaclims_mm.utils.io import read_split

init_default_scope('mmseg')


def xml_classes(path):
    names = {o.findtext('name') for o in ET.parse(path).getroot().iter('object')}
    return sorted(VOC_CLASSES.index(
        next(c for c in VOC_CLASSES if c.replace(' ', '') == n)) for n in names)


def test_converter_outputs(synthetic_voc_root):
    voc = synthetic_voc_root
    root = osp.dirname(voc)
    split = lambda *p: read_split(osp.join(*p))  # noqa: E731
    train = split(voc, 'ImageSets/Segmentation/train.txt')
    val = split(voc, 'ImageSets/Segmentation/val.txt')
    sbd = split(root, 'SBD/train.txt') + split(root, 'SBD/val.txt')
    train_aug = split(voc, 'ImageSets/Segmentation/train_aug.txt')
    assert train_aug == sorted((set(sbd) | set(train)) - set(val))
    labels = load_labels_file(osp.join(voc, 'cls_labels.json'), VOC_CLASSES)
    assert set(labels) == set(train_aug) | set(train) | set(val)
    for img_id, idx in labels.items():
        assert idx == xml_classes(osp.join(voc, 'Annotations', img_id + '.xml'))
    # masks: VOC's own where present (with its 255 border), SBD's otherwise
    for img_id in train_aug + val:
        mask = np.asarray(Image.open(
            osp.join(voc, 'SegmentationClassAug', img_id + '.png')))
        voc_png = osp.join(voc, 'SegmentationClass', img_id + '.png')
        if osp.isfile(voc_png):
            np.testing.assert_array_equal(mask, np.asarray(Image.open(voc_png)))
        present = sorted(int(v) - 1 for v in np.unique(mask) if 0 < v < 255)
        assert present == labels[img_id]


def test_converter_is_resumable(synthetic_voc_root, tmp_path):
    voc = str(tmp_path / 'VOC2012')
    shutil.copytree(synthetic_voc_root, voc)
    sbd = osp.join(osp.dirname(synthetic_voc_root), 'SBD')
    summary = convert_voc12(voc, sbd_root=sbd, progress=False)
    assert summary['masks_written'] == 0  # everything already there
    some = read_split(osp.join(voc, 'ImageSets/Segmentation/train_aug.txt'))[0]
    (tmp_path / 'VOC2012' / 'SegmentationClassAug' / (some + '.png')).unlink()
    assert convert_voc12(voc, sbd_root=sbd,
                         progress=False)['masks_written'] == 1


def test_converter_second_run_writes_no_mask(synthetic_voc_root, tmp_path):
    voc = str(tmp_path / 'VOC2012')
    shutil.copytree(synthetic_voc_root, voc)
    sbd = osp.join(osp.dirname(synthetic_voc_root), 'SBD')
    mask_dir = osp.join(voc, 'SegmentationClassAug')
    before = {f: os.stat(osp.join(mask_dir, f)).st_mtime_ns
              for f in os.listdir(mask_dir)}
    assert convert_voc12(voc, sbd_root=sbd,
                         progress=False)['masks_written'] == 0
    assert {f: os.stat(osp.join(mask_dir, f)).st_mtime_ns
            for f in os.listdir(mask_dir)} == before


def test_converter_missing_mask_names_the_image(synthetic_voc_root, tmp_path):
    voc = str(tmp_path / 'VOC2012')
    shutil.copytree(synthetic_voc_root, voc)
    sbd = str(tmp_path / 'SBD')
    shutil.copytree(osp.join(osp.dirname(synthetic_voc_root), 'SBD'), sbd)
    train_aug = read_split(osp.join(voc, 'ImageSets/Segmentation/train_aug.txt'))
    lost = next(i for i in train_aug if not osp.isfile(
        osp.join(voc, 'SegmentationClass', i + '.png')))
    os.remove(osp.join(sbd, 'cls', lost + '.mat'))
    shutil.rmtree(osp.join(voc, 'SegmentationClassAug'))
    with pytest.raises(FileNotFoundError, match=repr(lost)):
        convert_voc12(voc, sbd_root=sbd, progress=False)
    # checked before any mask is written
    assert not osp.exists(osp.join(voc, 'SegmentationClassAug'))


def test_dataset_ids_labels_and_masks(synthetic_voc_root):
    ds = VOC12WSSSDataset(data_root=synthetic_voc_root, pipeline=[])
    train_aug = read_split(osp.join(synthetic_voc_root,
                                    'ImageSets/Segmentation/train_aug.txt'))
    assert len(ds) == len(train_aug)
    labels = json.load(open(osp.join(synthetic_voc_root,
                                     'cls_labels.json')))['labels']
    info = ds.get_data_info(0)
    assert info['img_id'] == train_aug[0]
    assert info['img_labels'] == labels[train_aug[0]]
    assert 'seg_map_path' not in info  # no masks at training time
    assert ds.metainfo['classes'][0] == 'background'
    assert len(ds.metainfo['classes']) == 21

    ev = VOC12WSSSDataset(data_root=synthetic_voc_root,
                          ann_file='ImageSets/Segmentation/train.txt',
                          with_seg_map=True, pipeline=[
                              dict(type='LoadImageFromFile'),
                              dict(type='LoadAnnotations'),
                              dict(type='PackWSSSInputs')])
    out = ev[0]
    sample = out['data_samples']
    assert sample.img_id == ev.get_data_info(0)['img_id']
    gt = sample.gt_sem_seg.data[0].numpy()
    present = sorted(int(v) - 1 for v in np.unique(gt) if 0 < v < 255)
    assert present == sample.img_labels
    assert tuple(out['inputs'].shape[1:]) == gt.shape


@pytest.fixture
def voc_copy(synthetic_voc_root, tmp_path):
    voc = str(tmp_path / 'VOC2012')
    shutil.copytree(synthetic_voc_root, voc)
    return voc


def test_missing_image_is_named(voc_copy):
    img_id = read_split(osp.join(voc_copy,
                                 'ImageSets/Segmentation/train_aug.txt'))[3]
    path = osp.join(voc_copy, 'JPEGImages', img_id + '.jpg')
    shutil.os.remove(path)
    with pytest.raises(FileNotFoundError, match=img_id):
        VOC12WSSSDataset(data_root=voc_copy, pipeline=[])


def test_missing_folder_and_labels_are_named(voc_copy, tmp_path):
    with pytest.raises(FileNotFoundError, match='JPEGImages'):
        VOC12WSSSDataset(data_root=str(tmp_path / 'nowhere'),
                         ann_file=osp.join(voc_copy, 'ImageSets/Segmentation/'
                                           'train.txt'), pipeline=[])
    with pytest.raises(FileNotFoundError, match='missing.json'):
        VOC12WSSSDataset(data_root=voc_copy, labels_file='missing.json',
                         pipeline=[])
    split = osp.join(voc_copy, 'extra.txt')
    with open(split, 'w') as f:
        f.write('2099_999999\n')
    with pytest.raises(KeyError, match='2099_999999'):
        VOC12WSSSDataset(data_root=voc_copy, ann_file='extra.txt', pipeline=[])


def test_unreadable_image_is_named(voc_copy):
    ds = VOC12WSSSDataset(data_root=voc_copy, pipeline=[
        dict(type='LoadImageFromFile'), dict(type='PackWSSSInputs')])
    path = ds.get_data_info(0)['img_path']
    with open(path, 'wb') as f:
        f.write(b'not a jpeg')
    with pytest.raises(Exception, match=osp.basename(path)):
        ds[0]


def _write_xml(path, names):
    objs = ''.join(f'<object><name>{n}</name></object>' for n in names)
    with open(path, 'w') as f:
        f.write(f'<annotation><filename>x.jpg</filename>{objs}</annotation>')


def test_xml_errors(tmp_path):
    p = str(tmp_path / 'a.xml')
    _write_xml(p, [])
    with pytest.raises(ValueError, match='a.xml.*no <object>'):
        parse_voc_xml(p)
    _write_xml(p, ['person', 'unicorn'])
    with pytest.raises(ValueError, match="a.xml.*'unicorn'"):
        parse_voc_xml(p)
    _write_xml(p, ['diningtable', 'person', 'person'])
    assert parse_voc_xml(p) == [10, 14]
    with open(p, 'w') as f:
        f.write('<annotation>')
    with pytest.raises(ValueError, match='malformed'):
        parse_voc_xml(p)


def test_converter_stops_on_bad_xml(voc_copy):
    img_id = read_split(osp.join(voc_copy,
                                 'ImageSets/Segmentation/train.txt'))[0]
    _write_xml(osp.join(voc_copy, 'Annotations', img_id + '.xml'), [])
    with pytest.raises(ValueError, match=img_id):
        convert_voc12(voc_copy, progress=False)


def test_official_cls_labels_npy(tmp_path):
    vec = np.zeros(20, np.float32)
    vec[[0, 14]] = 1
    path = str(tmp_path / 'cls_labels.npy')
    np.save(path, {2007000032: vec})
    # a pickle: read only on explicit opt-in (tests/test_utils covers refusal)
    assert load_labels_file(path, VOC_CLASSES, trust_pickle=True) == \
        {'2007_000032': [0, 14]}


def test_json_labels_are_sorted_and_unique(tmp_path):
    """The pair order of RITC relies on sorted labels."""
    import json
    path = str(tmp_path / 'labels.json')
    with open(path, 'w') as f:
        json.dump(dict(version=1, dataset='voc', classes=list(VOC_CLASSES),
                       labels={'a': [14, 0, 14]}), f)
    assert load_labels_file(path, VOC_CLASSES) == {'a': [0, 14]}
