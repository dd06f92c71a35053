"""Convert MS COCO 2014 instance annotations to the WSSS layout.

For every split ``s`` (``'train'``, ``'val'``) this reads
``<coco_root>/annotations/instances_{s}2014.json`` and writes, under
``<coco_root>/<out_subdir>/`` (``wsss/`` by default), the files that
:class:`qaclims_mm.datasets.wsss_dataset.COCO14WSSSDataset` reads::

    {s}.txt                     # every image id (file stem), sorted
    cls_labels_{s}.json         # image-level labels (0-based COCO_CLASSES)
    mask/{s}2014/<id>.png       # semantic ground truth (optional)

Conventions:

* **Image ids** are the file stems (``COCO_train2014_000000000009``). Every
  image of the JSON is listed, including the ~1% with no annotation, so that
  evaluation sees the whole split; QA-CLIMS training keeps them (official),
  the CAM and IRN training configs drop them with ``skip_unlabeled=True``.
* **Image-level labels** are the categories of *all* annotations of an image,
  crowd ones included, mapped to 0-based indices through
  :data:`~qaclims_mm.datasets.class_names.COCO_CATEGORY_IDS`. An image with no
  annotation gets ``[]``.
* **Masks** are uint8 palette PNGs (:func:`coco_palette`): 0 is background,
  ``index + 1`` (1..80) an object class. Instances are painted in descending
  pixel-area order (ties by annotation id), so a small object lying on a large
  one stays visible. Crowd regions (``iscrowd=1``, RLE) are painted with their
  class like any other instance, not with 255: they are genuinely that class,
  and their labels count in the image-level labels as well, so the mask and the
  labels agree. No pixel is 255. An image with no annotation is all 0.

The conversion is resumable: masks that already exist are skipped (unless
``overwrite=True``), the split list and the labels file are rewritten only when
their content changes, and every file is written atomically, so a killed run
leaves no half-written PNG behind and can simply be restarted.
"""
import contextlib
import io
import json
import os
import os.path as osp
from dataclasses import dataclass
from typing import Dict, List, Sequence, Tuple

import numpy as np

from ...utils.image_jobs import ImageJobWriter, MapResult
from ...utils.io import atomic_write_text
from ...utils.label_io import label_to_png_bytes
from ..class_names import COCO_CATEGORY_IDS, COCO_CLASSES, coco_palette
from ..labels_file import load_labels_file, save_labels_file

#: COCO category id -> 0-based object-class index.
COCO_CATEGORY_TO_INDEX: Dict[int, int] = {
    cat_id: idx
    for idx, cat_id in enumerate(COCO_CATEGORY_IDS)
}

# The colours of the mask PNGs (background black, then 80 classes).
_PALETTE = coco_palette(81)

# Keys of an annotation that mask rendering needs (the rest is not sent to
# the workers).
_MASK_ANN_KEYS = ('id', 'image_id', 'category_id', 'segmentation', 'iscrowd')


def coco_id_to_stem(split: str, image_id: int) -> str:
    """The file stem of a COCO 2014 image.

    Args:
        split (str): ``'train'`` or ``'val'``.
        image_id (int): The COCO image id.

    Returns:
        str: e.g. ``coco_id_to_stem('train', 9)`` ->
        ``'COCO_train2014_000000000009'``.
    """
    return f'COCO_{split}2014_{int(image_id):012d}'


def stem_to_coco_id(stem: str) -> int:
    """The COCO image id of a stem: ``'COCO_val2014_000000000042'`` -> 42.

    Raises:
        ValueError: when ``stem`` does not end with ``_<digits>``.
    """
    tail = osp.splitext(osp.basename(stem))[0].rsplit('_', 1)[-1]
    if not tail.isdigit():
        raise ValueError(f'not a COCO image stem: {stem!r}')
    return int(tail)


def coco_category_to_index(category_id: int, image: str = '?') -> int:
    """Map a COCO category id (1..90, with gaps) to a 0-based class index.

    Args:
        category_id (int): The ``category_id`` of an annotation.
        image (str): The image the annotation belongs to, for the error
            message. Defaults to ``'?'``.

    Raises:
        ValueError: naming ``image`` and the id, for an id that is not one of
            the 80 COCO categories.
    """
    try:
        return COCO_CATEGORY_TO_INDEX[int(category_id)]
    except KeyError:
        raise ValueError(
            f'image {image}: unknown COCO category id {category_id} (expected '
            f'one of the 80 ids in COCO_CATEGORY_IDS)') from None


