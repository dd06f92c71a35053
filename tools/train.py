"""Train a model from a config (the flags of MMSegmentation's tools/train.py).

    python tools/train.py CONFIG [--work-dir DIR] [--resume] [--amp]
        [--cfg-options k=v ...] [--launcher none|pytorch|slurm|mpi]

The stock ``mmseg/.mim/tools/train.py`` runs our configs too; this copy exists
for users who do not have mmseg's tools at hand. A pipeline config
(``runner_type='WSSSPipelineRunner'``) runs every stage of the pipeline; there
``--resume`` is a no-op (the pipeline always resumes) and ``--amp`` is refused
without CUDA only if a training stage is about to run (docs/pipeline.md).
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.abspath(osp.join(osp.dirname(__file__), '..')))

import qaclims_mm  # noqa: E402,F401  (registers components, offline env)
from mmengine.config import Config  # noqa: E402
from mmengine.runner import Runner  # noqa: E402

from qaclims_mm.engine.hooks import add_num_classes_check  # noqa: E402
from qaclims_mm.engine.resume import set_resume_checkpoint  # noqa: E402
from qaclims_mm.pipeline.runner import is_pipeline_config  # noqa: E402
from qaclims_mm.utils.cli import (add_launcher_args,  # noqa: E402
                                  parse_launcher_args)
from qaclims_mm.utils.config import load_config  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Train a qaclims-mm model')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    parser.add_argument(
        '--resume', action='store_true',
        help='resume from the latest complete checkpoint in work_dir (a '
        'truncated last one falls back to the previous one, with a warning); '
        'without a checkpoint there, train from the start')
    parser.add_argument('--amp', action='store_true',
                        help='automatic mixed precision (CUDA only)')
    add_launcher_args(parser)
    return parse_launcher_args(parser, argv)


def build_config(args: argparse.Namespace) -> Config:
    cfg = load_config(args.config, args.cfg_options, args.work_dir,
                      args.launcher)
    pipeline = is_pipeline_config(cfg)
    if not pipeline:
        add_num_classes_check(cfg)  # a head wider than the dataset: refuse
    if args.amp:
        import torch
        if pipeline:  # the runner refuses it if a training stage would run
            cfg.setdefault('optim_wrapper', dict(type='OptimWrapper'))
        elif not torch.cuda.is_available():
            raise SystemExit('--amp needs a CUDA device (MMEngine\'s '
                             'AmpOptimWrapper does not run on CPU)')
        if cfg.optim_wrapper.get('type', 'OptimWrapper') == 'AmpOptimWrapper':
            print('AMP training is already enabled in the config.')
        else:
            cfg.optim_wrapper.type = 'AmpOptimWrapper'
            cfg.optim_wrapper.loss_scale = 'dynamic'
    cfg.resume = False
    if args.resume and pipeline:
        cfg.resume = True  # a no-op: the pipeline always resumes
    elif args.resume:
        set_resume_checkpoint(cfg)
    return cfg


def main() -> None:
    cfg = build_config(parse_args())
    if 'runner_type' in cfg:
        from mmseg.registry import RUNNERS
        runner = RUNNERS.build(cfg)
    else:
        runner = Runner.from_cfg(cfg)
    runner.train()


if __name__ == '__main__':
    main()
