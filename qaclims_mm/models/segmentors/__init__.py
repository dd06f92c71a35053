from .cam_classifier import CAMClassifier, multi_hot_labels
from .irn import IRNet
from .msc_encoder_decoder import DenseCRFSegTTAModel, MSCEncoderDecoder
from .ritc_classifier import RITCClassifier
from .strict_encoder_decoder import StrictEncoderDecoder

__all__ = [
    'CAMClassifier', 'RITCClassifier', 'IRNet', 'MSCEncoderDecoder',
    'DenseCRFSegTTAModel', 'StrictEncoderDecoder', 'multi_hot_labels'
]
