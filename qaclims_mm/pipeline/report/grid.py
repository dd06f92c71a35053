"""The image grid of the report: a few images, one column per output.

``report.columns`` of a pipeline config is an ordered ``name -> dict(kind,
path)``:

- ``kind='image'``: a folder of images (``<id>.jpg``, ``.jpeg`` or ``.png``);
- ``kind='cam'``: a folder of CAM files (:mod:`qaclims_mm.utils.cam_file`),
  drawn as a jet heat map of the maximum over the image's classes on the
  row's image (the column's ``image`` key names the image column; default
  the first one), with the class names in the corner;
- ``kind='label'``: a folder of label PNGs (IR labels, pseudo masks, DeepLab
  predictions, GT), coloured with the PASCAL colour map; 255 (ignore) in
  light grey.

A file that is missing shows as a grey tile reading "missing", one that
cannot be read as "unreadable"; neither stops the report.
"""
import io
import os
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from mmengine.logging import print_log
from PIL import Image, ImageDraw, ImageFont

from ...engine.hooks import cam_overlay
from ...structures.image_decoding import read_image
from ...utils.cam_file import find_cam_file, load_cam
from ...utils.io import atomic_write_bytes, read_split
from ...utils.label_io import IGNORE_COLOR, IGNORE_INDEX, label_colormap

#: Kinds of a grid column.
COLUMN_KINDS = ('image', 'cam', 'label')
IMAGE_SUFFIXES = ('.jpg', '.jpeg', '.png')
#: Colours of the tiles' background, the "missing" tiles and the text.
BACKGROUND = (255, 255, 255)
EMPTY_TILE = (225, 225, 225)
TEXT_COLOR = (0, 0, 0)
GAP = 4
HEADER_HEIGHT = 22


def label_lut() -> np.ndarray:
    """``[256, 3]`` uint8 colours of label values (ignore: light grey)."""
    lut = np.asarray(label_colormap(256), dtype=np.uint8)
    lut[IGNORE_INDEX] = IGNORE_COLOR
    return lut


def _font(size: int = 12):
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow without FreeType sizes
        return ImageFont.load_default()


