from .affinity_labels import (AffinityLabels, RandomRescale,
                              affinity_labels_from_seg)
from .qa_corpus import LoadQACorpus
from .wsss_transforms import (IMAGENET_MEAN, IMAGENET_STD,
                              LoadOptionalAnnotations, MultiScaleImages,
                              NormalizeImage, PackWSSSInputs,
                              RandomCropWithPad, RandomLongSideResize)

__all__ = [
    'IMAGENET_MEAN', 'IMAGENET_STD', 'LoadOptionalAnnotations', 'LoadQACorpus',
    'RandomLongSideResize', 'NormalizeImage', 'RandomCropWithPad',
    'MultiScaleImages', 'PackWSSSInputs', 'AffinityLabels', 'RandomRescale',
    'affinity_labels_from_seg'
]
