"""Train (or reuse) the small VQA and CLIP models of the synthetic world.

The models are cached under ``--out`` (default ``data/pretrained/synthetic``)
in ``world-v<generator version>-seed<seed>/`` and reused by later runs; see
docs/world_models.md. Example::

    python tools/synthetic/train_world_models.py --seed 0
"""
import argparse
import json
import sys
from typing import List, Optional


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    from qaclims_mm.synthetic.world.cache import DEFAULT_CACHE_ROOT
    parser = argparse.ArgumentParser(
        description='Train the tiny VQA and CLIP of the synthetic world '
        '(cached; a rerun reuses them).')
    parser.add_argument('--out', default=DEFAULT_CACHE_ROOT,
                        help='cache folder (default: %(default)s)')
    parser.add_argument('--seed', type=int, default=0,
                        help='world seed (default: %(default)s)')
    parser.add_argument('--force', action='store_true',
                        help='retrain even if a valid cache exists')
    parser.add_argument('--no-clip', action='store_true',
                        help='train the VQA only')
    parser.add_argument('--no-progress', action='store_true',
                        help='hide the progress bars')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> dict:
    args = parse_args(argv)
    if args.seed < 0:
        sys.exit('--seed must be >= 0')
    from qaclims_mm.qape.questions import BG_QUESTIONS, FG_QUESTIONS
    from qaclims_mm.synthetic.world.cache import build_world_models
    models = build_world_models(args.out, args.seed,
                                progress=not args.no_progress,
                                force=args.force,
                                fg_templates=FG_QUESTIONS,
                                bg_templates=BG_QUESTIONS,
                                with_clip=not args.no_clip)
    print(f'world models ({"trained" if models["built"] else "reused"}): '
          f'{models["root"]}')
    print(f'  vqa:  {models["vqa"]} (native image size '
          f'{models["vqa_image_size"]}: tools/qape.py --engine blip '
          f'--model-path {models["vqa"]} --image-size '
          f'{models["vqa_image_size"]})')
    print(f'  clip: {models["clip"]}')
    print('held-out metrics:')
    print(json.dumps(models['metrics'], indent=1, sort_keys=True))
    return models


if __name__ == '__main__':
    main()
