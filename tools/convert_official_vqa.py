"""Convert between the official QA-CLIMS VQA npy files and our QA corpus.

``import``: the released ``voc_vqa_fg_blip.npy`` + ``voc_vqa_bg_blip.npy``
(spec §2.3) -> corpus JSON, keeping the authors' raw answers and NLTK lemmas
(use this for parity runs). The official 6 FG + 10 BG questions are looked up
by template in every record, in the official order; other questions in the
files are ignored. The npy files are pickles, and unpickling can run code from
a file, so ``import`` needs ``--trust-pickle``: use it on files you trust (the
authors' release), once, and work from the pickle-free corpus JSON afterwards.
``export``: corpus JSON -> the two npy files, which the official code reads
unchanged.

Examples::

    python tools/convert_official_vqa.py import \
        --fg vqa/voc_vqa_fg_blip.npy --bg vqa/voc_vqa_bg_blip.npy \
        --corpus work_dirs/qape/voc_official_corpus.json --trust-pickle
    python tools/convert_official_vqa.py export \
        --corpus work_dirs/qape/voc_corpus.json \
        --fg out/voc_vqa_fg_blip.npy --bg out/voc_vqa_bg_blip.npy
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from qaclims_mm.qape.corpus import (export_official_npy,  # noqa: E402
                                    import_official_npy, load_corpus,
                                    save_corpus)
from qaclims_mm.utils.cli import add_trust_pickle_arg  # noqa: E402
from qaclims_mm.utils.safe_load import UntrustedPickleError  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('direction', choices=('import', 'export'),
                        help='import: npy -> corpus; export: corpus -> npy')
    parser.add_argument('--fg', required=True, help='official FG npy file')
    parser.add_argument('--bg', required=True, help='official BG npy file')
    parser.add_argument('--corpus', required=True, help='corpus JSON file')
    add_trust_pickle_arg(parser, 'the npy files', when='import')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.direction == 'import':
        try:
            corpus = import_official_npy(
                args.fg, args.bg, trust_pickle=args.trust_pickle)
        except UntrustedPickleError as e:
            raise SystemExit(f'{e}\n(convert_official_vqa.py: add '
                             '--trust-pickle if you trust the files)')
        save_corpus(args.corpus, corpus)
        print(f'{corpus!r} -> {args.corpus}')
    else:
        corpus = load_corpus(args.corpus)
        export_official_npy(corpus, args.fg, args.bg)
        print(f'{corpus!r} -> {args.fg}, {args.bg}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
