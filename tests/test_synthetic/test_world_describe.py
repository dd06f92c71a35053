"""The side file of the synthetic world (``make_synthetic_voc(describe=True)``)."""
import filecmp
import json
import os
import os.path as osp
import xml.etree.ElementTree as ET

import numpy as np

from qaclims_mm.datasets.class_names import VOC_CLASSES, VOC_XML_NAMES
from qaclims_mm.synthetic import (CONTEXTS, DESCRIPTIONS_FILE,
                                  make_synthetic_voc, read_descriptions)
from qaclims_mm.synthetic.describe import (SCENE_WORDS, colour_name,
                                           position_word)

ARGS = dict(num_train=4, num_val=2, num_aug=3, min_long=64, max_long=80,
            seed=5, progress=False)


def _files(root):
    return sorted(
        osp.relpath(osp.join(d, f), root) for d, _, fs in os.walk(root)
        for f in fs)


def test_side_file_matches_images_and_changes_nothing(tmp_path):
    plain = make_synthetic_voc(str(tmp_path / 'plain'), **ARGS)
    desc = make_synthetic_voc(str(tmp_path / 'desc'), describe=True, **ARGS)
    # the VOC / SBD files are byte-identical with and without describing
    files = _files(str(tmp_path / 'plain'))
    assert files == [f for f in _files(str(tmp_path / 'desc'))
                     if f != DESCRIPTIONS_FILE]
    for rel in files:
        assert filecmp.cmp(str(tmp_path / 'plain' / rel),
                           str(tmp_path / 'desc' / rel), shallow=False), rel
    assert DESCRIPTIONS_FILE not in files
    assert desc['descriptions'] == osp.join(str(tmp_path / 'desc'),
                                            DESCRIPTIONS_FILE)

    records = read_descriptions(desc['descriptions'])
    ids = sorted(plain['train_ids'] + plain['val_ids'] + plain['aug_ids'])
    assert [r['id'] for r in records] == ids
    for r in records:
        assert r['scene'] == plain['contexts'][r['id']] and r['scene'] in \
            CONTEXTS
        assert r['scene_words'] == list(SCENE_WORDS[r['scene']])
        root = ET.parse(str(tmp_path / 'desc' / 'VOC2012' / 'Annotations' /
                            f"{r['id']}.xml")).getroot()
        xml = [(o.find('name').text,
                [int(o.find('bndbox').find(k).text)
                 for k in ('xmin', 'ymin', 'xmax', 'ymax')])
               for o in root.findall('object')]
        assert [(VOC_XML_NAMES[VOC_CLASSES.index(o['class'])], o['bbox'])
                for o in r['objects']] == xml
        assert sorted({VOC_CLASSES.index(o['class'])
                       for o in r['objects']}) == list(
                           plain['labels'][r['id']])
        for o in r['objects']:
            assert o['position'] in ('left', 'right', 'top', 'bottom',
                                     'center')
            assert o['visible_pixels'] > 0
    boats = [o for r in records for o in r['objects'] if o['class'] == 'boat']
    for o in boats:
        assert (o['colour'], o['colour2'], o['colours'], o['texture']) == (
            'white', 'red', 'white and red', 'bicolour')
    # one JSON object per line, sorted keys: deterministic bytes
    again = make_synthetic_voc(str(tmp_path / 'again'), describe=True, **ARGS)
    assert filecmp.cmp(desc['descriptions'], again['descriptions'],
                       shallow=False)
    with open(desc['descriptions']) as f:
        assert all(isinstance(json.loads(line), dict) for line in f)


def test_overwrite_removes_stale_side_file(tmp_path):
    out = str(tmp_path / 'd')
    make_synthetic_voc(out, describe=True, **ARGS)
    make_synthetic_voc(out, overwrite=True, **ARGS)
    assert not osp.exists(osp.join(out, DESCRIPTIONS_FILE))


def test_colour_and_position_words():
    assert colour_name((250, 250, 250)) == 'white'
    assert colour_name((20, 20, 20)) == 'black'
    assert colour_name(np.array([30, 80, 220])) == 'blue'
    assert position_word((1, 40, 20, 60), 100, 100) == 'left'
    assert position_word((80, 40, 100, 60), 100, 100) == 'right'
    assert position_word((40, 1, 60, 10), 100, 100) == 'top'
    assert position_word((40, 90, 60, 100), 100, 100) == 'bottom'
    assert position_word((40, 40, 60, 60), 100, 100) == 'center'
