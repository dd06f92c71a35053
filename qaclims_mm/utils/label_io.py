"""Label maps on disk: the colour map, palette PNGs and reading them back.

Every label PNG of the project (converted GT masks, pseudo labels, IR labels,
random-walk masks, the synthetic data set) is an 8-bit palette (mode ``P``)
PNG in MMSegmentation's format: 0 background, ``1..C`` the classes, 255
ignore. The colours come from the dataset's metainfo ``palette`` (background
first), completed to 256 entries by :func:`label_png_palette`: black for
unused labels and VOC's "void" colour for 255. The metainfo palettes
themselves are the bit-interleaved PASCAL colour map of
:func:`label_colormap` (its first 21 entries are VOC's table; COCO uses the
first 81).
"""
import io
from typing import List, Sequence

import numpy as np

from .io import atomic_write_bytes

#: Label of pixels that are not trained on or scored.
IGNORE_INDEX = 255
#: Colour of the ignore label in written PNGs (VOC's "void" colour, which is
#: also entry 255 of :func:`label_colormap`).
IGNORE_COLOR = (224, 224, 192)

Palette = Sequence[Sequence[int]]


def label_colormap(num_entries: int = 256) -> List[List[int]]:
    """The PASCAL colour map: label ``i`` gets its bits interleaved into RGB.

    Args:
        num_entries (int): Number of colours. Defaults to 256.

    Returns:
        list[list[int]]: ``num_entries`` RGB triplets, entry 0 black.
    """
    index = np.arange(num_entries)
    cmap = np.zeros((num_entries, 3), np.int64)
    for bit in range(8):
        for channel in range(3):
            cmap[:, channel] |= ((index >> (3 * bit + channel)) & 1) << (7 -
                                                                         bit)
    return cmap.tolist()


def label_png_palette(palette: Palette) -> List[List[int]]:
    """The 256 colours of a label PNG from a metainfo palette.

    Args:
        palette (Sequence[Sequence[int]]): One RGB colour per label,
            background first (a dataset's ``metainfo['palette']``).

    Returns:
        list[list[int]]: 256 RGB triplets: ``palette``, then black, and
        :data:`IGNORE_COLOR` at :data:`IGNORE_INDEX`.

    Raises:
        ValueError: when the palette has more than 255 colours (label 255 is
            the ignore label).
    """
    colours = [[int(c) for c in rgb] for rgb in palette]
    if len(colours) > IGNORE_INDEX:
        raise ValueError(f'{len(colours)} labels do not fit an 8-bit label '
                         f'PNG with {IGNORE_INDEX} as ignore')
    colours += [[0, 0, 0]] * (256 - len(colours))
    colours[IGNORE_INDEX] = list(IGNORE_COLOR)
    return colours


def label_to_png_bytes(label: np.ndarray, palette: Palette) -> bytes:
    """Encode a label map as a palette (mode ``P``) PNG.

    Args:
        label (np.ndarray): ``[H, W]`` labels in ``[0, len(palette))``.
        palette (Sequence[Sequence[int]]): RGB colour per label (written as
            given; see :func:`label_png_palette`).

    Returns:
        bytes: The PNG file contents.

    Raises:
        ValueError: for labels that the palette does not cover.
    """
    from PIL import Image
    label = np.asarray(label)
    if label.size and (label.min() < 0 or label.max() >= len(palette)):
        raise ValueError(f'labels {int(label.min())}..{int(label.max())} do '
                         f'not fit a palette of {len(palette)} colours')
    img = Image.fromarray(label.astype(np.uint8), mode='P')
    img.putpalette([int(c) for rgb in palette for c in rgb])
    buf = io.BytesIO()
    img.save(buf, format='PNG')
    return buf.getvalue()


def write_label_png(path: str, label: np.ndarray, palette: Palette) -> None:
    """Write :func:`label_to_png_bytes` of ``label`` to ``path`` atomically."""
    atomic_write_bytes(path, label_to_png_bytes(label, palette))


def read_label_png(path: str) -> np.ndarray:
    """Read a label PNG as its raw indices ``[H, W]`` (palette kept as is)."""
    from PIL import Image
    with Image.open(path) as img:
        return np.asarray(img)
