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
are written as palette PNGs, one per image, by :func:`make_ir_labels`, in
parallel over CPU processes, atomically and resumably.

CLIMS used 0.35 / 0.10 on COCO; QA-CLIMS keeps 0.30 / 0.10 for both datasets;
IRNet's own defaults are 0.30 / 0.05.
"""
import multiprocessing
import os.path as osp
import sys
from typing import Dict, Iterable, List, Optional, Sequence

import numpy as np

from ..datasets.class_names import VOC_PALETTE, coco_palette
from ..evaluation.cam_sweep import check_threshold
from ..structures.crf import crf_from_labels, require_pydensecrf
from ..utils.cam_file import find_cam_file, load_cam
from ..utils.io import atomic_write_bytes
from ..utils.output_settings import claim_output_dir, release_output_dir
from .pseudo_label import label_to_png_bytes

#: Label of pixels that are not trained on (the IR-label uncertainty band).
IGNORE_INDEX = 255
#: Colour of the ignore label in written PNGs (VOC's "void" colour).
IGNORE_COLOR = (224, 224, 192)


def label_palette(num_classes: int = 20) -> List[List[int]]:
    """The 256-entry palette of label PNGs: classes, then 255 = ignore.

    Args:
        num_classes (int): Object classes (no background): 20 gives the VOC
            colours, any other number the COCO-style colour map. Defaults to
            20.

    Returns:
        list[list[int]]: 256 RGB triplets; entry 0 is background (black),
        entries ``1..num_classes`` the classes, entry 255
        :data:`IGNORE_COLOR`, the rest black.
    """
    if not 0 <= num_classes <= 254:
        raise ValueError(f'{num_classes} classes do not fit an 8-bit label '
                         f'PNG with 255 as ignore')
    base = (VOC_PALETTE if num_classes == 20 else
            coco_palette(num_classes + 1))
    palette = [list(c) for c in base[:num_classes + 1]]
    palette += [[0, 0, 0]] * (256 - len(palette))
    palette[IGNORE_INDEX] = list(IGNORE_COLOR)
    return palette


def threshold_channels(high_res: np.ndarray, threshold: float) -> np.ndarray:
    """Argmax over ``[bg plane at threshold, CAMs]`` (0 = background).

    Ties go to the background, as the official ``np.pad`` + ``np.argmax``.

    Args:
        high_res (np.ndarray): ``[K, H, W]`` CAMs.
        threshold (float): The background score.

    Returns:
        np.ndarray: ``[H, W]`` int64 channel indices in ``[0, K]``.
    """
    high_res = np.asarray(high_res)
    if not np.issubdtype(high_res.dtype, np.floating):
        high_res = high_res.astype(np.float32)
    bg = np.full((1, ) + high_res.shape[1:], threshold, dtype=high_res.dtype)
    return np.concatenate([bg, high_res]).argmax(axis=0)


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
                        threshold: float = 0.15,
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


def _ir_label_job(job: tuple) -> str:
    """Worker: compute and write one image's IR label; return its id."""
    (img_id, cam_path, img_path, out_path, fg_thr, bg_thr, crf_cfg,
     num_classes, palette) = job
    cam = load_cam(cam_path, num_classes, fields=('high_res', ))
    image = read_rgb(img_path, img_id)
    if image.shape[:2] != cam['high_res'].shape[1:]:
        raise ValueError(f'image {img_id!r}: image size {image.shape[:2]} '
                         f'({img_path}) does not match the CAM size '
                         f'{cam["high_res"].shape[1:]} ({cam_path})')
    try:
        label = make_ir_label(image, cam['high_res'], cam['keys'], fg_thr,
                              bg_thr, crf_cfg)
    except ValueError as e:
        raise ValueError(f'image {img_id!r}: {e}') from e
    atomic_write_bytes(out_path, label_to_png_bytes(label, palette))
    return img_id


