"""Pseudo segmentation labels straight from CAM files (bg threshold + argmax).

Each image's CAMs (``<cam_dir>/<id>.npz``, see
:mod:`qaclims_mm.utils.cam_file`) become ``<out_dir>/<id>.png``: a palette PNG
in MMSegmentation's label format (0 background, ``1..C`` classes), the same
labels that the CAM evaluation scores (spec §6.2). Point a dataset's ``seg_map_path`` at ``out_dir`` to train a
segmenter on them.

Writes are atomic and existing PNGs are skipped, so a killed run resumes where
it stopped. The settings are recorded in ``<out_dir>/settings.json``; a run
with other settings into the same folder is refused unless it overwrites
(:func:`~qaclims_mm.utils.output_settings.claim_output_dir`). An image
without labels (a CAM file with ``K = 0`` maps) gets an all-background PNG.
"""
import io
import os.path as osp
import sys
from typing import Iterable, List, Optional, Sequence

import numpy as np
from PIL import Image

from ..datasets.class_names import VOC_PALETTE
from ..evaluation.cam_sweep import cams_to_label, check_threshold
from ..utils.cam_file import find_cam_file, load_cam
from ..utils.io import atomic_write_bytes
from ..utils.output_settings import claim_output_dir, release_output_dir

CAM_TYPES = ('high_res', 'cam')


def label_to_png_bytes(label: np.ndarray,
                       palette: Sequence[Sequence[int]]) -> bytes:
    """Encode a label map as a palette (mode ``P``) PNG.

    Args:
        label (np.ndarray): ``[H, W]`` labels in ``[0, len(palette))``.
        palette (Sequence[Sequence[int]]): RGB colour per label.

    Returns:
        bytes: The PNG file contents.
    """
    label = np.asarray(label)
    if label.size and (label.min() < 0 or label.max() >= len(palette)):
        raise ValueError(f'labels {int(label.min())}..{int(label.max())} do '
                         f'not fit a palette of {len(palette)} colours')
    img = Image.fromarray(label.astype(np.uint8), mode='P')
    img.putpalette([int(c) for rgb in palette for c in rgb])
    buf = io.BytesIO()
    img.save(buf, format='PNG')
    return buf.getvalue()


def write_pseudo_labels(cam_dir: str,
                        img_ids: Iterable[str],
                        out_dir: str,
                        threshold: float = 0.15,
                        cam_type: str = 'high_res',
                        palette: Sequence[Sequence[int]] = VOC_PALETTE,
                        num_classes: int = 20,
                        overwrite: bool = False,
                        progress: bool = True) -> int:
    """Write one palette-PNG pseudo label per image from its CAM file.

    Args:
        cam_dir (str): Folder of ``<id>.npz`` (or official ``<id>.npy``) CAMs.
        img_ids (Iterable[str]): Image ids to convert.
        out_dir (str): Output folder (created if missing).
        threshold (float): Background score prepended before the argmax.
            Defaults to 0.15 (``cam_eval_thres``).
        cam_type (str): ``'high_res'`` (full resolution, what a segmentation
            dataset needs) or ``'cam'`` (stride-4 maps, stride-4 PNGs).
            Defaults to ``'high_res'``.
        palette (Sequence[Sequence[int]]): RGB colour per label, background
            first; needs at least ``num_classes + 1`` entries. Defaults to
            :data:`VOC_PALETTE`.
        num_classes (int): Object classes; CAM keys must lie in
            ``[0, num_classes)``. Defaults to 20.
        overwrite (bool): Rewrite PNGs that already exist, and accept a
            folder recorded with other settings. Defaults to False (skip
            them, so an interrupted run resumes; refuse other settings).
        progress (bool): Show a progress bar. Defaults to True.

    Returns:
        int: The number of PNGs written (skipped ones not counted).

    Raises:
        FileNotFoundError: naming the image id whose CAM file is missing.
        ValueError: for a bad ``cam_type``, a threshold outside [0, 1], a
            palette that is too short, a malformed CAM file (naming the
            file), or an ``out_dir`` recorded with other settings.
    """
    if cam_type not in CAM_TYPES:
        raise ValueError(f'cam_type must be one of {CAM_TYPES}, got '
                         f'{cam_type!r}')
    threshold = check_threshold(threshold, 'threshold')
    if len(palette) < num_classes + 1:
        raise ValueError(f'palette has {len(palette)} colours, needs '
                         f'{num_classes + 1} (background + {num_classes} '
                         f'classes)')
    if num_classes + 1 > 256:
        raise ValueError(f'{num_classes} classes do not fit an 8-bit PNG')
    ids: List[str] = list(img_ids)
    settings = dict(
        writer='threshold_pseudo_labels', cam_dir=osp.abspath(cam_dir),
        threshold=threshold, cam_type=cam_type, num_classes=num_classes)
    claim_output_dir(out_dir, settings, overwrite)
    bar: Optional[object] = None
    if progress and ids:
        from mmengine.utils import ProgressBar
        # pass the current stdout: the default is bound at mmengine's import
        bar = ProgressBar(len(ids), file=sys.stdout)
    written = 0
    for img_id in ids:
        out_path = osp.join(out_dir, img_id + '.png')
        if overwrite or not osp.isfile(out_path):
            cam = load_cam(
                find_cam_file(cam_dir, img_id), num_classes,
                fields=(cam_type, ))
            label = cams_to_label(cam[cam_type], cam['keys'], threshold)
            atomic_write_bytes(out_path, label_to_png_bytes(label, palette))
            written += 1
        if bar is not None:
            bar.update()
    if bar is not None:
        sys.stdout.write('\n')
    release_output_dir(out_dir, settings)
    return written
