"""Convert official QA-CLIMS ``cam_mask/<id>.npy`` CAMs into ``.npz`` files.

The official CAM inference saves one pickled dict per image (``keys``,
``cam``, ``high_res``; spec §6.1). Unpickling can run code from a file, so our
loaders refuse ``.npy`` CAMs; convert a folder you trust once, then score and
refine the pickle-free copies::

    python tools/convert_official_cams.py cam_mask/ work_dirs/official_cams/ \\
        --trust-pickle
    python tools/eval_cam.py ... --cam-dir work_dirs/official_cams/

Files already converted are skipped (outputs are written atomically, so a
killed run can be restarted). ``--num-classes`` checks the class keys.
"""
import argparse
import glob
import os
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from qaclims_mm.utils.cam_file import load_cam, save_cam  # noqa: E402
from qaclims_mm.utils.cli import (add_trust_pickle_arg,  # noqa: E402
                                  require_trust_pickle)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('src_dir', help='folder of official <id>.npy CAMs')
    parser.add_argument('out_dir', help='output folder of <id>.npz CAMs')
    add_trust_pickle_arg(parser)
    parser.add_argument('--num-classes', type=int, default=None,
                        help='check every class key is < this (20 VOC, 80 '
                        'COCO)')
    parser.add_argument('--overwrite', action='store_true',
                        help='rewrite outputs that exist')
    return parser.parse_args(argv)


def convert_cam_dir(src_dir: str, out_dir: str, trust_pickle: bool,
                    num_classes=None, overwrite: bool = False) -> dict:
    """Convert every ``<id>.npy`` of ``src_dir`` into ``<out_dir>/<id>.npz``.

    Args:
        src_dir (str): Folder of official CAM files.
        out_dir (str): Output folder (created).
        trust_pickle (bool): The caller's opt-in to unpickling the files.
        num_classes (int, optional): When given, class keys must be below it.
        overwrite (bool): Rewrite existing outputs. Defaults to False.

    Returns:
        dict: ``converted`` and ``skipped`` counts.

    Raises:
        FileNotFoundError: ``src_dir`` has no ``.npy`` file.
        ValueError: naming a file that cannot be read (or any file when
            ``trust_pickle`` is False).
    """
    paths = sorted(glob.glob(osp.join(src_dir, '*.npy')))
    if not paths:
        raise FileNotFoundError(f'no official <id>.npy CAM file in {src_dir}')
    os.makedirs(out_dir, exist_ok=True)
    counts = dict(converted=0, skipped=0)
    for path in paths:
        dst = osp.join(out_dir, osp.splitext(osp.basename(path))[0] + '.npz')
        if osp.exists(dst) and not overwrite:
            counts['skipped'] += 1
            continue
        cam = load_cam(path, num_classes, trust_pickle=trust_pickle)
        save_cam(dst, cam['keys'], cam['cam'], cam['high_res'])
        counts['converted'] += 1
    return counts


def main(argv=None) -> int:
    args = parse_args(argv)
    require_trust_pickle(args, args.src_dir, 'official CAM files are pickles')
    counts = convert_cam_dir(args.src_dir, args.out_dir, True,
                             args.num_classes, args.overwrite)
    print(f'{counts["converted"]} CAM files converted, {counts["skipped"]} '
          f'already there -> {args.out_dir}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
