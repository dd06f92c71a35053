"""Image-level-label datasets for weakly supervised semantic segmentation."""
import os.path as osp
from typing import List, Optional, Sequence

from mmengine.logging import print_log
from mmseg.datasets import BaseSegDataset
from mmseg.registry import DATASETS

from ..structures.image_decoding import (IMAGE_COLOR_TYPE,
                                         ORIENTATION_FREE_COLOR_TYPES)
from ..utils.io import read_split
from .class_names import COCO_CLASSES, VOC_CLASSES, VOC_PALETTE, coco_palette
from .labels_file import load_labels_file


class WSSSDataset(BaseSegDataset):
    """A split of image ids with image-level labels and, optionally, masks.

    Every data sample carries its image id (``img_id``) and its image-level
    labels (``img_labels``: sorted 0-based object-class indices); the pack
    transform turns the latter into a multi-hot vector. Pixel masks are attached
    only when ``with_seg_map=True``: for evaluation (ground truth) or for
    training a segmentation network on pseudo masks (point ``seg_map_path`` at
    the pseudo-mask folder). CAM training never needs them.

    ``metainfo['classes']`` is background followed by the object classes, so
    label maps follow the mmseg convention (0 background, 1..C objects, 255
    ignored).

    Args:
        ann_file (str, optional): The split list (one image id per line),
            relative to ``data_root``. Defaults to the subclass's
            ``DEFAULT_ANN_FILE``.
        labels_file (str, optional): The image-level labels file (JSON written
            by our converters; convert the official ``cls_labels.npy`` once
            with ``tools/convert_official_labels.py``), relative to
            ``data_root``. Defaults to ``DEFAULT_LABELS_FILE``.
        data_prefix (dict, optional): ``img_path`` and ``seg_map_path``
            folders. Defaults to ``DEFAULT_DATA_PREFIX``.
        with_seg_map (bool): Attach ``seg_map_path`` to every sample and check
            that each mask exists. Defaults to False.
        skip_unlabeled (bool): Drop images without any object label. When
            False (default) such images are kept, with an empty label list
            (evaluation, and QA-CLIMS COCO training as the official run, where
            they count in L_REG only).
        check_files (bool): Check at start-up that every image (and mask) of
            the split exists, so that a missing file is reported by name before
            training starts rather than hours into it. Defaults to True.
        img_suffix (str): Defaults to '.jpg'.
        seg_map_suffix (str): Defaults to '.png'.
        **kwargs: Passed to :class:`mmseg.datasets.BaseSegDataset`
            (``data_root``, ``data_prefix``, ``pipeline``, ``test_mode``, ...).
    """

    #: Defaults of ``ann_file``, ``labels_file`` and ``data_prefix`` that a
    #: dataset subclass sets for its standard layout.
    DEFAULT_ANN_FILE = ''
    DEFAULT_LABELS_FILE = ''
    DEFAULT_DATA_PREFIX: dict = dict(img_path='', seg_map_path='')

    def __init__(self,
                 ann_file: Optional[str] = None,
                 labels_file: Optional[str] = None,
                 data_prefix: Optional[dict] = None,
                 with_seg_map: bool = False,
                 skip_unlabeled: bool = False,
                 check_files: bool = True,
                 img_suffix: str = '.jpg',
                 seg_map_suffix: str = '.png',
                 **kwargs) -> None:
        self.labels_file = labels_file or self.DEFAULT_LABELS_FILE
        self.with_seg_map = with_seg_map
        self.skip_unlabeled = skip_unlabeled
        self.check_files = check_files
        super().__init__(
            ann_file=ann_file or self.DEFAULT_ANN_FILE,
            data_prefix=dict(data_prefix or self.DEFAULT_DATA_PREFIX),
            img_suffix=img_suffix,
            seg_map_suffix=seg_map_suffix,
            **kwargs)
        self._check_image_decoding()

    def _check_image_decoding(self) -> None:
        """Warn when the pipeline decodes images with EXIF orientation.

        The official code ignores the orientation tag (imageio / PIL), and so
        do our IR-label and CRF steps
        (:mod:`~qaclims_mm.structures.image_decoding`); mmcv's default
        ``color_type='color'`` applies it.
        """
        for t in getattr(self.pipeline, 'transforms', []):
            color_type = getattr(t, 'color_type', None)
            if type(t).__name__ == 'LoadImageFromFile' and \
                    color_type not in ORIENTATION_FREE_COLOR_TYPES:
                print_log(
                    f'{type(self).__name__} ({self.ann_file}): '
                    f'LoadImageFromFile(color_type={color_type!r}) applies '
                    f'the EXIF orientation, unlike the official code and the '
                    f'other stages; use color_type={IMAGE_COLOR_TYPE!r}',
                    logger='current', level=30)

    @property
    def object_classes(self) -> Sequence[str]:
        """The object classes (``metainfo['classes']`` without background)."""
        return self.metainfo['classes'][1:]

    def _resolve(self, path: str) -> str:
        if self.data_root and not osp.isabs(path):
            return osp.join(self.data_root, path)
        return path

    def load_data_list(self) -> List[dict]:
        """Read the split list and the labels; check the files exist."""
        img_dir = self.data_prefix.get('img_path', '')
        seg_dir = self.data_prefix.get('seg_map_path', '')
        if self.check_files and not osp.isdir(img_dir):
            raise FileNotFoundError(
                f'{type(self).__name__}: image folder not found: {img_dir} '
                f'(data_root={self.data_root!r})')
        if self.with_seg_map and self.check_files and not osp.isdir(seg_dir):
            raise FileNotFoundError(
                f'{type(self).__name__}: mask folder not found: {seg_dir} '
                f'(data_root={self.data_root!r}, with_seg_map=True)')
        labels_path = self._resolve(self.labels_file)
        labels = load_labels_file(labels_path, classes=self.object_classes)
        data_list = []
        for img_id in read_split(self.ann_file):
            if img_id not in labels:
                raise KeyError(f'image {img_id!r} of {self.ann_file} has no '
                               f'entry in the labels file {labels_path}')
            if self.skip_unlabeled and not labels[img_id]:
                continue
            img_path = osp.join(img_dir, img_id + self.img_suffix)
            if self.check_files and not osp.isfile(img_path):
                raise FileNotFoundError(f'image {img_id!r} listed in '
                                        f'{self.ann_file} not found: {img_path}')
            info = dict(
                img_path=img_path,
                img_id=img_id,
                img_labels=list(labels[img_id]),
                label_map=self.label_map,
                reduce_zero_label=self.reduce_zero_label,
                seg_fields=[])
            if self.with_seg_map:
                seg_path = osp.join(seg_dir, img_id + self.seg_map_suffix)
                if self.check_files and not osp.isfile(seg_path):
                    raise FileNotFoundError(
                        f'mask of image {img_id!r} not found: {seg_path}')
                info['seg_map_path'] = seg_path
            data_list.append(info)
        if not data_list:
            raise ValueError(f'{type(self).__name__}: the split {self.ann_file} '
                             f'yields no images')
        return data_list


