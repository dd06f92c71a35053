"""Writing a synthetic dataset in the PASCAL VOC 2012 + SBD layouts.

The written layout (``<out_dir>`` = ``make_synthetic_voc(out_dir)``)::

    VOC2012/JPEGImages/<id>.jpg          every image (train, val, aug-only)
    VOC2012/Annotations/<id>.xml         every image, VOC XML schema
    VOC2012/SegmentationClass/<id>.png   train + val ids, palette PNG, 255 void
    VOC2012/ImageSets/Segmentation/{train,val,trainval}.txt
    VOC2012/ImageSets/Main/{train,val,trainval}.txt   train = train + aug
    SBD/cls/<id>.mat                     VOC-train + aug-only ids, GTcls struct
    SBD/img/<id>.jpg                     the same JPEG bytes as VOC2012
    SBD/{train,val}.txt                  SBD split (every 5th image in val)
    world_descriptions.jsonl             with describe=True only: what a
                                         describer says about every image
                                         (:mod:`.describe`); read by no
                                         pipeline stage

Image ``k`` of a split uses its own generator seeded with ``[seed, split, k]``
(:data:`SPLIT_CODES`), so it does not depend on how many images the other
splits hold, and the same arguments give byte-identical files.
"""
import os
import os.path as osp
import shutil
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Dict, List, Tuple

import numpy as np

from ..utils.io import atomic_write_bytes, atomic_write_text
from .describe import DESCRIPTIONS_FILE, describe_image, descriptions_jsonl
from .formats import (encode_jpeg, encode_label_png, encode_sbd_mat,
                      voc_annotation_xml)
from .render import render_synthetic_image

#: Split name -> the code mixed into each image's random seed.
SPLIT_CODES: Dict[str, int] = {'train': 0, 'val': 1, 'aug': 2}

# An id is f'{year}_{number:06d}': the year cycles through 2007..2012 and the
# number starts at a split-specific base, so ids never collide across splits.
_ID_YEARS = tuple(range(2007, 2013))
_ID_BASES = {'train': 0, 'val': 300000, 'aug': 600000}
_MAX_IMAGES_PER_SPLIT = 6 * 299999
_MIN_LONG_SIDE = 32


def synthetic_image_id(split: str, index: int) -> str:
    """The VOC-style id (``'2009_300002'``) of image ``index`` of ``split``.

    Ids are unique across the ``'train'``, ``'val'`` and ``'aug'`` splits and
    do not depend on the number of images in any split.
    """
    year = _ID_YEARS[index % len(_ID_YEARS)]
    return f'{year}_{_ID_BASES[split] + index // len(_ID_YEARS) + 1:06d}'


# --------------------------------------------------------------------------
# The dataset
# --------------------------------------------------------------------------
def _check_args(num_train: int, num_val: int, num_aug: int, min_long: int,
                max_long: int, seed: int, max_objects: int) -> None:
    for name, value, least in (('num_train', num_train, 1),
                               ('num_val', num_val, 1),
                               ('num_aug', num_aug, 0),
                               ('max_objects', max_objects, 1),
                               ('seed', seed, 0)):
        if int(value) != value or value < least:
            raise ValueError(f'{name} must be an integer >= {least}, '
                             f'got {value!r}')
    for name, value in (('num_train', num_train), ('num_val', num_val),
                        ('num_aug', num_aug)):
        if value > _MAX_IMAGES_PER_SPLIT:
            raise ValueError(f'{name} must be <= {_MAX_IMAGES_PER_SPLIT}, '
                             f'got {value}')
    if min_long < _MIN_LONG_SIDE:
        raise ValueError(f'min_long must be >= {_MIN_LONG_SIDE} pixels, '
                         f'got {min_long}')
    if min_long > max_long:
        raise ValueError(f'min_long ({min_long}) must not exceed max_long '
                         f'({max_long})')


