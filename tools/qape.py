"""QAPE stage 1a: ask the VQA questions for every (image, labelled class) pair.

Writes ``<out-dir>/corpus.json`` (raw answers, lemmas and post-processed
texts; see ``qaclims_mm/qape/corpus.py``). Resumable: rerun the same command
after a crash and it continues where it stopped. One run at a time per
``--out-dir`` (a second one stops with an error naming the folder's lock);
on a filesystem without ``flock`` (some NFS / FUSE mounts) the run stops
with an error, and ``--no-lock`` runs there without the lock (then make sure
yourself that no other run writes that folder).

As the official ``get_blip_vqa_results.py``, every image of the labels file
is asked (for VOC, ``cls_labels`` covers train_aug and val: 12,031 images,
18,605 pairs); ``--split-file`` or ``--split-only`` restrict it to a split.

Examples::

    # every labelled image of a dataset config's data (train_aug + val)
    python tools/qape.py --config configs/_base_/datasets/voc12_wsss.py \
        --model-path checkpoints/blip-vqa-capfilt-large --out-dir work_dirs/qape_voc

    # explicit files, 2 GPUs
    torchrun --nproc_per_node 2 tools/qape.py \
        --img-dir data/VOCdevkit/VOC2012/JPEGImages \
        --labels-file data/VOCdevkit/VOC2012/cls_labels.json --classes voc \
        --model-path checkpoints/blip-vqa-capfilt-large --out-dir work_dirs/qape_voc

Get the official model (BLIP ViT-B CapFilt-L VQA) on a machine with internet:
``huggingface-cli download Salesforce/blip-vqa-capfilt-large --local-dir
checkpoints/blip-vqa-capfilt-large``.
"""
import argparse
import json
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

import qaclims_mm  # noqa: E402,F401
from qaclims_mm.qape.stage import ENGINES, make_qa_corpus  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split('\n')[0],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    src = parser.add_argument_group('images and labels (a config OR files)')
    src.add_argument('--config', help='dataset/model config: every image '
                     'of the labels file of its <--dataset-split>.dataset '
                     'is asked')
    src.add_argument('--dataset-split', default='train_dataloader',
                     help='which dataloader of --config (default: '
                     'train_dataloader)')
    src.add_argument('--split-only', action='store_true',
                     help='with --config: ask only the images of the '
                     "dataset's split (ann_file), not every labelled image")
    src.add_argument('--cfg-options', nargs='+', default=[], metavar='K=V',
                     help='config overrides, e.g. '
                     'train_dataloader.dataset.data_root=/data/VOC2012')
    src.add_argument('--split-file', help='ask only these image ids (one '
                     'per line); default: every image in --labels-file, '
                     'as the official tool')
    src.add_argument('--img-dir', help='folder of <id><--img-suffix>')
    src.add_argument('--img-suffix', default='.jpg')
    src.add_argument('--labels-file',
                     help='labels JSON (an official cls_labels.npy: convert '
                     'it once, tools/convert_official_labels.py)')
    src.add_argument('--classes', default='voc', choices=['voc', 'coco'])

    eng = parser.add_argument_group('engine')
    eng.add_argument('--engine', default='blip', choices=sorted(ENGINES))
    eng.add_argument('--model-path', required=True,
                     help='local model folder (or a hub id in the HF cache)')
    eng.add_argument('--device', default=None,
                     help='default: cuda:<LOCAL_RANK> if available, else cpu')
    eng.add_argument('--dtype', default='auto',
                     choices=['auto', 'fp32', 'fp16', 'bf16'])
    eng.add_argument('--batch-size', type=int, default=64,
                     help='questions per forward pass (default: 64)')
    eng.add_argument('--image-size', type=int, default=None,
                     help='blip: input size (default: 480, official)')
    eng.add_argument('--engine-options', default=None,
                     help='JSON dict of further engine arguments, e.g. '
                     '\'{"prompt": "{question} Answer briefly."}\'')

    parser.add_argument('--questions', default=None,
                        help='question-set config: a .json file or a .py '
                        'config with a "questions" dict (default: official '
                        '6 FG + 10 BG)')
    parser.add_argument('--out-dir', required=True)
    parser.add_argument('--chunk-images', type=int, default=32,
                        help='images per engine call and per shard '
                        '(default: 32)')
    parser.add_argument('--num-workers', type=int, default=2,
                        help='image-loading workers per process (default: 2)')
    parser.add_argument('--no-progress', action='store_true')
    parser.add_argument('--no-lock', action='store_true',
                        help='do not lock --out-dir (only for a filesystem '
                        'without flock, where the locked run fails; nothing '
                        'then stops a second run into the folder)')
    args = parser.parse_args(argv)
    files = (args.split_file, args.img_dir, args.labels_file)
    if bool(args.config) == any(files):
        parser.error('give either --config or --img-dir/--labels-file '
                     '[--split-file]')
    if not args.config and not (args.img_dir and args.labels_file):
        parser.error('--img-dir and --labels-file go together')
    if args.split_only and not args.config:
        parser.error('--split-only goes with --config (with files, give '
                     '--split-file)')
    if args.image_size is not None and args.engine != 'blip':
        parser.error('--image-size is a blip option (the vlm engine uses its '
                     "processor's size)")
    return args


def parse_cfg_options(pairs):
    """``['a.b=1', 'c=x']`` -> ``{'a.b': 1, 'c': 'x'}`` (mmengine parsing)."""
    if not pairs:
        return None
    from mmengine.config import DictAction
    ns = argparse.Namespace()
    DictAction(option_strings=[], dest='opts')(None, ns, pairs)
    return ns.opts


def main(argv=None) -> None:
    args = parse_args(argv)
    corpus = make_qa_corpus(
        args.out_dir, args.model_path, args.engine, args.config,
        args.dataset_split, args.split_only,
        parse_cfg_options(args.cfg_options), args.split_file, args.img_dir,
        args.labels_file, args.classes, args.img_suffix, args.device,
        args.dtype, args.batch_size, args.image_size,
        json.loads(args.engine_options) if args.engine_options else None,
        args.questions, args.chunk_images, args.num_workers,
        not args.no_progress, lock=not args.no_lock)
    if corpus is not None:
        print(f'QA corpus written: {corpus}')


if __name__ == '__main__':
    main()
