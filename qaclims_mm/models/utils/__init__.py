from .cam_ops import (aggregate_multiscale_cams, cams_to_seg, flip_fused_cams,
                      max_normalize, strided_size, strided_up_size)
from .deeplab_checkpoint import convert_deeplab_resnet101_state_dict
from .fat import FATMask, fat_fg_bg_masks, fat_masks
from .official_checkpoint import convert_official_cam_state_dict

__all__ = [
    'aggregate_multiscale_cams', 'cams_to_seg', 'flip_fused_cams',
    'max_normalize', 'strided_size', 'strided_up_size',
    'convert_official_cam_state_dict', 'fat_masks', 'fat_fg_bg_masks',
    'FATMask', 'convert_deeplab_resnet101_state_dict'
]
