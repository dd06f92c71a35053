"""IR labels: confident foreground / background seeds from CAMs (spec §6.3).

The inter-pixel-relation network (IRNet) trains on labels that keep only the
pixels the CAMs are sure about. For each image the official
``cam_to_ir_label.py`` does, on the full-resolution CAMs ``high_res``:

1. prepend a background plane at ``fg_thr`` (0.30), argmax, and refine the
   channel map with a dense CRF on the image (:func:`crf_from_labels`, the
   §6.3 parameters): ``fg_conf``, the confident foreground;
2. the same at ``bg_thr`` (0.10): ``bg_conf``, whose background is confident;
3. label = ``fg_conf``; 255 (ignore) where ``fg_conf`` is background; 0 where
   both ``fg_conf`` and ``bg_conf`` are background.

So a pixel is a class where its CAM clearly wins, background where no CAM
reaches even the low threshold, and ignored in the band between. Labels are
in MMSegmentation's format (0 background, ``1..C`` classes, 255 ignore) and
are written as palette PNGs, one per image, by
:func:`~qaclims_mm.refine.stages.make_ir_labels` (the
:class:`~qaclims_mm.refine.refiners.IRLabelRefiner`), in parallel over CPU
processes, atomically and resumably.

CLIMS used 0.35 / 0.10 on COCO; QA-CLIMS keeps 0.30 / 0.10 for both datasets;
IRNet's own defaults are 0.30 / 0.05.
"""
from typing import Dict, Optional

import numpy as np

from ..evaluation.cam_labels import DEFAULT_CAM_THRESHOLD, check_threshold
from ..models.utils.cam_ops import cams_to_label
from ..utils.label_io import IGNORE_INDEX
from ..structures.crf import crf_from_labels


def threshold_channels(high_res: np.ndarray, threshold: float) -> np.ndarray:
    """Argmax over ``[bg plane at threshold, CAMs]`` (0 = background).

    :func:`~qaclims_mm.models.utils.cam_ops.cams_to_label` with the channel
    index as the key, so ties go to the background, as the official
    ``np.pad`` + ``np.argmax``.

    Args:
        high_res (np.ndarray): ``[K, H, W]`` CAMs.
        threshold (float): The background score.

    Returns:
        np.ndarray: ``[H, W]`` int64 channel indices in ``[0, K]``.
    """
    high_res = np.asarray(high_res)
    return cams_to_label(high_res, np.arange(high_res.shape[0]) if
                         high_res.ndim == 3 else [], threshold)


def make_ir_label(image_rgb: Optional[np.ndarray],
                  high_res: np.ndarray,
                  keys: np.ndarray,
                  fg_thr: float = 0.30,
                  bg_thr: float = 0.10,
                  crf_cfg: Optional[Dict] = None,
                  use_crf: bool = True) -> np.ndarray:
    """The IR label of one image (spec §6.3).

    Args:
        image_rgb (np.ndarray, optional): ``[H, W, 3]`` uint8 RGB image (not
            normalised); may be None when ``use_crf=False``.
        high_res (np.ndarray): ``[K, H, W]`` full-resolution CAMs.
        keys (np.ndarray): ``[K]`` 0-based class indices of the maps.
        fg_thr (float): Background score for the confident foreground.
            Defaults to 0.30 (``conf_fg_thres``).
        bg_thr (float): Background score for the confident background.
            Defaults to 0.10 (``conf_bg_thres``).
        crf_cfg (dict, optional): Keyword arguments of
            :func:`~qaclims_mm.structures.crf.crf_from_labels` overriding its
            official defaults (``n_iters``, ``gt_prob``, ...). Defaults to
            None.
        use_crf (bool): Refine both threshold maps with the CRF, as the
            official code does. False keeps the plain threshold decisions
            (an ablation). Defaults to True.

    Returns:
        np.ndarray: ``[H, W]`` uint8: 0 background, ``keys + 1`` classes, 255
        ignore.
    """
    high_res = np.asarray(high_res)
    if high_res.ndim != 3:
        raise ValueError(f'high_res must be [K, H, W], got {high_res.shape}')
    keys = np.asarray(keys).astype(np.int64).reshape(-1)
    if keys.size != high_res.shape[0]:
        raise ValueError(f'{keys.size} class keys for {high_res.shape[0]} '
                         f'CAM maps')
    if not bg_thr <= fg_thr:
        raise ValueError(f'bg_thr ({bg_thr}) must not exceed fg_thr '
                         f'({fg_thr})')
    if keys.size and keys.max() + 1 >= IGNORE_INDEX:
        raise ValueError(f'class key {keys.max()} collides with the ignore '
                         f'label {IGNORE_INDEX}')
    height, width = high_res.shape[1:]
    if keys.size == 0:  # an image without labels: all background
        return np.zeros((height, width), dtype=np.uint8)
    lut = np.concatenate([[0], keys + 1]).astype(np.uint8)  # channel -> label
    confident = []
    for thr in (fg_thr, bg_thr):
        channels = threshold_channels(high_res, thr)  # [H, W] in 0..K
        if use_crf:
            channels = crf_from_labels(image_rgb, channels, keys.size + 1,
                                       **(crf_cfg or {}))
        confident.append(lut[channels])
    fg_conf, bg_conf = confident
    label = fg_conf.copy()
    label[fg_conf == 0] = IGNORE_INDEX
    label[(fg_conf == 0) & (bg_conf == 0)] = 0
    return label