def annotation_path(coco_root: str, split: str) -> str:
    """``<coco_root>/annotations/instances_{split}2014.json``."""
    return osp.join(coco_root, 'annotations', f'instances_{split}2014.json')


def load_coco(ann_path: str, verbose: bool = True):
    """Load an instances JSON into a :class:`pycocotools.coco.COCO` object.

    Args:
        ann_path (str): The JSON file.
        verbose (bool): Let pycocotools print its loading messages.
            Defaults to True.

    Raises:
        FileNotFoundError: naming ``ann_path`` when it does not exist.
        ValueError: naming ``ann_path`` when it is not a COCO instances file.
    """
    from pycocotools.coco import COCO

    if not osp.isfile(ann_path):
        raise FileNotFoundError(
            f'COCO annotation file not found: {ann_path} (expected '
            f'<coco_root>/annotations/instances_{{train,val}}2014.json)')
    quiet = (contextlib.nullcontext() if verbose else
             contextlib.redirect_stdout(io.StringIO()))
    try:
        with quiet:
            return COCO(ann_path)
    except (json.JSONDecodeError, KeyError, TypeError, AssertionError) as e:
        raise ValueError(
            f'{ann_path}: not a COCO instances file ({type(e).__name__}: {e})'
        ) from e


def _image_stem(img: dict, split: str) -> str:
    """The id (file stem) of a JSON ``images`` entry."""
    file_name = img.get('file_name')
    if file_name:
        return osp.splitext(osp.basename(file_name))[0]
    return coco_id_to_stem(split, img['id'])


def _check_categories(coco, ann_path: str) -> None:
    """Fail on a category whose name contradicts :data:`COCO_CLASSES`."""
    for cat_id, cat in coco.cats.items():
        idx = COCO_CATEGORY_TO_INDEX.get(int(cat_id))
        name = cat.get('name')
        if idx is not None and name is not None and name != COCO_CLASSES[idx]:
            raise ValueError(
                f'{ann_path}: category id {cat_id} is named {name!r}, but '
                f'COCO_CLASSES[{idx}] is {COCO_CLASSES[idx]!r}; is this an MS '
                f'COCO 2014 instances file?')


def image_level_labels(coco, split: str) -> Tuple[Dict[str, List[int]],
                                                   Dict[str, int]]:
    """Image-level labels of every image of a loaded COCO object.

    Args:
        coco (pycocotools.coco.COCO): The loaded annotations.
        split (str): ``'train'`` or ``'val'`` (names images without a
            ``file_name``).

    Returns:
        tuple[dict[str, list[int]], dict[str, int]]: image id (stem) -> sorted
        unique 0-based class indices (``[]`` for an image with no annotation),
        and image id (stem) -> COCO image id.

    Raises:
        ValueError: naming the image, for an unknown category id or two images
            with the same file stem.
    """
    orphans = sorted(set(coco.imgToAnns) - set(coco.imgs))
    if orphans:
        raise ValueError(f'annotations refer to image ids missing from '
                         f'"images": {orphans[:5]}'
                         f'{" ..." if len(orphans) > 5 else ""}')
    labels: Dict[str, List[int]] = {}
    stem_to_id: Dict[str, int] = {}
    for image_id, img in coco.imgs.items():
        stem = _image_stem(img, split)
        if stem in stem_to_id:
            raise ValueError(f'images {stem_to_id[stem]} and {image_id} share '
                             f'the file stem {stem!r}')
        stem_to_id[stem] = image_id
        classes = {
            coco_category_to_index(ann['category_id'],
                                   f'{stem!r} (COCO id {image_id})')
            for ann in coco.imgToAnns.get(image_id, ())
        }
        labels[stem] = sorted(classes)
    return labels, stem_to_id


