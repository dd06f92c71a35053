"""Convert the official ``voc12/cls_labels.npy`` into our labels JSON file.

The official labels file is a pickled dict ``{2007000032: multi-hot float[20],
...}``. Unpickling can run code from a file, so our loaders refuse it; convert
a file you trust once and point ``labels_file`` at the JSON::

    python tools/convert_official_labels.py voc12/cls_labels.npy \\
        data/VOCdevkit/VOC2012/cls_labels_official.json --trust-pickle
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from qaclims_mm.datasets.class_names import VOC_CLASSES  # noqa: E402
from qaclims_mm.datasets.labels_file import (load_labels_file,  # noqa: E402
                                             save_labels_file)
from qaclims_mm.utils.cli import (add_trust_pickle_arg,  # noqa: E402
                                  require_trust_pickle)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('src', help='official cls_labels.npy')
    parser.add_argument('dst', help='output labels JSON')
    add_trust_pickle_arg(parser, 'the .npy file')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    require_trust_pickle(args, args.src,
                         'the official labels file is a pickle')
    labels = load_labels_file(args.src, VOC_CLASSES, trust_pickle=True)
    save_labels_file(args.dst, labels, VOC_CLASSES, dataset='voc')
    print(f'{len(labels)} images -> {args.dst}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
