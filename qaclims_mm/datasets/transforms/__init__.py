from .qa_corpus import LoadQACorpus

try:  # these build on mmseg.datasets, which imports mmcv.ops
    from .affinity_labels import (AffinityLabels, RandomRescale,
                                  affinity_labels_from_seg)
    from .wsss_transforms import (LoadOptionalAnnotations, MultiScaleImages,
                                  NormalizeImage, PackWSSSInputs,
                                  RandomCropWithPad, RandomLongSideResize)
except ImportError as e:
    from ...utils.env import tolerate_missing_full_stack
    tolerate_missing_full_stack(e, 'the image transforms')

__all__ = [
    'LoadOptionalAnnotations', 'LoadQACorpus',
    'RandomLongSideResize', 'NormalizeImage', 'RandomCropWithPad',
    'MultiScaleImages', 'PackWSSSInputs', 'AffinityLabels', 'RandomRescale',
    'affinity_labels_from_seg'
]
