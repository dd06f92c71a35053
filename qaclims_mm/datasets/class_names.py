"""Class names of the WSSS datasets, in one place.

Every stage uses these names: the datasets (metainfo), the converters (VOC XML
names, COCO category ids), the QA corpus builder (questions are formatted with
them) and the CLIP text prompts. Names carry spaces (``dining table``), as the
official QA-CLIMS questions and prompts do (spec §2.1).
"""
from typing import Dict, List, Tuple

#: The 20 PASCAL VOC object classes, in label order (index 0 = aeroplane).
VOC_CLASSES: Tuple[str, ...] = (
    'aeroplane', 'bicycle', 'bird', 'boat', 'bottle', 'bus', 'car', 'cat',
    'chair', 'cow', 'dining table', 'dog', 'horse', 'motorbike', 'person',
    'potted plant', 'sheep', 'sofa', 'train', 'tv monitor')

#: The names as written in VOC ``Annotations/*.xml`` (no spaces).
VOC_XML_NAMES: Tuple[str, ...] = tuple(c.replace(' ', '') for c in VOC_CLASSES)

#: The standard VOC colour map (background first), as in ``SegmentationClass``.
VOC_PALETTE: List[List[int]] = [
    [0, 0, 0], [128, 0, 0], [0, 128, 0], [128, 128, 0], [0, 0, 128],
    [128, 0, 128], [0, 128, 128], [128, 128, 128], [64, 0, 0], [192, 0, 0],
    [64, 128, 0], [192, 128, 0], [64, 0, 128], [192, 0, 128], [64, 128, 128],
    [192, 128, 128], [0, 64, 0], [128, 64, 0], [0, 192, 0], [128, 192, 0],
    [0, 64, 128]]

#: The 80 MS COCO object classes, in label order (category ids sorted).
COCO_CLASSES: Tuple[str, ...] = (
    'person', 'bicycle', 'car', 'motorcycle', 'airplane', 'bus', 'train',
    'truck', 'boat', 'traffic light', 'fire hydrant', 'stop sign',
    'parking meter', 'bench', 'bird', 'cat', 'dog', 'horse', 'sheep', 'cow',
    'elephant', 'bear', 'zebra', 'giraffe', 'backpack', 'umbrella', 'handbag',
    'tie', 'suitcase', 'frisbee', 'skis', 'snowboard', 'sports ball', 'kite',
    'baseball bat', 'baseball glove', 'skateboard', 'surfboard',
    'tennis racket', 'bottle', 'wine glass', 'cup', 'fork', 'knife', 'spoon',
    'bowl', 'banana', 'apple', 'sandwich', 'orange', 'broccoli', 'carrot',
    'hot dog', 'pizza', 'donut', 'cake', 'chair', 'couch', 'potted plant',
    'bed', 'dining table', 'toilet', 'tv', 'laptop', 'mouse', 'remote',
    'keyboard', 'cell phone', 'microwave', 'oven', 'toaster', 'sink',
    'refrigerator', 'book', 'clock', 'vase', 'scissors', 'teddy bear',
    'hair drier', 'toothbrush')

#: COCO 2014 category ids (``instances_*.json``) of :data:`COCO_CLASSES`.
COCO_CATEGORY_IDS: Tuple[int, ...] = (
    1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22,
    23, 24, 25, 27, 28, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44,
    46, 47, 48, 49, 50, 51, 52, 53, 54, 55, 56, 57, 58, 59, 60, 61, 62, 63, 64,
    65, 67, 70, 72, 73, 74, 75, 76, 77, 78, 79, 80, 81, 82, 84, 85, 86, 87, 88,
    89, 90)

#: Substrings that count as "the class is already named" when an FG answer is
#: post-processed (spec §2.4); classes not listed use their own name only.
FG_SYNONYMS: Dict[str, Tuple[str, ...]] = {
    'dining table': ('table', 'dining table'),
    'tv monitor': ('monitor', 'tv monitor'),
    'potted plant': ('plant', 'potted plant'),
}

_DATASET_CLASSES = {'voc': VOC_CLASSES, 'coco': COCO_CLASSES}


def get_classes(dataset: str) -> Tuple[str, ...]:
    """Return the object class names (no background) of ``'voc'`` or ``'coco'``."""
    try:
        return _DATASET_CLASSES[dataset.lower()]
    except KeyError:
        raise ValueError(f'unknown dataset {dataset!r}; expected one of '
                         f'{sorted(_DATASET_CLASSES)}') from None


def class_synonyms(name: str) -> Tuple[str, ...]:
    """Names whose presence in an answer means ``name`` is already mentioned."""
    return FG_SYNONYMS.get(name, (name, ))


def voc_xml_name_to_index(xml_name: str) -> int:
    """Map a VOC XML object name (``diningtable``) to its 0-based class index.

    Raises:
        KeyError: for a name that is not one of the 20 VOC classes.
    """
    key = xml_name.strip().lower().replace(' ', '')
    try:
        return VOC_XML_NAMES.index(key)
    except ValueError:
        raise KeyError(f'unknown VOC class name {xml_name!r}; expected one of '
                       f'{", ".join(VOC_XML_NAMES)}') from None


def coco_palette(num_classes: int = 81) -> List[List[int]]:
    """The colours of COCO label PNGs (background black): the first
    ``num_classes`` entries of the PASCAL colour map
    (:func:`~qaclims_mm.utils.label_io.label_colormap`)."""
    from ..utils.label_io import label_colormap
    return label_colormap(num_classes)
