"""The file formats of the VOC / SBD layouts: JPEG, label PNG, SBD MAT, XML."""
import io
from typing import Sequence

import cv2
import numpy as np
import scipy.io
import scipy.sparse
from PIL import Image

from ..datasets.class_names import (VOC_CLASSES, VOC_PALETTE, VOC_XML_NAMES,
                                    coco_palette)
from .render import SyntheticObject

#: JPEG quality of every written image (fixed, so files are reproducible).
JPEG_QUALITY = 90

_MAT_HEADER = (b'MATLAB 5.0 MAT-file, Platform: posix, '
               b'Created by: qaclims-mm synthetic VOC').ljust(116, b' ')


def voc_colormap(num_entries: int = 256) -> np.ndarray:
    """The PASCAL VOC colour map (bit-interleaved), ``[num_entries, 3]``.

    Entries 0..20 equal :data:`VOC_PALETTE`; entry 255 is (224, 224, 192).
    The colours come from the package's palette
    (:func:`~qaclims_mm.datasets.class_names.coco_palette`, the same
    bit-interleaving construction).

    Args:
        num_entries (int): Number of colours. Defaults to 256.

    Returns:
        np.ndarray: uint8 ``[num_entries, 3]``.
    """
    colours = coco_palette(num_entries)[:num_entries]
    return np.asarray(colours, np.uint8).reshape(num_entries, 3)


_PNG_PALETTE = voc_colormap(256)
assert _PNG_PALETTE[:len(VOC_PALETTE)].tolist() == VOC_PALETTE


def encode_jpeg(image: np.ndarray) -> bytes:
    """RGB ``[H, W, 3]`` uint8 -> JPEG bytes (quality :data:`JPEG_QUALITY`)."""
    buf = io.BytesIO()
    Image.fromarray(image, 'RGB').save(
        buf, format='JPEG', quality=JPEG_QUALITY, subsampling='4:2:0',
        optimize=False)
    return buf.getvalue()


def encode_label_png(seg_map: np.ndarray) -> bytes:
    """``[H, W]`` uint8 labels -> palette PNG bytes with the VOC colour map."""
    h, w = seg_map.shape
    png = Image.frombytes('P', (w, h), np.ascontiguousarray(seg_map).tobytes())
    png.putpalette(_PNG_PALETTE.flatten().tolist())
    buf = io.BytesIO()
    png.save(buf, format='PNG')
    return buf.getvalue()


def encode_sbd_mat(class_map: np.ndarray) -> bytes:
    """``[H, W]`` class map -> SBD ``cls/*.mat`` bytes (``GTcls`` struct).

    ``GTcls.Segmentation`` is the class map (no void), ``Boundaries`` a 20x1
    cell of sparse outlines and ``CategoriesPresent`` a uint8 column of the
    1-based classes. The MAT header's creation date is replaced by a fixed
    text, so the bytes are reproducible.
    """
    h, w = class_map.shape
    present = np.unique(class_map)
    present = present[present > 0].astype(np.uint8)
    kernel = np.ones((3, 3), np.uint8)
    boundaries = np.empty((len(VOC_CLASSES), 1), dtype=object)
    for k in range(len(VOC_CLASSES)):
        boundaries[k, 0] = scipy.sparse.csc_matrix((h, w), dtype=bool)
    for c in present:  # at most a few classes per image
        mask = (class_map == c).astype(np.uint8)
        outline = mask.astype(bool) & ~cv2.erode(mask, kernel).astype(bool)
        boundaries[c - 1, 0] = scipy.sparse.csc_matrix(outline)
    gt_cls = {
        'Segmentation': np.ascontiguousarray(class_map, np.uint8),
        'Boundaries': boundaries,
        'CategoriesPresent': present.reshape(-1, 1),
    }
    buf = io.BytesIO()
    scipy.io.savemat(buf, {'GTcls': gt_cls}, do_compression=True)
    data = bytearray(buf.getvalue())
    data[:len(_MAT_HEADER)] = _MAT_HEADER
    return bytes(data)


def voc_annotation_xml(image_id: str, width: int, height: int,
                       objects: Sequence[SyntheticObject],
                       segmented: bool) -> str:
    """The VOC ``Annotations/<id>.xml`` text of one image."""
    lines = [
        '<annotation>', '\t<folder>VOC2012</folder>',
        f'\t<filename>{image_id}.jpg</filename>', '\t<source>',
        '\t\t<database>qaclims-mm synthetic VOC</database>', '\t</source>',
        '\t<size>', f'\t\t<width>{width}</width>',
        f'\t\t<height>{height}</height>', '\t\t<depth>3</depth>', '\t</size>',
        f'\t<segmented>{int(segmented)}</segmented>'
    ]
    for obj in objects:
        xmin, ymin, xmax, ymax = obj.bbox
        lines += [
            '\t<object>', f'\t\t<name>{VOC_XML_NAMES[obj.class_index]}</name>',
            '\t\t<pose>Unspecified</pose>',
            f'\t\t<truncated>{int(obj.truncated)}</truncated>',
            '\t\t<difficult>0</difficult>', '\t\t<bndbox>',
            f'\t\t\t<xmin>{xmin}</xmin>', f'\t\t\t<ymin>{ymin}</ymin>',
            f'\t\t\t<xmax>{xmax}</xmax>', f'\t\t\t<ymax>{ymax}</ymax>',
            '\t\t</bndbox>', '\t</object>'
        ]
    lines.append('</annotation>')
    return '\n'.join(lines) + '\n'
