"""Convert deeplab-pytorch's caffe-derived ResNet-101 weights (DeepLab v2).

    python tools/model_converters/deeplabv1_resnet101_to_mmseg.py \
        deeplabv1_resnet101-imagenet.pth \
        data/pretrained/deeplabv1_resnet101-imagenet_mmseg.pth \
        [--config configs/deeplab/<a deeplabv2 config>.py]

Works for ``deeplabv1_resnet101-imagenet.pth`` and ``-coco.pth`` (CLIMS
``segmentation/deeplabv2`` README) and for trained DeepLab v2 MSC checkpoints
of deeplab-pytorch (``base.*`` keys, ASPP included). The classifier of the
DeepLab v1 models (``fc.*``: 91 COCO classes) is dropped and listed; the ASPP
head is then trained from scratch, as in CLIMS. Any unknown or missing key is
an error. With ``--config`` the result is loaded into the model of that
config: strictly when the checkpoint has an ASPP head, otherwise strictly for
the backbone (only ``decode_head.*`` may be missing).

The output holds ``backbone.*`` keys: point the config's
``model.backbone.init_cfg=dict(type='Pretrained', checkpoint=OUT,
prefix='backbone.')`` at it (the DeepLab v2 configs do), or use it as
``load_from`` when it includes the head.
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.abspath(osp.join(osp.dirname(__file__), '..', '..')))

import torch  # noqa: E402

import qaclims_mm  # noqa: E402,F401
from qaclims_mm.models.utils.deeplab_checkpoint import \
    convert_deeplab_resnet101_state_dict  # noqa: E402
from qaclims_mm.utils.safe_load import load_torch_weights  # noqa: E402


def check_against_config(converted: dict, config: str) -> str:
    """Load ``converted`` into the model of ``config``; return a summary."""
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS
    cfg = Config.fromfile(config)
    init_default_scope('mmseg')
    cfg.model.backbone.init_cfg = None  # no weight file needed for the check
    cfg.model.pop('pretrained', None)
    model = MODELS.build(cfg.model)
    has_head = any(k.startswith('decode_head.') for k in converted)
    if not has_head:
        # the backbone alone, strictly (our segmentors refuse a checkpoint
        # that leaves the head uninitialised)
        backbone = {k[len('backbone.'):]: v for k, v in converted.items()
                    if k.startswith('backbone.')}
        unexpected = [k for k in converted if not k.startswith('backbone.')]
        if unexpected:
            raise KeyError(f'{config}: the converted backbone does not match '
                           f'the model: unexpected {unexpected[:5]}')
        try:
            model.backbone.load_state_dict(backbone, strict=True)
        except RuntimeError as e:
            raise KeyError(f'{config}: the converted backbone does not match '
                           f'the model: {e}') from None
        return (f'strict backbone load into {cfg.model.type} of {config}: OK '
                f'(head left to its initialisation)')
    model.load_state_dict(converted, strict=True)
    return f'strict load into {cfg.model.type} of {config}: OK'


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('src', help='deeplab-pytorch checkpoint, e.g. '
                        'deeplabv1_resnet101-imagenet.pth')
    parser.add_argument('dst', help='output checkpoint')
    parser.add_argument('--config', help='check by loading into the model of '
                        'this config')
    parser.add_argument('--drop-head', action='store_true',
                        help='drop DeepLab v2 ASPP weights (aspp.c*) too')
    args = parser.parse_args()
    if not osp.isfile(args.src):
        raise SystemExit(f'checkpoint not found: {args.src}')
    # a plain state dict of tensors: the safe loader works
    state = load_torch_weights(args.src)
    converted, dropped = convert_deeplab_resnet101_state_dict(
        state, keep_head=not args.drop_head, source=args.src)
    if dropped:
        print(f'dropped {len(dropped)} key(s) that our model cannot use '
              f'(source classifier): {dropped}')
    if args.config:
        print(check_against_config(converted, args.config))
    meta = {'source': osp.basename(args.src), 'dropped_keys': dropped,
            'converter': 'qaclims_mm deeplabv1_resnet101_to_mmseg'}
    torch.save({'state_dict': converted, 'meta': meta}, args.dst)
    print(f'wrote {len(converted)} tensors to {args.dst}')


if __name__ == '__main__':
    main()
