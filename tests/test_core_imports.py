"""The method's core modules import without mmseg.models / mmcv.ops.

GPU machines may only have mmcv-lite, where ``import mmseg.models`` fails
(it imports mmcv.ops). The losses, FAT, the mask-prompted CLIP, the random
walk and the VQA engines must stay usable there.
"""
import subprocess
import sys

BLOCK = r'''
import importlib.abc, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name in ('mmseg.models', 'mmcv.ops') or name.startswith(
                ('mmseg.models.', 'mmcv.ops.')):
            raise ImportError(f'{name} blocked (simulated mmcv-lite)')
sys.meta_path.insert(0, Block())
import warnings
warnings.simplefilter('ignore')
'''

CORE = [
    'qaclims_mm.models.losses', 'qaclims_mm.models.utils',
    'qaclims_mm.models.clip', 'qaclims_mm.refine.random_walk',
    'qaclims_mm.structures.path_index', 'qaclims_mm.qape.engines',
    'qaclims_mm.qape', 'qaclims_mm.models.heads.ritc_head',
    'qaclims_mm.structures.crf', 'qaclims_mm.structures.image_decoding',
    'qaclims_mm.structures.text_cache_format'
]


def test_core_modules_import_without_mmseg_models():
    code = BLOCK + ''.join(f'import {m}\n' for m in CORE) + '''
import torch
from qaclims_mm.models.utils import fat_masks
from qaclims_mm.refine.random_walk import propagate_cams
assert fat_masks(torch.rand(2, 1, 8, 8)).shape == (2, 1, 8, 8)
assert propagate_cams(torch.rand(1, 6, 6), torch.zeros(6, 6)).shape == (1, 6, 6)
import qaclims_mm.models as m
assert 'CAMClassifier' not in m.__all__  # segmentors need mmseg.models
print('core ok')
'''
    proc = subprocess.run([sys.executable, '-c', code], capture_output=True,
                          text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert 'core ok' in proc.stdout