def render_semantic_mask(coco, image_id: int,
                         anns: Sequence[dict]) -> np.ndarray:
    """Paint the instances of one image into a semantic label map.

    Args:
        coco (pycocotools.coco.COCO): Provides ``annToMask`` and the image
            size (``coco.imgs[image_id]['height'/'width']``).
        image_id (int): The COCO image id.
        anns (Sequence[dict]): Its annotations (``segmentation``,
            ``category_id``, ``id``).

    Returns:
        np.ndarray: ``[H, W]`` uint8; 0 background, ``index + 1`` objects,
        larger instances painted first so that smaller ones end on top.
    """
    img = coco.imgs[image_id]
    height, width = int(img['height']), int(img['width'])
    name = f'{img.get("file_name") or "?"} (COCO id {image_id})'
    semantic = np.zeros((height, width), dtype=np.uint8)
    instances = []
    for ann in anns:
        cls = coco_category_to_index(ann['category_id'], name)
        binary = coco.annToMask(ann).view(bool)  # [H, W], 0/1 uint8 -> bool
        if binary.shape != (height, width):
            raise ValueError(
                f'image {name}: annotation {ann.get("id")} decodes to a '
                f'mask of shape {binary.shape}, the image is '
                f'{(height, width)}')
        instances.append(
            (-np.count_nonzero(binary), ann.get('id', 0), cls, binary))
    # descending area, then annotation id: deterministic, small on top
    instances.sort(key=lambda t: (t[0], t[1]))
    for _, _, cls, binary in instances:
        semantic[binary] = cls + 1
    return semantic


# ------------------------------------------------------------ per-image job

# One shell COCO object per process: only ``annToMask`` and ``imgs`` are used,
# and ``imgs`` is set per image, so the workers never load the JSON.
_SHELL_COCO = None


def _shell_coco():
    global _SHELL_COCO
    if _SHELL_COCO is None:
        from pycocotools.coco import COCO
        with contextlib.redirect_stdout(io.StringIO()):
            _SHELL_COCO = COCO()
    return _SHELL_COCO


@dataclass(frozen=True)
class CocoMaskJob:
    """The semantic mask PNG of one image, for
    :class:`~qaclims_mm.utils.image_jobs.ImageJobWriter`.

    Called as ``job(stem, image_id, img, anns)`` with the COCO image id, its
    image entry (``height``, ``width``, ``file_name``) and its annotations;
    returns the palette PNG bytes (:func:`coco_palette`).
    """

    def __call__(self, stem: str, image_id: int, img: dict,
                 anns: Sequence[dict]) -> bytes:
        coco = _shell_coco()
        coco.imgs = {image_id: img}
        return label_to_png_bytes(
            render_semantic_mask(coco, image_id, anns), _PALETTE)


def _mask_job_args(coco, image_id: int) -> Tuple[int, dict, List[dict]]:
    """The picklable inputs of :class:`CocoMaskJob` for one image (only the
    fields that rendering reads, so little is sent to a worker)."""
    img = coco.imgs[image_id]
    img = dict(id=image_id, height=img['height'], width=img['width'],
               file_name=img.get('file_name', ''))
    anns = [{k: ann[k] for k in _MASK_ANN_KEYS if k in ann}
            for ann in coco.imgToAnns.get(image_id, [])]
    return image_id, img, anns


def _write_masks(coco, mask_dir: str, stem_to_id: Dict[str, int],
                 stems: Sequence[str], num_workers: int, overwrite: bool,
                 progress: bool) -> MapResult:
    """Write ``<mask_dir>/<stem>.png`` for every stem through the per-image
    runner (skip-existing, atomic writes, workers, progress, the image id
    in errors)."""
    job = CocoMaskJob()
    with ImageJobWriter(mask_dir, overwrite=overwrite, workers=num_workers,
                        total=len(stems), progress=progress) as writer:
        for stem in stems:
            if writer.is_done(stem):
                writer.skip(stem)
            else:
                writer.submit(stem, job,
                              *_mask_job_args(coco, stem_to_id[stem]))
    return writer.result


# ------------------------------------------------------------------ driver


def _write_text_if_changed(path: str, text: str) -> bool:
    """Write ``text`` atomically unless ``path`` already holds it."""
    if osp.isfile(path):
        with open(path, encoding='utf-8') as f:
            if f.read() == text:
                return False
    atomic_write_text(path, text)
    return True


def _write_labels_if_changed(path: str, labels: Dict[str, List[int]]) -> bool:
    """Write the labels file unless ``path`` already holds these labels."""
    if osp.isfile(path):
        try:
            if load_labels_file(path, classes=COCO_CLASSES) == labels:
                return False
        except ValueError:  # unreadable or another class list: rewrite it
            pass
    save_labels_file(path, labels, classes=COCO_CLASSES, dataset='coco')
    return True


