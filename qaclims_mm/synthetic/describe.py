"""What a describer of a synthetic image would say about it.

:func:`describe_image` turns a rendered :class:`~.render.SyntheticImage` into
a small JSON-able record: the scene and the words a person would use for it,
and for every object its class, colour names, texture word and rough
position. :func:`~.writer.make_synthetic_voc` writes these records to the
side file ``<out_dir>/world_descriptions.jsonl`` (:data:`DESCRIPTIONS_FILE`)
with ``describe=True``. The side file exists **only** to train the small
vision-language models of the synthetic world (:mod:`.world`); it lies
outside ``VOC2012/`` and ``SBD/`` and no pipeline stage reads it.

A description is a pure function of the rendered image and the class styles:
describing consumes no random numbers, so the image files do not change.
Colours are the style's base colours (before the per-instance jitter) named
by the nearest entry of :data:`COLOUR_NAMES`.
"""
import json
from typing import Dict, List, Sequence, Tuple

import numpy as np

from ..datasets.class_names import VOC_CLASSES
from .render import SyntheticImage
from .styles import CLASS_STYLES, CONTEXTS

#: File name of the side file in the dataset's output folder.
DESCRIPTIONS_FILE = 'world_descriptions.jsonl'

#: Named palette for colour naming (nearest in RGB, ties: first entry; a
#: name may have several reference colours).
COLOUR_NAMES: Tuple[Tuple[str, Tuple[int, int, int]], ...] = (
    ('white', (242, 242, 240)),
    ('black', (28, 28, 30)),
    ('gray', (120, 122, 128)),
    ('red', (210, 35, 40)),
    ('maroon', (125, 25, 35)),
    ('pink', (235, 90, 170)),
    ('pink', (248, 185, 195)),
    ('orange', (245, 135, 10)),
    ('orange', (200, 95, 15)),
    ('yellow', (250, 210, 30)),
    ('brown', (110, 65, 30)),
    ('tan', (205, 165, 100)),
    ('beige', (238, 228, 195)),
    ('peach', (240, 190, 155)),
    ('green', (35, 130, 50)),
    ('blue', (40, 90, 220)),
    ('navy', (45, 50, 140)),
    ('purple', (115, 45, 160)),
    ('teal', (0, 165, 165)),
)

#: Texture name of a :class:`~.styles.ClassStyle` -> the word a describer
#: uses for it.
TEXTURE_WORDS: Dict[str, str] = {
    'solid': 'plain',
    'gradient': 'shaded',
    'stripes_h': 'striped',
    'stripes_v': 'striped',
    'checker': 'checked',
    'dots': 'spotted',
    'patches': 'patched',
    'frame': 'framed',
    'windows': 'windowed',
    'band': 'banded',
    'split': 'bicolour',
}

#: Scene (one of :data:`~.styles.CONTEXTS`) -> the words for it, main first.
SCENE_WORDS: Dict[str, Tuple[str, ...]] = {
    'sky': ('sky', 'cloud'),
    'water': ('water', 'sea'),
    'grass': ('grass', 'field'),
    'road': ('road', 'street'),
    'rail': ('rail track', 'railway'),
    'indoor': ('wall', 'room', 'floor'),
    'plain': ('plain background', ),
}

# An object whose box centre is within this fraction of the image size from
# the image centre (on both axes) is "center".
_CENTER_BAND = 1 / 6


def colour_name(rgb: Sequence[float]) -> str:
    """The name of the nearest :data:`COLOUR_NAMES` entry to ``rgb``.

    Args:
        rgb (Sequence[float]): An RGB colour (0-255).

    Returns:
        str: A colour name, e.g. ``'white'``.
    """
    palette = np.asarray([c for _, c in COLOUR_NAMES], np.float64)
    dist = ((palette - np.asarray(rgb, np.float64)[None])**2).sum(1)
    return COLOUR_NAMES[int(np.argmin(dist))][0]