@DATASETS.register_module()
class VOC12WSSSDataset(WSSSDataset):
    """PASCAL VOC 2012 (+ SBD aug) with image-level labels.

    Layout (``data_root`` = ``VOCdevkit/VOC2012``), after
    ``tools/dataset_converters/voc12_wsss.py``::

        JPEGImages/<id>.jpg
        SegmentationClass/<id>.png        # VOC GT (train 1,464 / val 1,449)
        SegmentationClassAug/<id>.png     # SBD-augmented GT (optional)
        ImageSets/Segmentation/{train,val,train_aug}.txt
        cls_labels.json                   # image-level labels from the XMLs

    CAM training uses ``train_aug`` (10,582 ids) with labels only; CAM and
    pseudo-mask evaluation use ``train`` with ``SegmentationClass``; the
    segmentation stage validates on ``val``.
    """
    METAINFO = dict(classes=('background', ) + VOC_CLASSES, palette=VOC_PALETTE)
    DEFAULT_ANN_FILE = 'ImageSets/Segmentation/train_aug.txt'
    DEFAULT_LABELS_FILE = 'cls_labels.json'
    DEFAULT_DATA_PREFIX = dict(
        img_path='JPEGImages', seg_map_path='SegmentationClass')


@DATASETS.register_module()
class COCO14WSSSDataset(WSSSDataset):
    """MS COCO 2014 (80 object classes + background) with image-level labels.

    Layout (``data_root`` = the COCO folder), after
    ``tools/dataset_converters/coco14_wsss.py``::

        train2014/COCO_train2014_<12 digits>.jpg
        val2014/COCO_val2014_<12 digits>.jpg
        annotations/instances_{train,val}2014.json      # the source
        wsss/{train,val}.txt                  # image ids (file stems)
        wsss/cls_labels_{train,val}.json      # image-level labels
        wsss/mask/{train2014,val2014}/<id>.png  # semantic GT (0 bg, 1..80)

    Images with no object annotation are kept in evaluation, where they are
    all background, and in QA-CLIMS training (official; they count in L_REG
    only); the CAM and IRN training configs skip them
    (``skip_unlabeled=True``).
    """
    METAINFO = dict(
        classes=('background', ) + COCO_CLASSES, palette=coco_palette(81))
    DEFAULT_ANN_FILE = 'wsss/train.txt'
    DEFAULT_LABELS_FILE = 'wsss/cls_labels_train.json'
    DEFAULT_DATA_PREFIX = dict(
        img_path='train2014', seg_map_path='wsss/mask/train2014')