def _fit(picture: np.ndarray, tile: int, nearest: bool) -> Image.Image:
    """``picture`` resized to fit a ``tile`` square, centred on white."""
    img = Image.fromarray(picture)
    scale = tile / max(img.width, img.height)
    size = (max(1, round(img.width * scale)),
            max(1, round(img.height * scale)))
    img = img.resize(size, Image.NEAREST if nearest else Image.BILINEAR)
    out = Image.new('RGB', (tile, tile), BACKGROUND)
    out.paste(img, ((tile - size[0]) // 2, (tile - size[1]) // 2))
    return out


def text_tile(text: str, tile: int) -> Image.Image:
    """A grey tile with ``text`` in its centre (missing files)."""
    out = Image.new('RGB', (tile, tile), EMPTY_TILE)
    draw = ImageDraw.Draw(out)
    font = _font()
    width = draw.textlength(text, font=font)
    draw.text(((tile - width) / 2, tile / 2 - 7), text, fill=TEXT_COLOR,
              font=font)
    return out


def find_image(folder: str, img_id: str) -> Optional[str]:
    """``<folder>/<img_id>.jpg`` (or ``.jpeg``/``.png``), None if absent."""
    for suffix in IMAGE_SUFFIXES:
        path = osp.join(folder, img_id + suffix)
        if osp.isfile(path):
            return path
    return None


def read_label(path: str) -> np.ndarray:
    """A label PNG as RGB: values through :func:`label_lut` (palette and
    grey PNGs alike, so a class has one colour in every column); RGB PNGs
    as they are."""
    with Image.open(path) as img:
        img.load()
        if img.mode in ('RGB', 'RGBA'):
            return np.asarray(img.convert('RGB'))
        labels = np.asarray(img if img.mode in ('P', 'L') else img.convert(
            'L'))
    return label_lut()[labels]


def cam_picture(path: str, image: Optional[np.ndarray],
                class_names: Sequence[str]) -> Tuple[np.ndarray, str]:
    """The heat map of a CAM file on ``image`` and its class names.

    Args:
        path (str): The CAM file.
        image (np.ndarray, optional): ``[H, W, 3]`` RGB image of the row;
            None draws the heat map alone.
        class_names (Sequence[str]): Object class names (by 0-based key).

    Returns:
        tuple: ``[H, W, 3]`` RGB picture and a caption.
    """
    import cv2
    try:
        data = load_cam(path, fields=('high_res', ))
        cam = data['high_res']
    except ValueError:  # only the stride-4 maps were stored
        data = load_cam(path, fields=('cam', ))
        cam = data['cam']
    keys = data['keys']
    heat = cam.max(axis=0) if cam.shape[0] else np.zeros(cam.shape[1:],
                                                         np.float32)
    if image is None:
        base, alpha = np.zeros(heat.shape + (3, ), np.uint8), 1.0
    else:
        base, alpha = image[..., ::-1], 0.5  # BGR
        if base.shape[:2] != heat.shape:
            heat = cv2.resize(heat, (base.shape[1], base.shape[0]),
                              interpolation=cv2.INTER_LINEAR)
    base = np.ascontiguousarray(base)
    width = base.shape[1]
    picture = cam_overlay(base, heat[None], [''], alpha=alpha)[:, width:]
    names = [
        class_names[k] if 0 <= k < len(class_names) else str(k)
        for k in keys.tolist()
    ]
    return np.ascontiguousarray(picture[..., ::-1]), ', '.join(names)


def grid_ids(report_cfg: dict, columns: Dict[str, dict]) -> List[str]:
    """The row ids: ``report_cfg['ids']``, else the first ``num_images`` of
    ``split_file``, else the first ``num_images`` image files (sorted) of
    the first image column."""
    num = int(report_cfg.get('num_images', 4))
    if report_cfg.get('ids'):
        return [str(i) for i in report_cfg['ids']][:num]
    if report_cfg.get('split_file'):
        return read_split(report_cfg['split_file'])[:num]
    for column in columns.values():
        if column.get('kind') == 'image' and osp.isdir(column['path']):
            stems = sorted({
                osp.splitext(f)[0]
                for f in os.listdir(column['path'])
                if f.lower().endswith(IMAGE_SUFFIXES)
            })
            return stems[:num]
    return []


def _tile(kind: str, column: dict, img_id: str,
          row_images: Dict[str, Optional[np.ndarray]],
          image_column: Optional[str], class_names: Sequence[str],
          tile: int) -> Image.Image:
    """One tile; "missing"/"unreadable" instead of raising."""
    folder = column['path']
    try:
        if kind == 'image':
            picture = row_images.get(column['_name'])
            if picture is None:
                return text_tile('missing', tile)
            return _fit(picture, tile, nearest=False)
        if kind == 'label':
            path = osp.join(folder, img_id + '.png')
            if not osp.isfile(path):
                return text_tile('missing', tile)
            return _fit(read_label(path), tile, nearest=True)
        if kind == 'cam':
            try:
                path = find_cam_file(folder, img_id)
            except FileNotFoundError:
                return text_tile('missing', tile)
            image = row_images.get(column.get('image', image_column))
            picture, caption = cam_picture(path, image, class_names)
            out = _fit(picture, tile, nearest=False)
            ImageDraw.Draw(out).text((3, 2), caption, fill=(255, 255, 255),
                                     font=_font(11), stroke_width=1,
                                     stroke_fill=(0, 0, 0))
            return out
        return text_tile(f'kind {kind!r}?', tile)
    except Exception as e:  # a report never stops on one bad file
        print_log(f'report grid: cannot draw {img_id} of {folder}: '
                  f'{type(e).__name__}: {e}', logger='current', level=30)
        return text_tile('unreadable', tile)


def _row_images(columns: Dict[str, dict],
                img_id: str) -> Dict[str, Optional[np.ndarray]]:
    images = {}
    for name, column in columns.items():
        if column.get('kind') != 'image':
            continue
        path = find_image(column['path'], img_id)
        try:
            images[name] = read_image(path, 'rgb') if path else None
        except (OSError, ValueError) as e:
            print_log(f'report grid: cannot read {path}: {e}',
                      logger='current', level=30)
            images[name] = None
    return images


def draw_grid(columns: Dict[str, dict], ids: Sequence[str], path: str,
              class_names: Sequence[str] = (), tile: int = 160) -> Tuple[int,
                                                                          int]:
    """Draw the grid (column titles on top, image ids on the left).

    Size: ``(id strip + n_cols * (tile + GAP), HEADER_HEIGHT + n_rows *
    (tile + GAP))``. Written atomically.

    Args:
        columns (dict): ``title -> dict(kind, path[, image])`` with absolute
            folder paths.
        ids (Sequence[str]): Image ids, one row each.
        path (str): The PNG to write.
        class_names (Sequence[str]): Object class names (CAM captions).
        tile (int): Tile edge in pixels. Defaults to 160.

    Returns:
        tuple[int, int]: The picture's (width, height).
    """
    columns = {n: dict(c, _name=n) for n, c in columns.items()}
    image_column = next(
        (n for n, c in columns.items() if c.get('kind') == 'image'), None)
    font = _font()
    probe = ImageDraw.Draw(Image.new('RGB', (1, 1)))
    strip = int(max([probe.textlength(str(i), font=font)
                     for i in ids] + [20])) + 2 * GAP
    cell = tile + GAP
    size = (strip + len(columns) * cell, HEADER_HEIGHT + len(ids) * cell)
    canvas = Image.new('RGB', size, BACKGROUND)
    draw = ImageDraw.Draw(canvas)
    for c, name in enumerate(columns):
        title = str(name)
        while len(title) > 1 and draw.textlength(title, font=font) > tile:
            title = title[:-1]
        draw.text((strip + c * cell, 4), title, fill=TEXT_COLOR, font=font)
    for r, img_id in enumerate(ids):
        top = HEADER_HEIGHT + r * cell
        draw.text((GAP, top + tile // 2 - 7), str(img_id), fill=TEXT_COLOR,
                  font=font)
        images = _row_images(columns, img_id)
        for c, (name, column) in enumerate(columns.items()):
            picture = _tile(column.get('kind'), column, img_id, images,
                            image_column, class_names, tile)
            canvas.paste(picture, (strip + c * cell, top))
    buf = io.BytesIO()
    canvas.save(buf, format='PNG')
    atomic_write_bytes(path, buf.getvalue())
    return size
