"""A deterministic synthetic dataset in the PASCAL VOC 2012 + SBD layouts.

The smoke tests, the demo configs and the CPU tutorials need a dataset that
every converter, dataset class and metric of this package reads exactly like
the real one, but that is generated in seconds and carries no licence. This
subpackage draws one:

* every one of the 20 VOC classes has its own silhouette, colours and texture
  (:mod:`.styles`, :mod:`.shapes`), with per-instance jitter of scale,
  aspect, rotation, mirroring, colour and brightness, so that a small CNN can
  learn the classes but not trivially;
* backgrounds are textured scenes drawn from :data:`CONTEXTS` (sky, water,
  grass, road, rail track, indoor, plain; :mod:`.scenes`), and the scene is
  **correlated with the class** of the first object (boats mostly on water,
  cows on grass, sofas indoors, ...), which is what makes background false
  activation of CAMs a real effect on this data;
* the label maps are exact (:mod:`.render`): every object is first rasterised
  as a mask and its texture is painted through that mask, so
  ``SegmentationClass`` and the SBD ``GTcls`` masks match the JPEG pixel for
  pixel (before JPEG compression);
* the files (:mod:`.formats`) and folders (:mod:`.writer`) follow the VOC and
  SBD layouts; generation is deterministic: the same arguments give
  byte-identical files;
* :mod:`.presets` names the sizes used by the tests and the demo;
* :mod:`.describe` records what a describer of each image would say (scene,
  object classes, colours, texture, position) in a side file used only to
  train the small vision-language models of this world (:mod:`.world`);
  :data:`GENERATOR_VERSION` versions the whole generator.

Not imported by ``qaclims_mm`` itself: ``from qaclims_mm.synthetic import
make_synthetic_voc``.
"""
from .describe import (DESCRIPTIONS_FILE, describe_image,
                       read_descriptions)
from .formats import (encode_jpeg, encode_label_png, encode_sbd_mat,
                      voc_annotation_xml, voc_colormap)
from .presets import PRESETS, preset_args
from .render import (GENERATOR_VERSION, IGNORE_INDEX, SyntheticImage, SyntheticObject,
                     render_synthetic_image)
from .styles import CLASS_STYLES, CONTEXTS, ClassStyle
from .writer import SPLIT_CODES, make_synthetic_voc, synthetic_image_id

__all__ = [
    'make_synthetic_voc', 'render_synthetic_image', 'synthetic_image_id',
    'SyntheticImage', 'SyntheticObject', 'ClassStyle', 'CLASS_STYLES',
    'CONTEXTS', 'IGNORE_INDEX', 'SPLIT_CODES', 'PRESETS', 'preset_args',
    'voc_colormap', 'encode_jpeg', 'encode_label_png', 'encode_sbd_mat',
    'voc_annotation_xml', 'GENERATOR_VERSION', 'DESCRIPTIONS_FILE',
    'describe_image', 'read_descriptions'
]
