from .cam_classifier import CAMClassifier
from .irn import IRNet
from .msc_encoder_decoder import DenseCRFSegTTAModel, MSCEncoderDecoder
from .strict_encoder_decoder import StrictEncoderDecoder

__all__ = [
    'CAMClassifier', 'IRNet', 'MSCEncoderDecoder', 'DenseCRFSegTTAModel',
    'StrictEncoderDecoder'
]