def crf_threshold_label(image_rgb: np.ndarray,
                        high_res: np.ndarray,
                        keys: np.ndarray,
                        threshold: float = DEFAULT_CAM_THRESHOLD,
                        crf_cfg: Optional[Dict] = None) -> np.ndarray:
    """Threshold pseudo label refined by the dense CRF (no ignore band).

    The background plane at ``threshold`` is prepended, the argmax channel
    map is refined by :func:`crf_from_labels` on the image (``K + 1``
    labels, the §6.3 parameters unless ``crf_cfg`` overrides them) and mapped
    through ``keys``.

    Args:
        image_rgb (np.ndarray): ``[H, W, 3]`` uint8 RGB image.
        high_res (np.ndarray): ``[K, H, W]`` full-resolution CAMs.
        keys (np.ndarray): ``[K]`` 0-based class indices of the maps.
        threshold (float): The background score. Defaults to 0.15.
        crf_cfg (dict, optional): Overrides of the CRF parameters. Defaults
            to None.

    Returns:
        np.ndarray: ``[H, W]`` uint8: 0 background, ``keys + 1`` classes.
    """
    high_res = np.asarray(high_res)
    keys = np.asarray(keys).astype(np.int64).reshape(-1)
    if high_res.ndim != 3 or keys.size != high_res.shape[0]:
        raise ValueError(f'{keys.size} class keys for CAMs of shape '
                         f'{high_res.shape} (expected [K, H, W])')
    if keys.size == 0:
        return np.zeros(high_res.shape[1:], dtype=np.uint8)
    lut = np.concatenate([[0], keys + 1]).astype(np.uint8)
    channels = crf_from_labels(image_rgb, threshold_channels(
        high_res, threshold), keys.size + 1, **(crf_cfg or {}))
    return lut[channels]


def read_rgb(path: str, img_id: Optional[str] = None) -> np.ndarray:
    """Read an image as uint8 RGB ``[H, W, 3]`` (Pillow, like ``imageio``).

    Args:
        path (str): The image file.
        img_id (str, optional): Its id, named in errors. Defaults to None.

    Raises:
        OSError: naming the image id and path when the file cannot be
            decoded (a truncated or corrupt image).
    """
    from PIL import Image
    try:
        with Image.open(path) as img:
            # a writable copy: pydensecrf rejects read-only buffers
            return np.array(img.convert('RGB'))
    except OSError as e:  # also PIL.UnidentifiedImageError
        who = f'image {img_id!r}' if img_id is not None else 'image'
        raise type(e)(f'{who}: cannot decode {path} ({e})') from e


def check_ir_thresholds(fg_thr: float, bg_thr: float) -> tuple:
    """Check the two IR-label thresholds; return them as floats.

    Raises:
        ValueError: naming the threshold outside [0, 1], or when ``bg_thr``
            exceeds ``fg_thr``.
    """
    fg_thr = check_threshold(fg_thr, 'fg_thr')
    bg_thr = check_threshold(bg_thr, 'bg_thr')
    if bg_thr > fg_thr:
        raise ValueError(f'bg_thr ({bg_thr:g}) must not exceed fg_thr '
                         f'({fg_thr:g})')
    return fg_thr, bg_thr
