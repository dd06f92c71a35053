"""Convert the official IRN/CLIMS/QA-CLIMS ResNet-50 CAM checkpoints.

The official ``Net`` (``net/resnet50_cam.py``) registers the same modules under
several names, so ``res50_cam.pth`` stores every weight up to four times:

=====================================  =========================================
official key                           our key
=====================================  =========================================
``resnet50.<torchvision name>``        ``backbone.<torchvision name>``
``stage1.0.*`` / ``stage1.1.*``        aliases of ``resnet50.conv1`` / ``bn1``
``stage1.4.*``                         alias of ``resnet50.layer1``
``stage{2,3,4}.0.*``                   aliases of ``resnet50.layer{2,3,4}``
``backbone.{0,1,2,3}.*``               aliases of ``stage{1,2,3,4}.*``
``classifier.weight``                  ``cam_head.classifier.weight``
``newly_added.0.weight``               alias of ``classifier.weight``
=====================================  =========================================

:func:`convert_official_cam_state_dict` keeps one copy, checks that every alias
holds the same tensor as its canonical key, and rejects any key it does not
know. Our ResNet (mmseg's ``ResNet``, pytorch style) uses the torchvision
names, so the backbone keys map one to one.
"""
import re
from collections import OrderedDict
from typing import Dict, Optional, Tuple

import torch

_STAGE1 = {'0': 'conv1', '1': 'bn1', '4': 'layer1'}


def _canonical(key: str) -> Optional[Tuple[str, bool]]:
    """Map an official key to (our key, is_alias), or None if unknown."""
    if key.startswith('resnet50.'):
        # the official ResNet has no avgpool/fc: only the stem and 4 layers
        if not re.match(r'^resnet50\.(conv1|bn1|layer[1-4])\.', key):
            return None
        return 'backbone.' + key[len('resnet50.'):], False
    if key == 'classifier.weight':
        return 'cam_head.classifier.weight', False
    if key == 'newly_added.0.weight':
        return 'cam_head.classifier.weight', True
    m = re.match(r'^(?:stage([1-4])|backbone\.([0-3]))\.(\d+)\.(.+)$', key)
    if m is None:
        return None
    stage = int(m.group(1)) if m.group(1) else int(m.group(2)) + 1
    idx, rest = m.group(3), m.group(4)
    if stage == 1:
        if idx not in _STAGE1:
            return None
        return f'backbone.{_STAGE1[idx]}.{rest}', True
    if idx != '0':
        return None
    return f'backbone.layer{stage}.{rest}', True


def convert_official_cam_state_dict(
        state_dict: Dict[str, torch.Tensor],
        num_classes: Optional[int] = None,
        source: str = 'checkpoint') -> 'OrderedDict[str, torch.Tensor]':
    """Official CAM-network state dict -> :class:`CAMClassifier` state dict.

    Args:
        state_dict (dict): The official weights (a ``module.`` prefix from
            DataParallel/DDP is removed).
        num_classes (int, optional): Expected number of classes; checked
            against ``classifier.weight``.
        source (str): Name used in error messages (the file path).

    Returns:
        OrderedDict: Weights with our key names.

    Raises:
        KeyError: unknown keys, or an alias without its canonical key.
        ValueError: an alias that differs from its canonical tensor, or a
            class-count mismatch.
    """
    if 'state_dict' in state_dict and isinstance(state_dict['state_dict'],
                                                 dict):
        state_dict = state_dict['state_dict']
    state_dict = {k[len('module.'):] if k.startswith('module.') else k: v
                  for k, v in state_dict.items()}
    mapped = [(k, _canonical(k)) for k in state_dict]
    unknown = [k for k, m in mapped if m is None]
    if unknown:
        raise KeyError(f'{source}: {len(unknown)} key(s) that are not part of '
                       f'the official ResNet-50 CAM network, e.g. '
                       f'{unknown[:5]}')
    out: 'OrderedDict[str, torch.Tensor]' = OrderedDict()
    for key, (ours, is_alias) in mapped:
        if not is_alias:
            out[ours] = state_dict[key]
    if 'cam_head.classifier.weight' not in out:
        raise KeyError(f'{source}: no classifier.weight; is this a CAM '
                       f'checkpoint?')
    for key, (ours, is_alias) in mapped:
        if not is_alias:
            continue
        if ours not in out:
            raise KeyError(f'{source}: alias {key!r} has no canonical key '
                           f'(expected {ours!r} from resnet50.* / classifier)')
        if not torch.equal(out[ours], state_dict[key]):
            raise ValueError(f'{source}: {key!r} differs from the tensor it '
                             f'aliases ({ours!r}); the file is inconsistent')
    n = out['cam_head.classifier.weight'].shape[0]
    if num_classes is not None and n != num_classes:
        raise ValueError(f'{source}: classifier.weight has {n} classes, '
                         f'expected {num_classes}')
    return out
