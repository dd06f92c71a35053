"""Visualise predictions on the images as stored (EXIF orientation ignored).

mmseg's ``SegVisualizationHook`` (``tools/test.py --show`` / ``--show-dir``)
decodes each image with ``mmcv.imfrombytes(channel_order='rgb')``, which
applies the EXIF ``Orientation`` tag: on an EXIF-rotated JPEG the prediction,
made on the image as stored (see :mod:`qaclims_mm.structures.image_decoding`),
would be painted onto the rotated picture, or fail on the size mismatch.
"""
import os.path as osp
from typing import Optional, Sequence

import mmcv
import mmengine.fileio as fileio
import numpy as np
from mmseg.engine.hooks import SegVisualizationHook
from mmseg.registry import HOOKS

from ...structures.image_decoding import IMAGE_COLOR_TYPE, read_image


def read_image_for_display(img_path: str,
                           backend_args: Optional[dict] = None
                           ) -> np.ndarray:
    """RGB uint8 pixels of ``img_path`` as stored (orientation ignored).

    Args:
        img_path (str): The image (a local path, or any path of the file
            backend given by ``backend_args``).
        backend_args (dict, optional): MMEngine file backend arguments; None
            reads a local file with
            :func:`~qaclims_mm.structures.image_decoding.read_image`.

    Returns:
        np.ndarray: ``[H, W, 3]`` RGB.
    """
    if backend_args is None:
        return read_image(img_path, 'rgb')
    img_bytes = fileio.get(img_path, backend_args=backend_args)
    # BGR, then flipped: mmcv's cv2 path returns BGR for this flag
    image = mmcv.imfrombytes(img_bytes, flag=IMAGE_COLOR_TYPE,
                             channel_order='bgr')
    if image is None:
        raise ValueError(f'cannot decode image {img_path}')
    return np.ascontiguousarray(image[..., ::-1])


@HOOKS.register_module()
class WSSSVisualizationHook(SegVisualizationHook):
    """``SegVisualizationHook`` that reads images as every stage does.

    The default ``visualization`` hook of every qaclims-mm config. The
    arguments are those of :class:`mmseg.engine.hooks.SegVisualizationHook`
    (``draw``, ``interval``, ``show``, ``wait_time``, ``backend_args``); only
    the decoding differs: :func:`read_image_for_display`, EXIF orientation
    ignored.
    """

    def _after_iter(self,
                    runner,
                    batch_idx: int,
                    data_batch: dict,
                    outputs: Sequence,
                    mode: str = 'val') -> None:
        """Draw every ``interval``-th batch of a val / test loop."""
        if self.draw is False or mode == 'train':
            return
        if not self.every_n_inner_iters(batch_idx, self.interval):
            return
        for output in outputs:
            img_path = output.img_path
            image = read_image_for_display(img_path, self.backend_args)
            self._visualizer.add_datasample(
                f'{mode}_{osp.basename(img_path)}',
                image,
                data_sample=output,
                show=self.show,
                wait_time=self.wait_time,
                step=runner.iter)