def make_ir_labels(cam_dir: str,
                   img_dir: str,
                   img_ids: Iterable[str],
                   out_dir: str,
                   fg_thr: float = 0.30,
                   bg_thr: float = 0.10,
                   num_workers: int = 1,
                   overwrite: bool = False,
                   progress: bool = True,
                   num_classes: int = 20,
                   palette: Optional[Sequence[Sequence[int]]] = None,
                   crf_cfg: Optional[Dict] = None,
                   img_suffix: str = '.jpg') -> int:
    """Write ``<out_dir>/<id>.png`` IR labels for every image id.

    Every input is checked before any work starts, so bad thresholds, a
    missing CAM file or image fail at once, naming the image id. PNGs that
    exist are skipped (unless ``overwrite``) and every write is atomic, so a
    killed run resumes where it stopped; the settings are recorded in
    ``<out_dir>/settings.json`` and a run with other settings into the same
    folder is refused unless ``overwrite``. The output does not depend on
    ``num_workers``. A CAM file without maps (an image without labels) gives
    an all-background label.

    Args:
        cam_dir (str): Folder of ``<id>.npz`` (or official ``<id>.npy``) CAMs
            with ``high_res`` maps.
        img_dir (str): Folder of the images (``JPEGImages``).
        img_ids (Iterable[str]): Image ids to convert.
        out_dir (str): Output folder (created if missing).
        fg_thr (float): Confident-foreground threshold. Defaults to 0.30
            (QA-CLIMS, VOC and COCO; CLIMS used 0.35 on COCO).
        bg_thr (float): Confident-background threshold. Defaults to 0.10.
        num_workers (int): CPU processes; 1 runs in this process. Defaults
            to 1.
        overwrite (bool): Rewrite existing PNGs and accept a folder
            recorded with other settings. Defaults to False.
        progress (bool): Show a progress bar. Defaults to True.
        num_classes (int): Object classes; CAM keys must lie in
            ``[0, num_classes)``. Defaults to 20.
        palette (Sequence[Sequence[int]], optional): 256 RGB colours of the
            PNGs. Defaults to :func:`label_palette` of ``num_classes``.
        crf_cfg (dict, optional): Overrides of the CRF parameters (see
            :func:`make_ir_label`). Defaults to None.
        img_suffix (str): Image file suffix. Defaults to ``'.jpg'``.

    Returns:
        int: The number of PNGs written (skipped ones not counted).

    Raises:
        FileNotFoundError: naming the image id whose CAM or image is missing.
        ValueError: naming the image id of a malformed input; for thresholds
            outside [0, 1] or ``bg_thr > fg_thr``; for an ``out_dir``
            recorded with other settings.
        OSError: naming the image id and path of an undecodable image.
    """
    fg_thr, bg_thr = check_ir_thresholds(fg_thr, bg_thr)
    require_pydensecrf()  # fail before any work, with the install hint
    if palette is None:
        palette = label_palette(num_classes)
    if len(palette) <= IGNORE_INDEX:
        raise ValueError(f'palette has {len(palette)} colours; IR labels use '
                         f'label {IGNORE_INDEX}, so it needs 256')
    palette = [list(map(int, c)) for c in palette]
    settings = dict(writer='ir_labels', cam_dir=osp.abspath(cam_dir),
                    img_dir=osp.abspath(img_dir), fg_thr=fg_thr,
                    bg_thr=bg_thr, num_classes=num_classes,
                    crf_cfg=dict(crf_cfg or {}))
    jobs = []
    ids = list(img_ids)
    for img_id in ids:
        out_path = osp.join(out_dir, img_id + '.png')
        if not overwrite and osp.isfile(out_path):
            continue
        cam_path = find_cam_file(cam_dir, img_id)
        img_path = osp.join(img_dir, img_id + img_suffix)
        if not osp.isfile(img_path):
            raise FileNotFoundError(f'no image for {img_id!r}: {img_path}')
        jobs.append((img_id, cam_path, img_path, out_path, fg_thr, bg_thr,
                     crf_cfg, num_classes, palette))
    claim_output_dir(out_dir, settings, overwrite)
    bar = None
    if progress and jobs:
        from mmengine.utils import ProgressBar

        # pass the current stdout: the default is bound at mmengine's import
        bar = ProgressBar(len(jobs), file=sys.stdout)
    if num_workers > 1 and len(jobs) > 1:
        with multiprocessing.Pool(min(num_workers, len(jobs))) as pool:
            for _ in pool.imap_unordered(_ir_label_job, jobs, chunksize=4):
                if bar is not None:
                    bar.update()
    else:
        for job in jobs:
            _ir_label_job(job)
            if bar is not None:
                bar.update()
    if bar is not None:
        sys.stdout.write('\n')
    release_output_dir(out_dir, settings)
    return len(jobs)
