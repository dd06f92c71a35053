from .class_names import (COCO_CATEGORY_IDS, COCO_CLASSES, FG_SYNONYMS,
                          VOC_CLASSES, VOC_PALETTE, VOC_XML_NAMES,
                          class_synonyms, get_classes)
from .labels_file import load_labels_file, save_labels_file

try:  # mmseg.datasets imports mmcv.ops
    from .transforms import (MultiScaleImages, NormalizeImage,
                             PackWSSSInputs, RandomCropWithPad,
                             RandomLongSideResize)
    from .wsss_dataset import (COCO14WSSSDataset, VOC12WSSSDataset,
                               WSSSDataset)
except ImportError as e:
    from ..utils.env import tolerate_missing_full_stack
    tolerate_missing_full_stack(e, 'the WSSS datasets and transforms')

__all__ = [
    'VOC_CLASSES', 'VOC_XML_NAMES', 'VOC_PALETTE', 'COCO_CLASSES',
    'COCO_CATEGORY_IDS', 'FG_SYNONYMS', 'get_classes', 'class_synonyms',
    'load_labels_file', 'save_labels_file', 'WSSSDataset', 'VOC12WSSSDataset',
    'COCO14WSSSDataset', 'RandomLongSideResize', 'NormalizeImage',
    'RandomCropWithPad', 'MultiScaleImages', 'PackWSSSInputs'
]
