"""Encode the texts of a QA corpus with a CLIP text tower (spec §2.5).

Writes ``<out>.safetensors`` (unit-norm features of every unique FG/BG text and
of ``a photo of {class}.`` for each dataset class) and ``<out>.json`` (the
index read by the ``LoadQACorpus`` transform). Weights are read from a local
file only. Re-running with the same model, weights and prompt re-encodes only
strings that are new.

Example (OpenAI ViT-L/14, as the official cache; QuickGELU config)::

    python tools/build_text_cache.py --corpus work_dirs/qape/voc_corpus.json \
        --model ViT-L-14-quickgelu \
        --pretrained checkpoints/clip_l14_openai/open_clip_pytorch_model.bin \
        --out work_dirs/qape/voc_text_ViT-L-14 --classes voc --device cuda

With ``--clims-prompts`` (no corpus) it writes the fixed CLIMS prompts
(``a photo of {class}.``, ``person`` -> ``player``, and the dataset's
background prompts) in the same format, for the CLIMS config's
``PromptTextSource``::

    python tools/build_text_cache.py --clims-prompts --classes voc \
        --model ViT-B-32-quickgelu --pretrained data/pretrained/ViT-B-32.pt \
        --out data/pretrained/clims_voc_ViT-B-32
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from qaclims_mm.datasets.class_names import get_classes  # noqa: E402
from qaclims_mm.qape.corpus import load_corpus  # noqa: E402
from qaclims_mm.qape.questions import TEXT_PROMPT  # noqa: E402
from qaclims_mm.models.losses.clims_losses import (  # noqa: E402
    clims_background_prompts, clims_class_prompts)
from qaclims_mm.qape.text_cache import (  # noqa: E402
    build_prompt_text_cache, build_text_cache)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument('--corpus',
                        help='QA corpus JSON (tools/qape.py or '
                        'tools/convert_official_vqa.py import)')
    source.add_argument('--clims-prompts', action='store_true',
                        help='encode the fixed CLIMS class and background '
                        'prompts of --classes instead of a corpus')
    parser.add_argument('--model', default='ViT-L-14-quickgelu',
                        help='open_clip architecture, or local-dir:<folder> '
                        '(default: ViT-L-14-quickgelu, for OpenAI weights)')
    parser.add_argument('--pretrained', default=None,
                        help='local weights file (required unless --model is '
                        'local-dir:...)')
    parser.add_argument('--out', required=True,
                        help='output prefix (.safetensors and .json added)')
    parser.add_argument('--classes', choices=('voc', 'coco'), default='voc',
                        help='dataset class list, in label order '
                        '(default: voc)')
    parser.add_argument('--prompt', default=TEXT_PROMPT,
                        help=f'text prompt (default: {TEXT_PROMPT!r})')
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--batch-size', type=int, default=256)
    parser.add_argument('--no-reuse', action='store_true',
                        help='re-encode everything even if a matching cache '
                        'exists at --out')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.clims_prompts:
        index = build_prompt_text_cache(
            args.model, args.pretrained, args.out,
            get_classes(args.classes),
            clims_class_prompts(get_classes(args.classes)),
            clims_background_prompts(args.classes), device=args.device)
        print(f'{len(index["class_names"])} class and '
              f'{len(index["strings"])} background prompts (dim '
              f'{index["dim"]}) -> {args.out}.safetensors / {args.out}.json')
        return 0
    corpus = load_corpus(args.corpus)
    index = build_text_cache(
        corpus, args.model, args.pretrained, args.out, prompt=args.prompt,
        batch_size=args.batch_size, device=args.device, progress=True,
        class_names=get_classes(args.classes), reuse=not args.no_reuse)
    n_pairs = sum(len(v) for v in index['pairs'].values())
    print(f'{len(index["strings"])} unique texts for {n_pairs} pairs '
          f'(dim {index["dim"]}) -> {args.out}.safetensors / {args.out}.json')
    return 0


if __name__ == '__main__':
    sys.exit(main())
