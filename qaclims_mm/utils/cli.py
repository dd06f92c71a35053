"""Argument groups and error handling shared by the ``tools/`` fronts.

Each rule a tool's command line follows is written once here: which image
ids a split file lists, how ``--dataset`` / ``--num-classes`` give the class
names of an evaluation, the options of a tool that writes one PNG per image,
and how a stage's ``OSError`` / ``ValueError`` (which name the image or
folder) become a one-line ``error:`` exit; the launcher options of the
runner fronts.
"""
import argparse
import os
from typing import Any, Callable, List, Optional, Sequence, TypeVar

from mmengine.config import DictAction

from .io import read_split
from .metainfo import DEFAULT_DATASET, dataset_metainfo

T = TypeVar('T')


def add_split_args(parser: argparse.ArgumentParser, *, input_arg: str,
                   input_help: str) -> None:
    """Add the required input folder (``input_arg``) and ``--split-file``.

    Args:
        parser (argparse.ArgumentParser): The tool's parser.
        input_arg (str): Option of the input folder, e.g. ``'--cam-dir'``.
        input_help (str): Its help text.
    """
    parser.add_argument(input_arg, required=True, help=input_help)
    parser.add_argument('--split-file', required=True, help='image-id list')


def add_class_names_args(parser: argparse.ArgumentParser) -> None:
    """Add ``--dataset`` (optional) and ``--num-classes`` for the class names
    of a report; read them with :func:`class_names_from_args`."""
    parser.add_argument(
        '--dataset', help='dataset type or config: class names (default: '
        f'{DEFAULT_DATASET}; generic names when only --num-classes is '
        'given)')
    parser.add_argument('--num-classes', type=int, help='object classes')


def class_names_from_args(args: argparse.Namespace) -> Sequence[str]:
    """Class names (background first) from ``--dataset`` /
    ``--num-classes``: the dataset's metainfo, the default dataset when
    neither is given, generic names when only ``--num-classes`` is."""
    dataset = args.dataset or (None if args.num_classes else DEFAULT_DATASET)
    return dataset_metainfo(dataset, args.num_classes)['classes']


def add_label_writer_args(parser: argparse.ArgumentParser,
                          nproc: int) -> None:
    """Add the options of a tool that writes one palette PNG per image:
    ``--out-dir``, ``--dataset`` (the palette), ``--nproc``, ``--overwrite``.

    Args:
        parser (argparse.ArgumentParser): The tool's parser.
        nproc (int): Default of ``--nproc`` (CPU processes).
    """
    parser.add_argument('--out-dir', required=True,
                        help='folder for the PNGs')
    parser.add_argument('--dataset', default=DEFAULT_DATASET,
                        help='dataset type or config: palette and classes')
    parser.add_argument('--nproc', type=int, default=nproc,
                        help='CPU processes')
    parser.add_argument('--overwrite', action='store_true',
                        help='rewrite existing PNGs (and other settings)')


def dataset_palette(args: argparse.Namespace) -> Any:
    """The palette of ``--dataset`` (see :func:`add_label_writer_args`)."""
    return dataset_metainfo(args.dataset)['palette']


def read_split_or_exit(split_file: str) -> List[str]:
    """Image ids of ``split_file`` to evaluate; an empty list exits with an
    error naming the file (an evaluation of nothing).

    Args:
        split_file (str): Image-id list.

    Returns:
        list[str]: The ids (at least one).
    """
    img_ids = read_split(split_file)
    if not img_ids:
        raise SystemExit(f'error: the split file {split_file} lists no '
                         f'image id; nothing to evaluate')
    return img_ids


def check_or_error(parser: argparse.ArgumentParser,
                   check: Callable[[], None],
                   rename: Optional[dict] = None) -> None:
    """Run ``check``; its ``ValueError`` becomes ``parser.error`` (usage and
    exit 2), with argument names replaced by ``rename`` (e.g.
    ``{'fg_thr': '--fg-thr'}``)."""
    try:
        check()
    except ValueError as e:
        msg = str(e)
        for name, option in (rename or {}).items():
            msg = msg.replace(name, option)
        parser.error(msg)


def run_or_exit(stage: Callable[..., T], *args, **kwargs) -> T:
    """Call ``stage``; its ``OSError`` / ``ValueError`` (which name the
    image or folder) exit with ``error: <message>`` and no traceback."""
    try:
        return stage(*args, **kwargs)
    except (OSError, ValueError) as e:
        raise SystemExit(f'error: {e}') from None


def add_launcher_args(parser: argparse.ArgumentParser) -> None:
    """Add the options every runner front (``tools/train.py``,
    ``tools/test.py``) shares with MMSegmentation's tools:
    ``--cfg-options``, ``--launcher`` and ``--local_rank``; parse with
    :func:`parse_launcher_args`."""
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings, key=value')
    parser.add_argument('--launcher', default='none',
                        choices=['none', 'pytorch', 'slurm', 'mpi'])
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)


def parse_launcher_args(parser: argparse.ArgumentParser,
                        argv: Optional[Sequence[str]] = None
                        ) -> argparse.Namespace:
    """Parse ``argv`` and export ``--local_rank`` as ``LOCAL_RANK`` unless
    the launcher (``torch.distributed.run``) has set it already."""
    args = parser.parse_args(argv)
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def add_trust_pickle_arg(parser: argparse.ArgumentParser,
                         files: str = 'the .npy files',
                         when: str = 'required') -> None:
    """Add ``--trust-pickle``, the explicit opt-in a converter of official
    (pickled) files needs; check it with :func:`require_trust_pickle`.

    Args:
        parser (argparse.ArgumentParser): The tool's parser.
        files (str): What is unpickled, for the help. Defaults to
            ``'the .npy files'``.
        when (str): When the flag is needed, for the help. Defaults to
            ``'required'``.
    """
    parser.add_argument(
        '--trust-pickle', action='store_true',
        help=f'{when}: unpickle {files} (unpickling can run code from a '
        'file; only for files you trust)')


def require_trust_pickle(args: argparse.Namespace, source: str,
                         what: str) -> None:
    """Exit, naming ``source``, unless ``--trust-pickle`` was given.

    Args:
        args (argparse.Namespace): Parsed arguments with ``trust_pickle``.
        source (str): The file or folder to convert.
        what (str): What it holds, e.g. ``'official CAM files are
            pickles'``.
    """
    if not args.trust_pickle:
        raise SystemExit(
            f'{source}: {what}, and unpickling can run code from a file. '
            'Pass --trust-pickle to convert files you trust.')
