"""Convert the caffe-derived DeepLab ResNet-101 weights of deeplab-pytorch.

CLIMS initialises DeepLab v2 from ``deeplabv1_resnet101-imagenet.pth`` or
``deeplabv1_resnet101-coco.pth`` (spec §6.7): caffemodels of the DeepLab
authors converted by kazuto1011/deeplab-pytorch ``convert.py``, in the layout
of its ``libs/models/resnet.py`` (MSRA/caffe ResNet: the stride is on the
first 1x1 conv, BN eps 1e-5, no conv biases):

=================================================  ===========================
deeplab-pytorch key                                our key
=================================================  ===========================
``layer1.conv1.conv.weight``                       ``backbone.conv1.weight``
``layer1.conv1.bn.<p>``                            ``backbone.bn1.<p>``
``layer{L}.block{b}.reduce.conv.weight``           ``backbone.layer{L-1}.{b-1}.conv1.weight``
``layer{L}.block{b}.reduce.bn.<p>``                ``backbone.layer{L-1}.{b-1}.bn1.<p>``
``layer{L}.block{b}.conv3x3.{conv,bn}``            ``... .conv2`` / ``... .bn2``
``layer{L}.block{b}.increase.{conv,bn}``           ``... .conv3`` / ``... .bn3``
``layer{L}.block1.shortcut.{conv,bn}``             ``... .downsample.0`` / ``.1``
``aspp.c{i}.{weight,bias}`` (DeepLab v2 models)    ``decode_head.convs.{i}.*``
``fc.weight`` / ``fc.bias``                        dropped (see below)
=================================================  ===========================

with ``L`` in 2..5 (deeplab-pytorch's ``layer1`` is the stem) and ``<p>`` one
of ``weight, bias, running_mean, running_var, num_batches_tracked``. A
``module.`` (DataParallel) or ``base.`` (the MSC wrapper) prefix is removed.

The target is mmseg's ``ResNet(depth=101, style='caffe', strides=(1, 2, 1,
1), dilations=(1, 1, 2, 4))`` whose module names match this table.

``fc.*`` is the classifier of the source model: the 91-class 1x1 conv of the
COCO-trained DeepLab v1 (``init.caffemodel``), or an ImageNet fc. It cannot
initialise the DeepLab v2 head (four dilated 3x3 classifiers for 21 or 81
classes), so it is dropped and reported, and the ASPP head starts from its
N(0, 0.01) initialisation, as in CLIMS (which loads with ``strict=False`` "to
skip ASPP").
"""
import re
from collections import OrderedDict
from typing import Dict, List, Optional, Sequence, Tuple

import torch

#: deeplab-pytorch bottleneck unit -> (mmseg conv name, mmseg norm name)
_UNITS = {
    'reduce': ('conv1', 'bn1'),
    'conv3x3': ('conv2', 'bn2'),
    'increase': ('conv3', 'bn3'),
    'shortcut': ('downsample.0', 'downsample.1'),
}
_BN_PARAMS = ('weight', 'bias', 'running_mean', 'running_var')
_BN_OPTIONAL = 'num_batches_tracked'
_BLOCK_RE = re.compile(r'^layer([2-5])\.block(\d+)\.(reduce|conv3x3|increase|'
                       r'shortcut)\.(conv|bn)\.(\w+)$')
_STEM_RE = re.compile(r'^layer1\.conv1\.(conv|bn)\.(\w+)$')
_ASPP_RE = re.compile(r'^aspp\.c(\d+)\.(weight|bias)$')
_CLASSIFIER_KEYS = ('fc.weight', 'fc.bias')


def _map_param(kind: str, param: str, conv: str, norm: str,
               prefix: str) -> Optional[str]:
    if kind == 'conv':
        return f'{prefix}{conv}.weight' if param == 'weight' else None
    if param in _BN_PARAMS or param == _BN_OPTIONAL:
        return f'{prefix}{norm}.{param}'
    return None


def _strip_prefixes(state_dict: Dict[str, torch.Tensor]
                    ) -> Dict[str, torch.Tensor]:
    out = {}
    for key, value in state_dict.items():
        for prefix in ('module.', 'base.'):
            if key.startswith(prefix):
                key = key[len(prefix):]
        out[key] = value
    return out


