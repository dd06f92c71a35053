"""Check that the qaclims-mm stack is importable and complete; print versions.

Exit status 1 names every missing or broken piece.
"""
import importlib
import sys


def check(name: str, problems: list, attr: str = '__version__') -> str:
    try:
        module = importlib.import_module(name)
        return str(getattr(module, attr, 'ok'))
    except Exception as e:  # noqa: BLE001 - report every failure
        problems.append(f'{name}: {type(e).__name__}: {e}')
        return 'MISSING'


def main() -> int:
    problems: list = []
    # qaclims_mm first: it applies the environment fixes (utils/env.py) that
    # mmpretrain.models needs with current transformers releases
    check('qaclims_mm', problems)
    rows = [(name, check(name, problems)) for name in (
        'torch', 'torchvision', 'numpy', 'cv2', 'mmengine', 'mmcv',
        'mmseg', 'mmpretrain', 'transformers', 'open_clip', 'timm')]
    # the heavy registries: mmseg.models needs mmcv's compiled ops
    rows.append(('mmcv._ext (ops)', check('mmcv._ext', problems, '__name__')))
    rows.append(('mmseg.models', check('mmseg.models', problems, '__name__')))
    rows.append(('mmpretrain.models',
                 check('mmpretrain.models', problems, '__name__')))
    rows.append(('qaclims_mm', check('qaclims_mm', problems)))
    try:
        import pydensecrf  # noqa: F401
        rows.append(('pydensecrf (optional)', 'ok'))
    except ImportError:
        rows.append(('pydensecrf (optional)', 'not installed (--no-crf)'))
    if not problems:
        import torch
        from mmengine.registry import init_default_scope
        from mmseg.registry import MODELS
        init_default_scope('mmseg')
        model = MODELS.build(dict(
            type='CAMClassifier',
            backbone=dict(type='ResNet', depth=18, strides=(1, 2, 2, 1),
                          out_indices=(3, )),
            cam_head=dict(type='CAMHead', in_channels=512, num_classes=20)))
        out = model(torch.zeros(1, 3, 64, 64), mode='tensor')
        rows.append(('CAMClassifier forward', str(tuple(out.shape))))
        rows.append(('cuda available', str(torch.cuda.is_available())))
    width = max(len(r[0]) for r in rows)
    for name, version in rows:
        print(f'  {name:<{width}}  {version}')
    if problems:
        print('\nBroken installation:', *problems, sep='\n  ', file=sys.stderr)
        return 1
    print('\nqaclims-mm installation OK')
    return 0


if __name__ == '__main__':
    sys.exit(main())
