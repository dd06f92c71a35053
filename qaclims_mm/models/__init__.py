"""Models. Segmentors need ``mmseg.models`` (mmcv with its compiled ops); the
other modules (losses, heads, CAM arithmetic) import without it, so the method's
core stays usable on machines with only the light OpenMMLab packages."""
from . import clip, losses, utils  # noqa: F401  (registers components)
from .clip import MaskPromptedCLIP
from .data_preprocessor import WSSSDataPreProcessor
from .heads import CAMHead

__all__ = ['WSSSDataPreProcessor', 'CAMHead', 'MaskPromptedCLIP']

try:
    import mmseg.models  # noqa: F401
except ImportError as e:  # e.g. mmcv-lite: mmseg.models imports mmcv.ops
    from ..utils.env import (allow_model_registry_without_full_stack,
                             tolerate_missing_full_stack)
    tolerate_missing_full_stack(e, 'segmentors (CAMClassifier, ...)')
    allow_model_registry_without_full_stack()
else:
    from .heads.aspp_v2_head import ASPPV2Head  # noqa: F401
    from .segmentors import (CAMClassifier, DenseCRFSegTTAModel,  # noqa: F401
                             IRNet, MSCEncoderDecoder,
                             StrictEncoderDecoder)
    __all__ += [
        'CAMClassifier', 'IRNet', 'MSCEncoderDecoder',
        'DenseCRFSegTTAModel', 'ASPPV2Head', 'StrictEncoderDecoder'
    ]
