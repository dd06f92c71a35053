"""Benchmark: official one-question VQA loop vs. the batched BLIP engine.

Both paths run the same BLIP VQA model on the same images and questions:

(a) naive, as the official ``get_blip_vqa_results.py`` (spec §9.2 item 10):
    one ``model.generate`` per question, batch 1, the image re-encoded by the
    ViT every time (:meth:`BlipVQAEngine.answer_naive`);
(b) ours: :meth:`BlipVQAEngine.answer`, one ViT pass per image, questions of
    all images batched.

The answers must be identical. Without ``--model-path`` a tiny random BLIP is
built in a temporary folder: 480-px input with 16-px patches (901 image
tokens, as the real ViT-B at 480 px) and a narrow text side, so the image
encoder dominates a question as it does in the real model. With
``--model-path`` (e.g. ``checkpoints/blip-vqa-capfilt-large``) the real model
is timed, typically with ``--device cuda --dtype fp16``.

Pairs are (image, class) pairs of 16 questions (6 FG + 10 BG) each. The last
line printed is ``speedup: <naive time / batched time>``.

Usage::

    python benchmarks/qape_throughput.py [--num-images 16] [--classes 1]
        [--model-path DIR --device cuda --dtype fp16] [--batch-size 64]
"""
import argparse
import os.path as osp
import sys
import tempfile
import time

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from qaclims_mm.datasets.class_names import VOC_CLASSES  # noqa: E402
from qaclims_mm.qape.engines.blip import BlipVQAEngine  # noqa: E402
from qaclims_mm.qape.questions import QuestionSet  # noqa: E402
from qaclims_mm.testing import build_tiny_blip_vqa  # noqa: E402


def make_images(num: int, seed: int = 0) -> list:
    """VOC-sized random images made of a few coloured blocks."""
    rng = np.random.default_rng(seed)
    images = []
    for _ in range(num):
        h, w = rng.choice([(375, 500), (500, 375), (333, 500)])
        coarse = rng.integers(0, 256, (4, 5, 3), dtype=np.uint8)
        images.append(Image.fromarray(coarse).resize((w, h), Image.NEAREST))
    return images


def sync(device: torch.device) -> None:
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def make_questions(num_images: int, classes: int, seed: int = 1) -> list:
    """The 16 QAPE questions (6 FG + 10 BG) of ``classes`` random VOC
    classes per image, one flat list per image."""
    qs = QuestionSet()
    rng = np.random.default_rng(seed)
    questions = []
    for _ in range(num_images):
        names = rng.choice(VOC_CLASSES, classes, replace=False)
        questions.append([q for n in names for q in
                          qs.format('fg', n) + qs.format('bg', n)])
    return questions


def compare_paths(engine: BlipVQAEngine, images: list, questions: list,
                  max_seconds: float = float('inf')) -> dict:
    """Answer with the official one-question loop, then with the batched
    engine, on the same images and questions.

    The loop stops after the first image that ends past ``max_seconds``; the
    batched path then answers the same images.

    Returns:
        dict: ``images`` (how many were answered), ``questions``,
        ``t_naive``, ``t_batched`` (seconds), ``mismatches`` (answers that
        differ), ``naive`` and ``batched`` (the answers).
    """
    engine.answer(images[:1], [questions[0][:2]])  # warm-up
    sync(engine.device)
    naive = []
    t0 = time.perf_counter()
    for img, qq in zip(images, questions):
        naive.append([engine.answer_naive(img, q) for q in qq])
        sync(engine.device)
        if time.perf_counter() - t0 > max_seconds:
            break
    t_naive = time.perf_counter() - t0
    n = len(naive)
    t0 = time.perf_counter()
    batched = engine.answer(images[:n], questions[:n])
    sync(engine.device)
    t_batched = time.perf_counter() - t0
    diff = sum(a != b for x, y in zip(batched, naive) for a, b in zip(x, y))
    return dict(images=n, questions=sum(len(q) for q in questions[:n]),
                t_naive=t_naive, t_batched=t_batched, mismatches=diff,
                naive=naive, batched=batched)


def main(argv=None) -> float:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--num-images', type=int, default=16)
    parser.add_argument('--classes', type=int, default=1,
                        help='labelled classes per image (default: 1)')
    parser.add_argument('--model-path', default=None,
                        help='real BLIP VQA folder; default: a tiny random '
                        'BLIP in a temp folder')
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--dtype', default='auto')
    parser.add_argument('--batch-size', type=int, default=64)
    parser.add_argument('--threads', type=int, default=None,
                        help='torch CPU threads')
    parser.add_argument('--max-mismatch-rate', type=float, default=0.0,
                        help='tolerated fraction of differing answers '
                        '(default 0: identical). In fp16/bf16 on a GPU the '
                        'kernels picked for different batch shapes may round '
                        'differently and flip a near-tied beam.')
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    with tempfile.TemporaryDirectory() as tmp:
        model_path = args.model_path or build_tiny_blip_vqa(
            osp.join(tmp, 'tiny_blip'), image_size=480, patch_size=16,
            hidden_size=64, vision_layers=4, text_layers=2)
        engine = BlipVQAEngine(model_path, device=args.device,
                               dtype=args.dtype, image_size=480,
                               batch_size=args.batch_size)
        images = make_images(args.num_images)
        questions = make_questions(args.num_images, args.classes)
        num_pairs = args.num_images * args.classes
        num_questions = sum(len(q) for q in questions)
        print(f'model: {model_path if args.model_path else "tiny random BLIP"}'
              f' | device {engine.device} | dtype {engine.dtype} | '
              f'{args.num_images} images, {num_pairs} pairs, '
              f'{num_questions} questions')
        r = compare_paths(engine, images, questions)
        t_naive, t_batched = r['t_naive'], r['t_batched']

    diff = r['mismatches']
    if diff > args.max_mismatch_rate * num_questions:
        raise AssertionError(f'{diff} of {num_questions} answers differ '
                             f'between the batched and the naive path')
    print(f'answers identical: {"yes" if diff == 0 else "no"} '
          f'({diff} of {num_questions} differ)')
    print(f'naive  : {t_naive:8.2f} s  {num_pairs / t_naive:8.2f} pairs/s')
    print(f'batched: {t_batched:8.2f} s  {num_pairs / t_batched:8.2f} '
          f'pairs/s')
    speedup = t_naive / t_batched
    print(f'speedup: {speedup:.2f}')
    return speedup


if __name__ == '__main__':
    main()
