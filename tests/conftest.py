"""Shared fixtures: a small synthetic VOC-format dataset, converted once."""
import os.path as osp

import pytest

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


@pytest.fixture(scope='session')
def synthetic_voc_root(tmp_path_factory) -> str:
    """Generate the test preset and run the VOC converter on it.

    Returns the ``VOC2012`` folder (``cls_labels.json``, ``train_aug.txt`` and
    ``SegmentationClassAug`` written), read-only for tests: copy it before
    modifying anything.
    """
    from qaclims_mm.datasets.converters.voc12 import convert_voc12
    from qaclims_mm.synthetic import make_synthetic_voc
    root = str(tmp_path_factory.mktemp('synthetic_voc'))
    make_synthetic_voc(root, seed=0, progress=False)
    voc = osp.join(root, 'VOC2012')
    convert_voc12(voc, sbd_root=osp.join(root, 'SBD'), progress=False)
    return voc
