from .cam_head import CAMHead
from .ritc_head import CLIMSHead, RITCHead

__all__ = ['CAMHead', 'RITCHead', 'CLIMSHead']
