"""QAPE stage 1a as one call: images + engine + questions -> QA corpus.

:func:`make_qa_corpus` is what ``tools/qape.py`` runs: it collects the
(image, labelled class) pairs from a dataset config or from files, builds the
VQA engine and the question set, and runs :func:`~qaclims_mm.qape.runner.
run_qape` (resumable, sharded over ``torchrun`` ranks).
"""
import json
import os
import os.path as osp
from typing import Any, Dict, Optional

#: The VQA engine types behind ``--engine``.
ENGINES = dict(blip='BlipVQAEngine', vlm='ImageTextToTextVQAEngine')


def load_question_cfg(path: Optional[str]) -> Optional[Dict]:
    """A question-set config: JSON, or a .py config with ``questions``."""
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
    questions = cfg.questions
    return questions.to_dict() if hasattr(questions, 'to_dict') else dict(
        questions)


def init_distributed() -> Optional[int]:
    """Initialise torch.distributed under torchrun; return the local rank."""
    import torch
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


def make_qa_corpus(out_dir: str,
                   model_path: str,
                   engine: str = 'blip',
                   config: Optional[str] = None,
                   dataset_split: str = 'train_dataloader',
                   split_only: bool = False,
                   cfg_options: Optional[Dict] = None,
                   split_file: Optional[str] = None,
                   img_dir: Optional[str] = None,
                   labels_file: Optional[str] = None,
                   classes: str = 'voc',
                   img_suffix: str = '.jpg',
                   device: Optional[str] = None,
                   dtype: str = 'auto',
                   batch_size: int = 64,
                   image_size: Optional[int] = None,
                   engine_options: Optional[Dict[str, Any]] = None,
                   questions: Optional[str] = None,
                   chunk_images: int = 32,
                   num_workers: int = 2,
                   progress: bool = True,
                   lock: bool = True):
    """Ask the VQA questions for every (image, labelled class) pair.

    The images come from ``config`` (its ``dataset_split`` dataloader: every
    image of its labels file, or its split with ``split_only``) or from
    files (``img_dir`` + ``labels_file`` [+ ``split_file``]).

    Under ``torchrun`` it initialises ``torch.distributed`` unless a process
    group exists already (then that group's ranks share the work), and
    destroys only a group it initialised itself.

    Args:
        out_dir (str): Output folder (``corpus.json``, shards, settings).
        model_path (str): Local model folder of the engine.
        engine (str): ``'blip'`` or ``'vlm'``. Defaults to ``'blip'``.
        config (str, optional): A dataset / model config.
        dataset_split (str): Its dataloader. Defaults to
            ``'train_dataloader'``.
        split_only (bool): Only the dataset's split. Defaults to False.
        cfg_options (dict, optional): Config overrides.
        split_file (str, optional): Image ids to ask (files mode).
        img_dir (str, optional): Image folder (files mode).
        labels_file (str, optional): Labels JSON / npy (files mode).
        classes (str): ``'voc'`` or ``'coco'`` (files mode).
        img_suffix (str): Image suffix (files mode). Defaults to ``'.jpg'``.
        device (str, optional): Defaults to ``cuda:<LOCAL_RANK>`` if
            available, else cpu.
        dtype (str): Engine dtype. Defaults to ``'auto'``.
        batch_size (int): Questions per forward pass. Defaults to 64.
        image_size (int, optional): BLIP input size.
        engine_options (dict, optional): Further engine arguments.
        questions (str, optional): Question-set file (default: official).
        chunk_images (int): Images per engine call and shard. Defaults to 32.
        num_workers (int): Image-loading workers. Defaults to 2.
        progress (bool): Show progress. Defaults to True.
        lock (bool): Hold the output folder's lock while writing (see
            :func:`~.runner.lock_out_dir`); False only on filesystems
            without ``flock``. Defaults to True.

    Returns:
        The corpus (rank 0; None on other ranks).
    """
    import torch

    from .engines.base import build_vqa_engine
    from .questions import build_question_set
    from .runner import items_from_dataset_config, items_from_files, run_qape
    if bool(config) == bool(img_dir or labels_file or split_file):
        raise ValueError('give either a config or img_dir/labels_file '
                         '[split_file]')
    if engine not in ENGINES:
        raise ValueError(f'engine must be one of {sorted(ENGINES)}, got '
                         f'{engine!r}')
    # a process group that exists (e.g. the pipeline runner's) is used and
    # left alone; only one initialised here is destroyed at the end
    created_group = not (torch.distributed.is_available()
                         and torch.distributed.is_initialized())
    local_rank = init_distributed()
    if device is None:
        device = (f'cuda:{local_rank or 0}' if torch.cuda.is_available()
                  else 'cpu')
    if config:
        items = items_from_dataset_config(config, dataset_split,
                                          cfg_options=cfg_options,
                                          split_only=split_only)
        source = dict(config=osp.abspath(config), dataloader=dataset_split,
                      images='split' if split_only else 'labels_file')
    else:
        items = items_from_files(split_file, img_dir, labels_file, classes,
                                 img_suffix)
        source = dict(
            split_file=osp.abspath(split_file) if split_file else None,
            img_dir=osp.abspath(img_dir),
            labels_file=osp.abspath(labels_file), classes=classes,
            images='split' if split_file else 'labels_file')
    engine_cfg = dict(type=ENGINES[engine], model_path=model_path,
                      device=device, dtype=dtype, batch_size=batch_size)
    if image_size is not None:
        engine_cfg['image_size'] = image_size
    engine_cfg.update(engine_options or {})
    corpus = run_qape(build_vqa_engine(engine_cfg),
                      items,
                      build_question_set(load_question_cfg(questions)),
                      out_dir,
                      chunk_images=chunk_images,
                      num_workers=num_workers,
                      progress=progress,
                      meta=dict(source=source),
                      lock=lock)
    if created_group and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()
    return corpus
