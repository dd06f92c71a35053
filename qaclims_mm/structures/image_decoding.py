"""How every stage decodes an image: the EXIF orientation is ignored.

We return the pixels as stored and never apply an EXIF ``Orientation`` tag.
That matches the official COCO path (PIL's ``Image.open``, which does not
rotate) and ``imageio``'s current pillow plugin (``imageio.v2.imread`` /
``imageio.v3.imread``, ``rotate=False`` by default), which the official
QA-CLIMS / CLIMS / IRN VOC code reads with. Whether ``imageio`` rotates
depends on its version: older releases decoded JPEGs with the legacy
``JPEG-PIL`` reader, whose ``exifrotate=True`` default applied the tag, so
an official run on such a release saw EXIF-rotated images rotated.

mmcv's default (``LoadImageFromFile(color_type='color')``,
``mmcv.imread(flag='color')``, cv2 and pillow backends alike) applies the
tag. Mixing the two, an EXIF-rotated JPEG (COCO has some) would get CAMs in
one orientation and CRF images, IR labels or masks in the other, or a
size-mismatch error.

Every pipeline therefore loads images with
``dict(type='LoadImageFromFile', color_type=IMAGE_COLOR_TYPE)``, every direct
read goes through :func:`read_image`, and ``tools/test.py --show`` /
``--show-dir`` paints through ``WSSSVisualizationHook`` (the configs' default
``visualization`` hook), which reads the same way. This module needs mmcv's
image I/O only (available in mmcv-lite).
"""
import os.path as osp

import numpy as np

#: mmcv's decode flag for colour images with the EXIF orientation ignored
#: (``cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION`` in cv2; no
#: ``exif_transpose`` in pillow). Use it as ``LoadImageFromFile``'s
#: ``color_type``.
IMAGE_COLOR_TYPE = 'color_ignore_orientation'

#: mmcv decode flags that leave the stored orientation untouched.
ORIENTATION_FREE_COLOR_TYPES = ('color_ignore_orientation',
                                'grayscale_ignore_orientation', 'unchanged')


def read_image(path: str, channel_order: str = 'rgb') -> np.ndarray:
    """Read a colour image as uint8 ``[H, W, 3]``, EXIF orientation ignored.

    Args:
        path (str): The image file.
        channel_order (str): ``'rgb'`` or ``'bgr'``. Defaults to 'rgb'.

    Returns:
        np.ndarray: The pixels as stored in the file.

    Raises:
        FileNotFoundError: if ``path`` does not exist.
        ValueError: if the file cannot be decoded (truncated, not an image).
    """
    import mmcv
    if not osp.isfile(path):
        raise FileNotFoundError(f'image not found: {path}')
    if channel_order not in ('rgb', 'bgr'):
        raise ValueError(f"channel_order must be 'rgb' or 'bgr', got "
                         f'{channel_order!r}')
    # BGR, then converted here: mmcv's cv2 path converts to RGB only for the
    # plain 'color' flag and would silently return BGR for ours
    image = mmcv.imread(path, flag=IMAGE_COLOR_TYPE, channel_order='bgr')
    if image is None:
        raise ValueError(f'cannot decode image {path}')
    if channel_order == 'rgb':
        image = np.ascontiguousarray(image[..., ::-1])
    return image
