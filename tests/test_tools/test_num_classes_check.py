"""A class head wider than the dataset is refused, naming the config key."""
import os
import os.path as osp
import subprocess
import sys

import pytest
from mmengine.registry import init_default_scope
from mmseg.registry import MODELS

import qaclims_mm  # noqa: F401
from qaclims_mm.datasets.class_names import VOC_CLASSES

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DEMO_CONFIG = osp.join(
    REPO, 'configs/cam/cam_r18-os16_1xb16-12e_synthetic-voc-160x160.py')
CLASSES = ('background', ) + VOC_CLASSES


def cam_model(num_classes):
    init_default_scope('mmseg')
    return MODELS.build(
        dict(type='CAMClassifier',
             backbone=dict(type='ResNet', depth=18, out_indices=(3, ),
                           base_channels=8),
             cam_head=dict(type='CAMHead', in_channels=64,
                           num_classes=num_classes)))


def test_check_num_classes_names_the_key():
    from qaclims_mm.engine.hooks import check_num_classes
    check_num_classes(cam_model(20), CLASSES)  # VOC: 20 object classes
    with pytest.raises(ValueError,
                       match=r'model\.cam_head\.num_classes = 80.*20 object'):
        check_num_classes(cam_model(80), CLASSES, 'VOC')


def test_decode_head_counts_background():
    from qaclims_mm.engine.hooks import check_num_classes
    init_default_scope('mmseg')
    seg = MODELS.build(
        dict(type='EncoderDecoder',
             backbone=dict(type='ResNetV1c', depth=18, out_indices=(3, ),
                           base_channels=8),
             decode_head=dict(type='FCNHead', in_channels=64, channels=8,
                              num_convs=1, num_classes=21, in_index=0)))
    check_num_classes(seg, CLASSES)
    seg.decode_head.num_classes = 81
    with pytest.raises(ValueError, match=r'model\.decode_head\.num_classes '
                       r'= 81.*21 classes \(background included\)'):
        check_num_classes(seg, CLASSES)


def test_train_tool_refuses_before_the_first_iteration(synthetic_voc_root,
                                                       tmp_path):
    work = str(tmp_path / 'work')
    proc = subprocess.run(
        [sys.executable, 'tools/train.py', DEMO_CONFIG, '--work-dir', work,
         '--cfg-options', f'train_dataloader.dataset.data_root='
         f'{synthetic_voc_root}', 'train_dataloader.num_workers=0',
         'train_cfg.max_epochs=1', 'model.cam_head.num_classes=25'],
        cwd=REPO, capture_output=True, text=True,
        env=dict(os.environ, PYTHONUNBUFFERED='1'))
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out[-3000:]
    assert 'model.cam_head.num_classes = 25' in out, out[-3000:]
    assert 'Epoch(train)' not in out  # no training step ran
    assert not [f for f in os.listdir(work) if f.endswith('.pth')]