def convert_coco14_split(coco_root: str,
                         split: str,
                         out_subdir: str = 'wsss',
                         write_masks: bool = True,
                         num_workers: int = 0,
                         overwrite: bool = False,
                         progress: bool = True) -> dict:
    """Convert one split; see :func:`convert_coco14` for the arguments.

    Returns:
        dict: The split's summary (see :func:`convert_coco14`).
    """
    ann_path = annotation_path(coco_root, split)
    coco = load_coco(ann_path, verbose=progress)
    _check_categories(coco, ann_path)
    # every label is checked before any file is written
    labels, stem_to_id = image_level_labels(coco, split)
    img_ids = sorted(labels)

    out_dir = osp.join(coco_root, out_subdir)
    split_file = osp.join(out_dir, f'{split}.txt')
    labels_file = osp.join(out_dir, f'cls_labels_{split}.json')
    mask_dir = osp.join(out_dir, 'mask', f'{split}2014')
    os.makedirs(out_dir, exist_ok=True)
    split_written = _write_text_if_changed(
        split_file, ''.join(f'{i}\n' for i in img_ids))
    labels_written = _write_labels_if_changed(labels_file, labels)

    masks_written = masks_skipped = 0
    if write_masks:
        result = _write_masks(coco, mask_dir, stem_to_id, img_ids,
                              num_workers, overwrite, progress)
        masks_written, masks_skipped = result.written, result.skipped

    anns = coco.dataset.get('annotations', [])
    return dict(
        split=split,
        annotation_file=ann_path,
        num_images=len(img_ids),
        num_annotations=len(anns),
        num_crowd=sum(1 for a in anns if a.get('iscrowd', 0)),
        num_empty=sum(1 for i in img_ids if not labels[i]),
        empty_images=[i for i in img_ids if not labels[i]],
        split_file=split_file,
        labels_file=labels_file,
        mask_dir=mask_dir if write_masks else None,
        split_file_written=split_written,
        labels_file_written=labels_written,
        masks_written=masks_written,
        masks_skipped=masks_skipped)


def convert_coco14(coco_root: str,
                   splits: Sequence[str] = ('train', 'val'),
                   out_subdir: str = 'wsss',
                   write_masks: bool = True,
                   num_workers: int = 0,
                   overwrite: bool = False,
                   progress: bool = True) -> Dict[str, dict]:
    """Write the WSSS split lists, image-level labels and GT masks of COCO14.

    See the module docstring for the layout and the conventions (crowd
    regions, painting order, images without annotation).

    Args:
        coco_root (str): The COCO folder (holds ``annotations/``,
            ``train2014/``, ``val2014/``).
        splits (Sequence[str]): The splits to convert. Defaults to
            ``('train', 'val')``.
        out_subdir (str): Output folder, relative to ``coco_root``. Defaults to
            ``'wsss'``.
        write_masks (bool): Also write the semantic GT PNGs. Defaults to True.
        num_workers (int): Worker processes for the masks; 0 or 1 renders
            them in this process. Defaults to 0.
        overwrite (bool): Rewrite masks that already exist. Defaults to False
            (resume: existing PNGs are kept).
        progress (bool): Show a progress bar and pycocotools' messages. Defaults
            to True.

    Returns:
        dict[str, dict]: Per split: ``num_images``, ``num_annotations``,
        ``num_crowd``, ``num_empty`` and ``empty_images`` (images without
        labels), the output paths ``split_file``, ``labels_file``,
        ``mask_dir``, and what this run wrote (``split_file_written``,
        ``labels_file_written``, ``masks_written``, ``masks_skipped``).

    Raises:
        FileNotFoundError: naming the instances JSON of a split when missing.
        ValueError: naming the image and the id for an unknown category id.
    """
    if isinstance(splits, str):
        splits = (splits, )
    summary = {}
    for split in splits:
        summary[split] = convert_coco14_split(
            coco_root,
            split,
            out_subdir=out_subdir,
            write_masks=write_masks,
            num_workers=num_workers,
            overwrite=overwrite,
            progress=progress)
    return summary
