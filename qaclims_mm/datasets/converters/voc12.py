"""PASCAL VOC 2012 + SBD → the WSSS layout of :class:`VOC12WSSSDataset`.

What it writes (into ``out_root``, by default the VOC root itself):

* ``cls_labels.json``: image-level labels read from ``Annotations/<id>.xml`` (the
  official convention: labels come from the XML objects, never from masks), for
  every image of ``train_aug``, ``train`` and ``val``;
* ``ImageSets/Segmentation/train_aug.txt``: (SBD train ∪ SBD val ∪ VOC train) −
  VOC val, sorted (10,582 ids on the real data);
* ``SegmentationClassAug/<id>.png``: index masks for ``train_aug`` ∪ ``val``;
  an image's VOC ``SegmentationClass`` mask is used where it exists (it is the
  official annotation, with its 255 void border), the SBD ``cls/<id>.mat`` mask
  otherwise.

Every output is written atomically and an existing mask is not rewritten, so an
interrupted conversion restarts where it stopped.
"""
import os.path as osp
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Dict, Iterable, List, Optional, Tuple

import numpy as np
from PIL import Image

from ...utils.image_jobs import map_images
from ...utils.io import atomic_write_text, read_split
from ...utils.label_io import (label_png_palette, label_to_png_bytes,
                               write_label_png)
from ..class_names import VOC_CLASSES, VOC_PALETTE, voc_xml_name_to_index
from ..labels_file import save_labels_file


def parse_voc_xml(path: str) -> List[int]:
    """Return the sorted unique 0-based class indices of a VOC XML file.

    Every object counts, ``difficult`` ones included (the official labels do
    the same).

    Raises:
        FileNotFoundError: the file is missing.
        ValueError: the XML is malformed, has no object, or names an unknown
            class; the message names the file.
    """
    if not osp.isfile(path):
        raise FileNotFoundError(f'annotation not found: {path}')
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as e:
        raise ValueError(f'{path}: malformed XML ({e})') from None
    names = [obj.findtext('name', default='') for obj in root.iter('object')]
    if not names:
        raise ValueError(f'{path}: the annotation has no <object>; every VOC '
                         f'image must have at least one labelled object')
    try:
        return sorted({voc_xml_name_to_index(n) for n in names})
    except KeyError as e:
        raise ValueError(f'{path}: {e.args[0]}') from None


def read_labels_from_xml(voc_root: str, img_ids: Iterable[str],
                         progress: bool = True) -> Dict[str, List[int]]:
    """Parse ``Annotations/<id>.xml`` for every id."""
    img_ids = list(img_ids)
    it = img_ids
    if progress:
        from tqdm import tqdm
        it = tqdm(img_ids, desc='VOC XML labels', unit='img')
    return {
        i: parse_voc_xml(osp.join(voc_root, 'Annotations', i + '.xml'))
        for i in it
    }


def load_sbd_mask(path: str) -> np.ndarray:
    """Read the class mask of an SBD ``cls/<id>.mat`` file as uint8 [H, W]."""
    from scipy.io import loadmat
    try:
        mat = loadmat(path)
        return np.asarray(mat['GTcls']['Segmentation'][0][0], dtype=np.uint8)
    except (OSError, KeyError, IndexError, ValueError) as e:
        raise ValueError(f'{path}: not an SBD class-mask file ({e})') from None


def save_index_png(path: str, mask: np.ndarray,
                   palette: Optional[list] = None) -> None:
    """Save an index mask as a palette PNG (atomic), VOC colours by default,
    255 ("void") in VOC's void colour (:func:`label_png_palette`)."""
    write_label_png(path, mask, label_png_palette(palette or VOC_PALETTE))