def position_word(bbox: Sequence[int], height: int, width: int) -> str:
    """Rough position of a box: left, right, top, bottom or center.

    Args:
        bbox (Sequence[int]): ``(xmin, ymin, xmax, ymax)``, 1-based inclusive.
        height (int): Image height.
        width (int): Image width.

    Returns:
        str: ``'center'`` when the box centre is near the image centre, else
        the side along the axis where it is farther from the centre.
    """
    dx = (bbox[0] + bbox[2] - 1) / 2 / width - 0.5
    dy = (bbox[1] + bbox[3] - 1) / 2 / height - 0.5
    if abs(dx) < _CENTER_BAND and abs(dy) < _CENTER_BAND:
        return 'center'
    if abs(dx) >= abs(dy):
        return 'left' if dx < 0 else 'right'
    return 'top' if dy < 0 else 'bottom'


def describe_class(class_index: int) -> Dict[str, str]:
    """Class name, colour names and texture word of a class's style.

    Args:
        class_index (int): 0-based VOC class index.

    Returns:
        dict: ``class``, ``colour``, ``colour2``, ``colours`` (``'white and
        red'``; one name when both are the same) and ``texture``.
    """
    style = CLASS_STYLES[class_index]
    first, second = colour_name(style.colour), colour_name(style.colour2)
    colours = first if first == second else f'{first} and {second}'
    return {
        'class': VOC_CLASSES[class_index],
        'colour': first,
        'colour2': second,
        'colours': colours,
        'texture': TEXTURE_WORDS[style.texture],
    }


def describe_image(sample: SyntheticImage, image_id: str) -> dict:
    """What a describer of ``sample`` would say (the side-file record).

    Args:
        sample (SyntheticImage): A rendered image.
        image_id (str): Its VOC-style id.

    Returns:
        dict: ``id``, ``scene`` (a :data:`~.styles.CONTEXTS` name),
        ``scene_words`` (:data:`SCENE_WORDS`), ``height``, ``width`` and
        ``objects``: one dict per instance in drawing order with
        :func:`describe_class`'s keys plus ``position``
        (:func:`position_word`), ``bbox`` (VOC XML box) and
        ``visible_pixels``.

    Raises:
        ValueError: For a scene that is not one of ``CONTEXTS``.
    """
    if sample.context not in CONTEXTS:
        raise ValueError(f'image {image_id}: unknown scene '
                         f'{sample.context!r}; expected one of {CONTEXTS}')
    height, width = sample.class_map.shape
    objects: List[dict] = []
    for obj in sample.objects:
        record = describe_class(obj.class_index)
        record.update(
            position=position_word(obj.bbox, height, width),
            bbox=[int(v) for v in obj.bbox],
            visible_pixels=int(obj.visible_pixels))
        objects.append(record)
    return {
        'id': image_id,
        'scene': sample.context,
        'scene_words': list(SCENE_WORDS[sample.context]),
        'height': int(height),
        'width': int(width),
        'objects': objects,
    }


def descriptions_jsonl(records: Sequence[dict]) -> str:
    """The side-file text: one JSON object per line, sorted by ``id``."""
    return ''.join(
        json.dumps(r, sort_keys=True) + '\n'
        for r in sorted(records, key=lambda r: r['id']))


def read_descriptions(path: str) -> List[dict]:
    """Read a side file written by ``make_synthetic_voc(describe=True)``.

    Args:
        path (str): ``<out_dir>/world_descriptions.jsonl``.

    Returns:
        list[dict]: The records, in file order (sorted by id).

    Raises:
        FileNotFoundError: When the file is missing (names it and how to
            write it).
        ValueError: For a line that is not a JSON object with ``id``,
            ``scene`` and ``objects`` (names the file and line).
    """
    import os.path as osp
    if not osp.isfile(path):
        raise FileNotFoundError(
            f'world description file not found: {path}; write it with '
            f'make_synthetic_voc(..., describe=True)')
    records = []
    with open(path, encoding='utf-8') as f:
        for line_no, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as e:
                raise ValueError(f'{path}:{line_no}: not JSON: {e}') from e
            if not isinstance(record, dict) or not {
                    'id', 'scene', 'objects'} <= set(record):
                raise ValueError(f'{path}:{line_no}: a description needs '
                                 f'id, scene and objects')
            records.append(record)
    return records
