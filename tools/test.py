"""Test a model from a config (the flags of MMSegmentation's tools/test.py).

    python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--out DIR]
        [--show] [--show-dir DIR] [--tta] [--cam-dir DIR]
        [--cfg-options k=v ...] [--launcher ...]

``--cam-dir`` sets the output folder of the config's ``SaveCAMHook`` (adding
the hook if the config has none): CAM models write one ``<img_id>.npz`` there.
A relative ``--cam-dir`` (or ``--out`` of a CAM config) is relative to the
current directory, like every other path on the command line; a relative
``out_dir`` written in a config stays relative to the work dir.
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.abspath(osp.join(osp.dirname(__file__), '..')))

import qaclims_mm  # noqa: E402,F401
from mmengine.config import Config  # noqa: E402
from mmengine.runner import Runner  # noqa: E402

from qaclims_mm.engine.hooks import add_num_classes_check  # noqa: E402
from qaclims_mm.utils.cli import (add_launcher_args,  # noqa: E402
                                  parse_launcher_args)
from qaclims_mm.utils.config import (load_config,  # noqa: E402
                                     set_test_outputs)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Test a qaclims-mm model')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--work-dir', help='the dir to save logs/metrics')
    parser.add_argument('--out', help='save predictions to this folder: '
                        'segmentation PNGs (IoUMetric), or CAM files for '
                        'CAM configs (same as --cam-dir)')
    parser.add_argument('--show', action='store_true', help='show results')
    parser.add_argument('--show-dir', help='save painted predictions here')
    parser.add_argument('--wait-time', type=float, default=2)
    parser.add_argument('--tta', action='store_true',
                        help='test-time augmentation (cfg.tta_pipeline)')
    parser.add_argument('--cam-dir', help='folder for the CAM files '
                        '(SaveCAMHook.out_dir)')
    add_launcher_args(parser)
    return parse_launcher_args(parser, argv)


def build_config(args: argparse.Namespace) -> Config:
    cfg = load_config(args.config, args.cfg_options, args.work_dir,
                      args.launcher)
    add_num_classes_check(cfg)  # a head wider than the dataset: refuse
    cfg.load_from = args.checkpoint
    if args.show or args.show_dir:
        vis = cfg.default_hooks.visualization
        vis['draw'] = True
        if args.show:
            vis['show'] = True
            vis['wait_time'] = args.wait_time
        if args.show_dir:
            cfg.visualizer['save_dir'] = args.show_dir
    if args.tta:
        if 'tta_pipeline' not in cfg:
            raise SystemExit(f'--tta: {args.config} defines no tta_pipeline '
                             f'(CAM configs do multi-scale + flip already)')
        cfg.test_dataloader.dataset.pipeline = cfg.tta_pipeline
        cfg.tta_model.module = cfg.model
        cfg.model = cfg.tta_model
    set_test_outputs(cfg, args.out, args.cam_dir)
    return cfg


def main() -> None:
    cfg = build_config(parse_args())
    runner = Runner.from_cfg(cfg)
    runner.test()


if __name__ == '__main__':
    main()
