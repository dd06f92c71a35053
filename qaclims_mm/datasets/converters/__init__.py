from .coco14 import convert_coco14
from .voc12 import convert_voc12, parse_voc_xml

__all__ = ['convert_coco14', 'convert_voc12', 'parse_voc_xml']
