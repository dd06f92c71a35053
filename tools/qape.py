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
import os
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

import torch  # noqa: E402

import qaclims_mm  # noqa: E402,F401
from qaclims_mm.qape.engines.base import build_vqa_engine  # noqa: E402
from qaclims_mm.qape.questions import build_question_set  # noqa: E402
from qaclims_mm.qape.runner import (items_from_dataset_config,  # noqa: E402
                                    items_from_files, run_qape)

ENGINES = dict(blip='BlipVQAEngine', vlm='ImageTextToTextVQAEngine')


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
    src.add_argument('--labels-file', help='labels JSON or cls_labels.npy')
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


def load_question_cfg(path):
    """``--questions``: JSON, or a .py config with ``questions = dict()``."""
    if path is None:
        return None
    if not osp.isfile(path):
        raise FileNotFoundError(f'--questions file not found: {path}')
    if path.endswith('.json'):
        with open(path, encoding='utf-8') as f:
            return json.load(f)
    from mmengine.config import Config
    cfg = Config.fromfile(path)
    if 'questions' not in cfg:
        raise KeyError(f'{path}: no "questions" dict in the config')
    return cfg.questions.to_dict() if hasattr(cfg.questions, 'to_dict') \
        else dict(cfg.questions)


def parse_cfg_options(pairs):
    """``['a.b=1', 'c=x']`` -> ``{'a.b': 1, 'c': 'x'}`` (mmengine parsing)."""
    if not pairs:
        return None
    from mmengine.config import DictAction
    ns = argparse.Namespace()
    DictAction(option_strings=[], dest='opts')(None, ns, pairs)
    return ns.opts


def init_distributed():
    """Initialise torch.distributed under torchrun; returns the local rank."""
    if int(os.environ.get('WORLD_SIZE', '1')) <= 1:
        return None
    local_rank = int(os.environ.get('LOCAL_RANK', '0'))
    if torch.cuda.is_available():
        torch.cuda.set_device(local_rank)
        backend = 'nccl'
    else:
        backend = 'gloo'
    if not torch.distributed.is_initialized():
        torch.distributed.init_process_group(backend=backend)
    return local_rank


def main(argv=None) -> None:
    args = parse_args(argv)
    local_rank = init_distributed()
    device = args.device
    if device is None:
        device = (f'cuda:{local_rank or 0}' if torch.cuda.is_available()
                  else 'cpu')
    if args.config:
        items = items_from_dataset_config(
            args.config, args.dataset_split,
            cfg_options=parse_cfg_options(args.cfg_options),
            split_only=args.split_only)
        source = dict(config=osp.abspath(args.config),
                      dataloader=args.dataset_split,
                      images='split' if args.split_only else 'labels_file')
    else:
        items = items_from_files(args.split_file, args.img_dir,
                                 args.labels_file, args.classes,
                                 args.img_suffix)
        source = dict(split_file=(osp.abspath(args.split_file)
                                  if args.split_file else None),
                      img_dir=osp.abspath(args.img_dir),
                      labels_file=osp.abspath(args.labels_file),
                      classes=args.classes,
                      images='split' if args.split_file else 'labels_file')
    engine_cfg = dict(type=ENGINES[args.engine], model_path=args.model_path,
                      device=device, dtype=args.dtype,
                      batch_size=args.batch_size)
    if args.image_size is not None:
        engine_cfg['image_size'] = args.image_size
    if args.engine_options:
        engine_cfg.update(json.loads(args.engine_options))
    engine = build_vqa_engine(engine_cfg)
    question_set = build_question_set(load_question_cfg(args.questions))
    corpus = run_qape(engine, items, question_set, args.out_dir,
                      chunk_images=args.chunk_images,
                      num_workers=args.num_workers,
                      progress=not args.no_progress,
                      meta=dict(source=source),
                      lock=not args.no_lock)
    if corpus is not None:
        print(f'QA corpus written: {corpus}')
    if torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


if __name__ == '__main__':
    main()
