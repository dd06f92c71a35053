"""Convert an official IRN/CLIMS/QA-CLIMS ``res50_cam.pth`` for CAMClassifier.

    python tools/model_converters/official_cam_to_mmseg.py res50_cam.pth OUT.pth \
        [--config configs/cam/cam_r50-os16_1xb16-5e_voc12aug-512x512.py]

Keeps one copy of the duplicated weights (checking the aliases agree), and with
``--config`` builds the model and loads the result strictly, so any missing or
unexpected key is reported before training. Use the output with ``load_from``.
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.abspath(osp.join(osp.dirname(__file__), '..', '..')))

import torch  # noqa: E402

import qaclims_mm  # noqa: E402,F401
from qaclims_mm.models.utils import convert_official_cam_state_dict  # noqa
from qaclims_mm.utils.safe_load import load_torch_weights  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('src', help='official checkpoint (res50_cam.pth)')
    parser.add_argument('dst', help='output checkpoint')
    parser.add_argument('--config', help='check by a strict load into the '
                        'model of this config')
    parser.add_argument('--num-classes', type=int,
                        help='expected classes (20 VOC, 80 COCO)')
    args = parser.parse_args()
    if not osp.isfile(args.src):
        raise SystemExit(f'checkpoint not found: {args.src}')
    # the official file is a plain state dict of tensors: the safe loader works
    state = load_torch_weights(args.src)
    converted = convert_official_cam_state_dict(
        state, num_classes=args.num_classes, source=args.src)
    if args.config:
        from mmengine.config import Config
        from mmengine.registry import init_default_scope
        from mmseg.registry import MODELS
        cfg = Config.fromfile(args.config)
        init_default_scope('mmseg')
        cfg.model.backbone.init_cfg = None  # no ImageNet file needed here
        model = MODELS.build(cfg.model)
        model.load_state_dict(converted, strict=True)
        print(f'strict load into {cfg.model.type} of {args.config}: OK')
    torch.save({'state_dict': converted,
                'meta': {'source': osp.basename(args.src),
                         'converter': 'qaclims_mm official_cam_to_mmseg'}},
               args.dst)
    print(f'wrote {len(converted)} tensors to {args.dst}')


if __name__ == '__main__':
    main()