@dataclass(frozen=True)
class VOCMaskJob:
    """The ``SegmentationClassAug`` PNG of one image, for
    :func:`~qaclims_mm.utils.image_jobs.map_images`: VOC's
    ``SegmentationClass/<id>.png`` where it exists, SBD's ``cls/<id>.mat``
    otherwise, as a VOC palette PNG (:func:`save_index_png`'s bytes).

    Args:
        voc_root (str): ``VOCdevkit/VOC2012``.
        sbd_root (str): The SBD ``dataset`` folder.
    """
    voc_root: str
    sbd_root: str

    def _sources(self, img_id: str) -> Tuple[str, str]:
        return (osp.join(self.voc_root, 'SegmentationClass', img_id + '.png'),
                osp.join(self.sbd_root, 'cls', img_id + '.mat'))

    def check(self, img_id: str) -> None:
        """Raise FileNotFoundError, naming the image, when it has no mask."""
        voc_png, mat = self._sources(img_id)
        if not osp.isfile(voc_png) and not osp.isfile(mat):
            raise FileNotFoundError(
                f'image {img_id!r}: no mask in SegmentationClass nor in SBD '
                f'({mat})')

    def __call__(self, img_id: str) -> bytes:
        self.check(img_id)
        voc_png, mat = self._sources(img_id)
        if osp.isfile(voc_png):
            mask = np.asarray(Image.open(voc_png))
        else:
            mask = load_sbd_mask(mat)
        return label_to_png_bytes(mask, label_png_palette(VOC_PALETTE))


def _write_split(path: str, ids: List[str]) -> None:
    atomic_write_text(path, ''.join(i + '\n' for i in ids))


def convert_voc12(voc_root: str,
                  sbd_root: Optional[str] = None,
                  out_root: Optional[str] = None,
                  write_masks: bool = True,
                  overwrite: bool = False,
                  progress: bool = True) -> dict:
    """Convert VOC 2012 (+ SBD) for WSSS. See the module docstring.

    Args:
        voc_root (str): ``VOCdevkit/VOC2012`` (``JPEGImages``,
            ``Annotations``, ``SegmentationClass``, ``ImageSets``).
        sbd_root (str, optional): The SBD ``dataset`` folder (``cls/*.mat``,
            ``train.txt``, ``val.txt``). Without it, ``train_aug`` cannot be
            built and only ``train``/``val`` are converted.
        out_root (str, optional): Where to write; defaults to ``voc_root``.
        write_masks (bool): Write ``SegmentationClassAug``. Defaults to True.
        overwrite (bool): Rewrite masks that exist. Defaults to False.
        progress (bool): Show progress bars. Defaults to True.

    Returns:
        dict: counts and output paths.
    """
    for sub in ('JPEGImages', 'Annotations', 'ImageSets/Segmentation'):
        if not osp.isdir(osp.join(voc_root, sub)):
            raise FileNotFoundError(
                f'{osp.join(voc_root, sub)} not found: voc_root must be the '
                f'VOCdevkit/VOC2012 folder')
    out_root = out_root or voc_root
    seg_sets = osp.join(voc_root, 'ImageSets', 'Segmentation')
    train = read_split(osp.join(seg_sets, 'train.txt'))
    val = read_split(osp.join(seg_sets, 'val.txt'))
    train_aug: List[str] = []
    if sbd_root is not None:
        if not osp.isdir(osp.join(sbd_root, 'cls')):
            raise FileNotFoundError(f'{osp.join(sbd_root, "cls")} not found: '
                                    f'sbd_root must be the SBD dataset folder')
        sbd = set(read_split(osp.join(sbd_root, 'train.txt')))
        sbd |= set(read_split(osp.join(sbd_root, 'val.txt')))
        train_aug = sorted((sbd | set(train)) - set(val))
        _write_split(osp.join(out_root, 'ImageSets', 'Segmentation',
                              'train_aug.txt'), train_aug)

    all_ids = sorted(set(train_aug) | set(train) | set(val))
    labels = read_labels_from_xml(voc_root, all_ids, progress=progress)
    labels_path = osp.join(out_root, 'cls_labels.json')
    save_labels_file(labels_path, labels, VOC_CLASSES, dataset='voc')

    written = 0
    if write_masks and train_aug:
        ids = sorted(set(train_aug) | set(val))
        written = map_images(ids, VOCMaskJob(voc_root, sbd_root),
                             osp.join(out_root, 'SegmentationClassAug'),
                             overwrite=overwrite, progress=progress).written
    return dict(
        labels_file=labels_path,
        num_labelled=len(labels),
        num_train=len(train),
        num_val=len(val),
        num_train_aug=len(train_aug),
        masks_written=written)