def _prepare_out_dir(out_dir: str, overwrite: bool) -> None:
    if osp.exists(out_dir) and not osp.isdir(out_dir):
        raise FileExistsError(f'output path {out_dir} exists and is not a '
                              f'folder')
    if osp.isdir(out_dir) and os.listdir(out_dir):
        if not overwrite:
            raise FileExistsError(
                f'output folder {out_dir} is not empty; pass overwrite=True '
                f'(--overwrite) to regenerate the dataset there')
        for sub in ('VOC2012', 'SBD'):  # only what this generator writes
            if osp.isdir(osp.join(out_dir, sub)):
                shutil.rmtree(osp.join(out_dir, sub))
        side_file = osp.join(out_dir, DESCRIPTIONS_FILE)
        if osp.isfile(side_file):  # never leave a stale description
            os.remove(side_file)
    os.makedirs(out_dir, exist_ok=True)


def make_synthetic_voc(out_dir: str,
                       num_train: int = 24,
                       num_val: int = 12,
                       num_aug: int = 24,
                       min_long: int = 96,
                       max_long: int = 128,
                       seed: int = 0,
                       max_objects: int = 3,
                       progress: bool = True,
                       overwrite: bool = False,
                       describe: bool = False) -> Dict[str, object]:
    """Write a synthetic PASCAL VOC 2012 + SBD look-alike to ``out_dir``.

    VOC ``train`` and ``val`` images get ``SegmentationClass`` PNGs; VOC
    ``train`` and the aug-only images get SBD ``cls/*.mat`` masks (so the
    usual ``train_aug`` = SBD + VOC train - VOC val works); every image gets a
    JPEG and an XML annotation. See this module's docstring for the layout.

    Args:
        out_dir (str): Output folder; ``VOC2012/`` and ``SBD/`` are created
            in it.
        num_train (int): VOC segmentation train images (>= 1). Defaults to 24.
        num_val (int): VOC segmentation val images (>= 1). Defaults to 12.
        num_aug (int): Extra images with SBD masks only. Defaults to 24.
        min_long (int): Smallest image long side, >= 32. Defaults to 96.
        max_long (int): Largest image long side. Defaults to 128.
        seed (int): Dataset seed (>= 0). Defaults to 0.
        max_objects (int): Most object instances per image. Defaults to 3.
        progress (bool): Show a progress bar. Defaults to True.
        overwrite (bool): Allow a non-empty ``out_dir``; its ``VOC2012/`` and
            ``SBD/`` folders are deleted and regenerated (nothing else is
            touched). Defaults to False.
        describe (bool): Also write the side file
            ``<out_dir>/world_descriptions.jsonl`` (one
            :func:`~.describe.describe_image` record per image, sorted by
            id), the training data of the synthetic world's models. It does
            not change any other file. Defaults to False.

    Returns:
        dict: A summary with keys ``out_dir``, ``voc_root``, ``sbd_root``,
        ``train_ids``, ``val_ids``, ``aug_ids``, ``sbd_train_ids``,
        ``sbd_val_ids`` (sorted id lists), ``num_images`` (int),
        ``contexts`` (id -> scene name in :data:`CONTEXTS`) and ``labels``
        (id -> sorted tuple of 0-based class indices); with ``describe``
        also ``descriptions`` (the side file's path).

    Raises:
        ValueError: For a bad count, size or seed.
        FileExistsError: When ``out_dir`` is not empty and ``overwrite`` is
            False (the message names the folder).
    """
    from tqdm import tqdm

    _check_args(num_train, num_val, num_aug, min_long, max_long, seed,
                max_objects)
    _prepare_out_dir(out_dir, overwrite)
    voc_root = osp.join(out_dir, 'VOC2012')
    sbd_root = osp.join(out_dir, 'SBD')
    for folder in (osp.join(voc_root, 'JPEGImages'),
                   osp.join(voc_root, 'Annotations'),
                   osp.join(voc_root, 'SegmentationClass'),
                   osp.join(voc_root, 'ImageSets', 'Segmentation'),
                   osp.join(voc_root, 'ImageSets', 'Main'),
                   osp.join(sbd_root, 'cls'), osp.join(sbd_root, 'img')):
        os.makedirs(folder, exist_ok=True)

    ids: Dict[str, List[str]] = {'train': [], 'val': [], 'aug': []}
    sbd_ids: Dict[str, List[str]] = {'train': [], 'val': []}
    contexts: Dict[str, str] = {}
    labels: Dict[str, Tuple[int, ...]] = {}
    descriptions: List[dict] = []
    counts = {'train': num_train, 'val': num_val, 'aug': num_aug}
    total = num_train + num_val + num_aug
    pending: List[Future] = []

    # Files are written by a small thread pool: each atomic write ends with an
    # fsync, which would otherwise dominate the run time.
    with ThreadPoolExecutor(max_workers=8) as pool, \
            tqdm(total=total, desc='synthetic VOC', unit='img',
                 disable=not progress) as bar:

        def write(path: str, data: bytes) -> None:
            pending.append(pool.submit(atomic_write_bytes, path, data))

        for split, count in counts.items():
            for index in range(count):
                image_id = synthetic_image_id(split, index)
                rng = np.random.default_rng([seed, SPLIT_CODES[split], index])
                sample = render_synthetic_image(rng, min_long, max_long,
                                                max_objects)
                h, w = sample.class_map.shape
                jpeg = encode_jpeg(sample.image)
                write(osp.join(voc_root, 'JPEGImages', f'{image_id}.jpg'),
                      jpeg)
                xml = voc_annotation_xml(image_id, w, h, sample.objects,
                                         segmented=split != 'aug')
                write(osp.join(voc_root, 'Annotations', f'{image_id}.xml'),
                      xml.encode('utf-8'))
                if split != 'aug':
                    write(
                        osp.join(voc_root, 'SegmentationClass',
                                 f'{image_id}.png'),
                        encode_label_png(sample.seg_map))
                if split != 'val':
                    write(osp.join(sbd_root, 'cls', f'{image_id}.mat'),
                          encode_sbd_mat(sample.class_map))
                    write(osp.join(sbd_root, 'img', f'{image_id}.jpg'), jpeg)
                    sbd_split = 'val' if index % 5 == 4 else 'train'
                    sbd_ids[sbd_split].append(image_id)
                ids[split].append(image_id)
                contexts[image_id] = sample.context
                labels[image_id] = sample.labels
                if describe:
                    descriptions.append(describe_image(sample, image_id))
                bar.update(1)
        for future in pending:
            future.result()  # re-raise the first failed write

    def write_list(path: str, id_list: List[str]) -> None:
        atomic_write_text(path, ''.join(f'{i}\n' for i in sorted(id_list)))

    seg_sets = osp.join(voc_root, 'ImageSets', 'Segmentation')
    main_sets = osp.join(voc_root, 'ImageSets', 'Main')
    write_list(osp.join(seg_sets, 'train.txt'), ids['train'])
    write_list(osp.join(seg_sets, 'val.txt'), ids['val'])
    write_list(osp.join(seg_sets, 'trainval.txt'), ids['train'] + ids['val'])
    write_list(osp.join(main_sets, 'train.txt'), ids['train'] + ids['aug'])
    write_list(osp.join(main_sets, 'val.txt'), ids['val'])
    write_list(
        osp.join(main_sets, 'trainval.txt'),
        ids['train'] + ids['val'] + ids['aug'])
    write_list(osp.join(sbd_root, 'train.txt'), sbd_ids['train'])
    write_list(osp.join(sbd_root, 'val.txt'), sbd_ids['val'])

    summary = {
        'out_dir': out_dir,
        'voc_root': voc_root,
        'sbd_root': sbd_root,
        'train_ids': sorted(ids['train']),
        'val_ids': sorted(ids['val']),
        'aug_ids': sorted(ids['aug']),
        'sbd_train_ids': sorted(sbd_ids['train']),
        'sbd_val_ids': sorted(sbd_ids['val']),
        'num_images': total,
        'contexts': contexts,
        'labels': labels,
    }
    if describe:
        summary['descriptions'] = osp.join(out_dir, DESCRIPTIONS_FILE)
        atomic_write_text(summary['descriptions'],
                          descriptions_jsonl(descriptions))
    return summary