def convert_deeplab_resnet101_state_dict(
        state_dict: Dict[str, torch.Tensor],
        num_blocks: Optional[Sequence[int]] = (3, 4, 23, 3),
        keep_head: bool = True,
        source: str = 'checkpoint'
) -> Tuple['OrderedDict[str, torch.Tensor]', List[str]]:
    """deeplab-pytorch ResNet-101 (DeepLab v1/v2) weights -> our key names.

    Args:
        state_dict (dict): The deeplab-pytorch state dict (a checkpoint dict
            with ``state_dict`` / ``model`` inside is unwrapped).
        num_blocks (Sequence[int], optional): Expected blocks per stage;
            ``None`` accepts any count (tests with smaller nets).
            Defaults to ResNet-101's (3, 4, 23, 3).
        keep_head (bool): Map DeepLab v2 ``aspp.c{i}`` weights to the
            :class:`ASPPV2Head` (``decode_head.convs.{i}``). When False they
            are dropped like ``fc.*``. Defaults to True.
        source (str): Name used in error messages (the file path).

    Returns:
        tuple: (OrderedDict of converted tensors with ``backbone.`` /
        ``decode_head.`` keys, list of dropped source keys).

    Raises:
        KeyError: an unknown key, or a missing weight of the backbone.
        ValueError: a stage with the wrong number of blocks, or a shortcut
            outside the first block.
    """
    for wrapper in ('state_dict', 'model'):
        if isinstance(state_dict.get(wrapper), dict):
            state_dict = state_dict[wrapper]
    state_dict = _strip_prefixes(state_dict)

    converted: 'OrderedDict[str, torch.Tensor]' = OrderedDict()
    dropped: List[str] = []
    unknown: List[str] = []
    blocks: Dict[int, Dict[int, set]] = {}  # stage -> block -> units seen
    for key, value in state_dict.items():
        if key in _CLASSIFIER_KEYS:
            dropped.append(key)
            continue
        m = _ASPP_RE.match(key)
        if m:
            if keep_head:
                converted[f'decode_head.convs.{m.group(1)}.{m.group(2)}'] = \
                    value
            else:
                dropped.append(key)
            continue
        m = _STEM_RE.match(key)
        if m:
            ours = _map_param(m.group(1), m.group(2), 'conv1', 'bn1',
                              'backbone.')
        else:
            m = _BLOCK_RE.match(key)
            ours = None
            if m:
                stage, block = int(m.group(1)) - 1, int(m.group(2))
                unit = m.group(3)
                conv, norm = _UNITS[unit]
                ours = _map_param(m.group(4), m.group(5), conv, norm,
                                  f'backbone.layer{stage}.{block - 1}.')
                if ours is not None:
                    blocks.setdefault(stage, {}).setdefault(block,
                                                            set()).add(unit)
        if ours is None:
            unknown.append(key)
        else:
            converted[ours] = value
    if unknown:
        raise KeyError(f'{source}: {len(unknown)} key(s) that are not part of '
                       f'the deeplab-pytorch ResNet-101 layout, e.g. '
                       f'{unknown[:5]}')

    _check_structure(converted, blocks, num_blocks, source)
    head = sorted(k for k in converted if k.startswith('decode_head.'))
    if head:
        n = len(head) // 2
        want = sorted(f'decode_head.convs.{i}.{p}' for i in range(n)
                      for p in ('weight', 'bias'))
        if head != want:
            raise KeyError(f'{source}: incomplete ASPP weights {head}; '
                           f'expected aspp.c0..c{n - 1} weight and bias')
    # older conversions have no BN counters: mmseg's BN has the buffer
    for key in [k for k in converted if k.endswith('.running_mean')]:
        counter = key[:-len('running_mean')] + _BN_OPTIONAL
        if counter not in converted:
            converted[counter] = torch.tensor(0, dtype=torch.long)
    return converted, dropped


def _check_structure(converted: Dict[str, torch.Tensor],
                     blocks: Dict[int, Dict[int, set]],
                     num_blocks: Optional[Sequence[int]], source: str) -> None:
    """Every stage complete, block counts as expected, nothing missing."""
    if sorted(blocks) != [1, 2, 3, 4]:
        found = [f'layer{s + 1}' for s in sorted(blocks)]
        raise KeyError(f'{source}: expected residual stages layer2..layer5, '
                       f'found {found}')
    expected: List[str] = ['backbone.conv1.weight'] + [
        f'backbone.bn1.{p}' for p in _BN_PARAMS
    ]
    for stage in sorted(blocks):
        ids = sorted(blocks[stage])
        if ids != list(range(1, len(ids) + 1)):
            raise KeyError(f'{source}: layer{stage + 1} blocks are not '
                           f'numbered 1..n: {ids}')
        if num_blocks is not None and len(ids) != num_blocks[stage - 1]:
            raise ValueError(
                f'{source}: layer{stage + 1} has {len(ids)} blocks, expected '
                f'{num_blocks[stage - 1]} (ResNet-101 is {tuple(num_blocks)})')
        for block in ids:
            units = ['reduce', 'conv3x3', 'increase']
            if block == 1:
                units.append('shortcut')
            elif 'shortcut' in blocks[stage][block]:
                raise ValueError(f'{source}: layer{stage + 1}.block{block} '
                                 f'has a shortcut conv; only block1 may')
            for unit in units:
                conv, norm = _UNITS[unit]
                prefix = f'backbone.layer{stage}.{block - 1}.'
                expected.append(f'{prefix}{conv}.weight')
                expected += [f'{prefix}{norm}.{p}' for p in _BN_PARAMS]
    missing = [k for k in expected if k not in converted]
    if missing:
        raise KeyError(f'{source}: {len(missing)} backbone weight(s) missing, '
                       f'e.g. {missing[:5]} (in deeplab-pytorch names: '
                       f'layer1 = stem, layer2..5 = residual stages)')
