"""Stage APIs of refinement: a folder of CAM files -> a folder of label PNGs.

Each stage is :func:`make_pseudo_labels` with one refiner
(:mod:`qaclims_mm.refine.refiners`), run per image by
:func:`~qaclims_mm.utils.image_jobs.map_images`: PNGs that exist are skipped
(a killed run resumes), writes are atomic, the settings are recorded in
``<out_dir>/settings.json`` (a run with other settings into the same folder is
refused unless ``overwrite``), the work spreads over CPU processes where the
refiner allows it, and an error names the image id. Labels are palette PNGs
in the dataset's metainfo colours (completed to 256 by
:func:`~qaclims_mm.utils.label_io.label_png_palette` where 255 occurs) in
MMSegmentation's format; an image without labels (a CAM file with ``K = 0``
maps) gets an all-background PNG.

=========================== ===================== ======================
stage                       refiner               tool
=========================== ===================== ======================
:func:`write_pseudo_labels` ``ThresholdRefiner``  make_pseudo_labels.py
:func:`make_ir_labels`      ``IRLabelRefiner``    make_ir_labels.py
:func:`make_rw_labels`      ``RandomWalkRefiner`` make_sem_seg_labels.py
=========================== ===================== ======================
"""
import os.path as osp
from dataclasses import dataclass, field
from typing import Dict, FrozenSet, Iterable, List, Optional, Sequence, Union

import numpy as np

from ..datasets.class_names import VOC_PALETTE
from ..evaluation.cam_labels import DEFAULT_CAM_THRESHOLD
from ..utils.cam_file import find_cam_file, load_cam
from ..utils.image_jobs import MapResult, map_images
from ..utils.label_io import label_png_palette, label_to_png_bytes
from .refiners import (BaseRefiner, IRLabelRefiner, RandomWalkRefiner,
                       ThresholdRefiner, build_refiner)

Palette = Sequence[Sequence[int]]


@dataclass(frozen=True)
class CAMLabelJob:
    """Per-image settings of a label stage: one CAM file -> one PNG.

    Args:
        cam_dir (str): Folder of ``<id>.npz`` (or official ``<id>.npy``).
        refiner (BaseRefiner): Turns the CAMs into a label.
        palette (tuple): The 256 PNG colours.
        num_classes (int): Object classes; CAM keys must lie in
            ``[0, num_classes)``.
        img_dir (str, optional): Folder of the images (refiners that read
            them). Defaults to None.
        img_suffix (str): Image file suffix. Defaults to ``'.jpg'``.
        unlabeled (frozenset[str]): Images without any class label: no CAM
            file is read for them, the refiner gets ``K = 0`` maps (a
            refiner that reads the image gives all background). Defaults to
            none.
    """
    cam_dir: str
    refiner: BaseRefiner
    palette: tuple
    num_classes: int
    img_dir: Optional[str] = None
    img_suffix: str = '.jpg'
    unlabeled: FrozenSet[str] = field(default_factory=frozenset)

    def img_path(self, img_id: str) -> Optional[str]:
        """The image file of ``img_id`` (None without ``img_dir``)."""
        if self.img_dir is None:
            return None
        return osp.join(self.img_dir, img_id + self.img_suffix)

    def check(self, img_id: str) -> None:
        """Fail before any work when an input of ``img_id`` is missing."""
        if img_id not in self.unlabeled:
            find_cam_file(self.cam_dir, img_id)
        if self.refiner.needs_image:
            path = self.img_path(img_id)
            if path is None or not osp.isfile(path):
                raise FileNotFoundError(f'no image for {img_id!r}: {path}')

    def __call__(self, img_id: str) -> bytes:
        if img_id in self.unlabeled:
            cam = dict(keys=np.zeros(0, np.int64))
        else:
                cam = load_cam(find_cam_file(self.cam_dir, img_id),
                           self.num_classes,
                           fields=(self.refiner.cam_field, ))
        label = self.refiner(cam, self.img_path(img_id), img_id)
        return label_to_png_bytes(label, self.palette)


def _png_palette(refiner: BaseRefiner, palette: Palette) -> tuple:
    """The colours written into the PNGs of a stage.

    Labels with the ignore index (IR labels) get the 256 colours of
    :func:`~qaclims_mm.utils.label_io.label_png_palette`; the others the
    metainfo palette as it is (the files the stages have always written).
    """
    if refiner.writes_ignore:
        palette = label_png_palette(palette)
    return tuple(tuple(int(v) for v in c) for c in palette)


def _num_classes(palette: Palette, num_classes: Optional[int]) -> int:
    """The class count of a stage, checked against its palette."""
    if num_classes is None:
        num_classes = len(palette) - 1
    if num_classes < 1 or len(palette) < num_classes + 1:
        raise ValueError(f'palette has {len(palette)} colours, needs '
                         f'{num_classes + 1} (background + {num_classes} '
                         f'classes)')
    return num_classes


def make_pseudo_labels(cam_dir: str,
                       img_ids: Iterable[str],
                       out_dir: str,
                       refiner: Union[Dict, BaseRefiner],
                       img_dir: Optional[str] = None,
                       palette: Palette = VOC_PALETTE,
                       img_suffix: str = '.jpg',
                       workers: int = 0,
                       overwrite: bool = False,
                       progress: bool = True,
                       device: Optional[str] = None,
                       settings: Optional[Dict] = None,
                       num_classes: Optional[int] = None) -> MapResult:
    """Write ``<out_dir>/<id>.png`` = ``refiner(CAM file of id)`` per image.

    Args:
        cam_dir (str): Folder of ``<id>.npz`` (or official ``<id>.npy``).
        img_ids (Iterable[str]): Image ids to convert.
        out_dir (str): Output folder (created if missing).
        refiner (dict | BaseRefiner): The refiner or its config.
        img_dir (str, optional): Folder of the images (CRF, IR labels with
            CRF, random walk). Defaults to None.
        palette (Sequence[Sequence[int]]): The dataset's metainfo palette,
            background first; its length is the number of labels. Defaults
            to VOC's.
        img_suffix (str): Image file suffix. Defaults to ``'.jpg'``.
        workers (int): CPU processes (ignored for refiners that run a
            model). Defaults to 0.
        overwrite (bool): Rewrite existing PNGs and accept a folder recorded
            with other settings. Defaults to False.
        progress (bool): Show a progress bar with an ETA. Defaults to True.
        device (str, optional): Where a model-based refiner runs. Defaults
            to None.
        settings (dict, optional): The settings record; defaults to the
            refiner's settings plus the inputs.
        num_classes (int, optional): Object classes the CAM keys must lie
            in; defaults to ``len(palette) - 1``, and may not exceed it.

    Returns:
        MapResult: PNGs written and skipped.

    Raises:
        FileNotFoundError: naming the image id whose CAM or image is missing.
        ValueError: naming the image id of a malformed input, or for an
            ``out_dir`` recorded with other settings.
    """
    refiner = build_refiner(refiner)
    num_classes = _num_classes(palette, num_classes)
    png_palette = _png_palette(refiner, palette)
    if settings is None:
        settings = dict(writer=type(refiner).__name__,
                        cam_dir=osp.abspath(cam_dir),
                        img_dir=osp.abspath(img_dir) if img_dir else None,
                        num_classes=num_classes, **refiner.settings())
    job = CAMLabelJob(cam_dir, refiner, png_palette, num_classes, img_dir,
                      img_suffix)
    if not refiner.parallel:
        workers = 0
        refiner.prepare(device)
    return map_images(img_ids, job, out_dir, workers=workers,
                      overwrite=overwrite, settings=settings,
                      progress=progress)


def write_pseudo_labels(cam_dir: str,
                        img_ids: Iterable[str],
                        out_dir: str,
                        threshold: float = DEFAULT_CAM_THRESHOLD,
                        cam_type: str = 'high_res',
                        palette: Palette = VOC_PALETTE,
                        overwrite: bool = False,
                        progress: bool = True,
                        workers: int = 0,
                        num_classes: Optional[int] = None) -> int:
    """Threshold pseudo labels (background plane at ``threshold``, argmax):
    the labels that the CAM evaluation scores (spec §6.2).

    Args:
        cam_dir (str): Folder of ``<id>.npz`` (or official ``<id>.npy``).
        img_ids (Iterable[str]): Image ids to convert.
        out_dir (str): Output folder (created if missing).
        threshold (float): Background score. Defaults to 0.15.
        cam_type (str): ``'high_res'`` (full resolution, what a segmentation
            dataset needs) or ``'cam'`` (stride-4 maps, stride-4 PNGs).
            Defaults to ``'high_res'``.
        palette (Sequence[Sequence[int]]): The dataset's metainfo palette,
            background first: ``len(palette) - 1`` classes. Defaults to
            VOC's.
        overwrite (bool): Rewrite existing PNGs. Defaults to False.
        progress (bool): Show a progress bar. Defaults to True.
        workers (int): CPU processes. Defaults to 0.
        num_classes (int, optional): Object classes of the CAM keys.
            Defaults to ``len(palette) - 1``.

    Returns:
        int: The number of PNGs written (skipped ones not counted).
    """
    refiner = ThresholdRefiner(threshold, cam_type)
    num_classes = _num_classes(palette, num_classes)
    settings = dict(writer='threshold_pseudo_labels',
                    cam_dir=osp.abspath(cam_dir), threshold=refiner.threshold,
                    cam_type=cam_type, num_classes=num_classes)
    return make_pseudo_labels(cam_dir, img_ids, out_dir, refiner,
                              palette=palette, overwrite=overwrite,
                              progress=progress, workers=workers,
                              settings=settings,
                              num_classes=num_classes).written


def make_ir_labels(cam_dir: str,
                   img_dir: str,
                   img_ids: Iterable[str],
                   out_dir: str,
                   fg_thr: float = 0.30,
                   bg_thr: float = 0.10,
                   num_workers: int = 1,
                   overwrite: bool = False,
                   progress: bool = True,
                   palette: Palette = VOC_PALETTE,
                   crf_cfg: Optional[Dict] = None,
                   img_suffix: str = '.jpg',
                   num_classes: Optional[int] = None) -> int:
    """IR labels (spec §6.3): CRF-refined confident fg / bg seeds, 255 between.

    Every input is checked before any work starts. The output does not
    depend on ``num_workers``.

    Args:
        cam_dir (str): Folder of CAM files with ``high_res`` maps.
        img_dir (str): Folder of the images (``JPEGImages``).
        img_ids (Iterable[str]): Image ids to convert.
        out_dir (str): Output folder (created if missing).
        fg_thr (float): Confident-foreground threshold. Defaults to 0.30.
        bg_thr (float): Confident-background threshold. Defaults to 0.10.
        num_workers (int): CPU processes; 1 runs here. Defaults to 1.
        overwrite (bool): Rewrite existing PNGs. Defaults to False.
        progress (bool): Show a progress bar. Defaults to True.
        palette (Sequence[Sequence[int]]): The dataset's metainfo palette.
            Defaults to VOC's.
        crf_cfg (dict, optional): Overrides of the CRF parameters.
        img_suffix (str): Image file suffix. Defaults to ``'.jpg'``.
        num_classes (int, optional): Object classes of the CAM keys.
            Defaults to ``len(palette) - 1``.

    Returns:
        int: The number of PNGs written (skipped ones not counted).

    Raises:
        FileNotFoundError: naming the image id whose CAM or image is missing.
        ValueError: for thresholds outside [0, 1] or ``bg_thr > fg_thr``, a
            malformed input (naming the image id), or an ``out_dir``
            recorded with other settings.
        OSError: naming the image id and path of an undecodable image.
    """
    refiner = IRLabelRefiner(fg_thr, bg_thr, use_crf=True, crf_cfg=crf_cfg)
    num_classes = _num_classes(palette, num_classes)
    settings = dict(writer='ir_labels', cam_dir=osp.abspath(cam_dir),
                    img_dir=osp.abspath(img_dir),
                    fg_thr=refiner.fg_threshold, bg_thr=refiner.bg_threshold,
                    num_classes=num_classes,
                    crf_cfg=dict(crf_cfg or {}))
    return make_pseudo_labels(cam_dir, img_ids, out_dir, refiner, img_dir,
                              palette, img_suffix, workers=num_workers,
                              overwrite=overwrite, progress=progress,
                              settings=settings,
                              num_classes=num_classes).written


def make_rw_labels(cam_dir: str,
                   img_dir: str,
                   img_ids: Iterable[str],
                   out_dir: str,
                   irn_config: str,
                   irn_checkpoint: str,
                   radius: int = 5,
                   beta: float = 10.,
                   exp_times: int = 8,
                   bg_threshold: float = 0.2,
                   palette: Palette = VOC_PALETTE,
                   img_suffix: str = '.jpg',
                   device: str = 'cpu',
                   overwrite: bool = False,
                   progress: bool = True,
                   unlabeled: Iterable[str] = ()) -> MapResult:
    """Pseudo masks by random walk on IRNet boundaries (spec §6.5).

    For every image: IRNet's boundary map (scale 1.0 + flip, the IRN
    config's ``test_pipeline``), then the stride-4 CAMs times
    ``(1 - edge)`` walked ``2**exp_times`` steps, upsampled, divided by their
    global maximum, background ``bg_threshold``, argmax
    (:class:`~qaclims_mm.refine.refiners.RandomWalkRefiner`).

    Args:
        cam_dir (str): Folder of CAM files with stride-4 ``cam`` maps.
        img_dir (str): Folder of the images.
        img_ids (Iterable[str]): Image ids to convert.
        out_dir (str): Output folder (created if missing).
        irn_config (str): The IRN config.
        irn_checkpoint (str): The trained IRNet.
        radius (int): Random-walk radius. Defaults to 5.
        beta (float): Affinity exponent. Defaults to 10.
        exp_times (int): ``log2`` of the steps. Defaults to 8.
        bg_threshold (float): Background score. Defaults to 0.2.
        palette (Sequence[Sequence[int]]): The dataset's metainfo palette.
            Defaults to VOC's.
        img_suffix (str): Image file suffix. Defaults to ``'.jpg'``.
        device (str): Where IRNet and the walk run. Defaults to 'cpu'.
        overwrite (bool): Rewrite existing PNGs. Defaults to False.
        progress (bool): Show a progress bar. Defaults to True.
        unlabeled (Iterable[str]): Images without labels: all-background
            masks, no CAM file needed. Defaults to none.

    Returns:
        MapResult: PNGs written and skipped.
    """
    refiner = RandomWalkRefiner(
        dict(config=irn_config, checkpoint=irn_checkpoint), radius, beta,
        exp_times, bg_threshold, device)
    settings = dict(writer='random_walk', cam_dir=osp.abspath(cam_dir),
                    irn_config=osp.abspath(irn_config),
                    irn_checkpoint=osp.abspath(irn_checkpoint),
                    random_walk=refiner.rw_cfg, num_classes=len(palette) - 1)
    img_ids = list(img_ids)
    job = CAMLabelJob(cam_dir, refiner,
                      _png_palette(refiner, palette),
                      len(palette) - 1, img_dir, img_suffix,
                      frozenset(unlabeled))
    # the IRNet is built only when there is an image to do
    todo = [i for i in img_ids if overwrite
            or not osp.isfile(osp.join(out_dir, i + '.png'))]
    if todo:
        refiner.prepare(device)
    return map_images(img_ids, job, out_dir, workers=0, overwrite=overwrite,
                      settings=settings, progress=progress)


@dataclass
class DatasetImages:
    """The images of a dataset split, read from a dataset config.

    Args:
        img_ids (list[str]): The split's ids, in order.
        unlabeled (frozenset[str]): Ids without any class label.
        img_dir (str): The image folder.
        img_suffix (str): The image file suffix.
        metainfo (dict): The dataset's metainfo (``classes`` with background
            first, ``palette``).
    """
    img_ids: List[str]
    unlabeled: FrozenSet[str]
    img_dir: str
    img_suffix: str
    metainfo: dict


def load_dataset_images(dataset_cfg: Dict,
                        ann_file: Optional[str] = None,
                        data_root: Optional[str] = None) -> DatasetImages:
    """Every image of a WSSS dataset config's split (none skipped).

    Class names, palette and paths come from the dataset (its config and
    metainfo), never from a class count.

    Args:
        dataset_cfg (dict): A dataset config (e.g. a config's
            ``train_dataloader.dataset``); its pipeline and masks are not
            used.
        ann_file (str, optional): Override of the split list.
        data_root (str, optional): Override of the data root.

    Returns:
        DatasetImages: The ids, the label-less ids, paths and metainfo.
    """
    from mmengine.registry import init_default_scope
    from mmseg.registry import DATASETS
    init_default_scope('mmseg')
    cfg = dict(dataset_cfg)
    if ann_file:
        cfg['ann_file'] = ann_file
    if data_root:
        cfg['data_root'] = data_root
    cfg.update(pipeline=[], with_seg_map=False, skip_unlabeled=False)
    dataset = DATASETS.build(cfg)
    infos = [dataset.get_data_info(i) for i in range(len(dataset))]
    return DatasetImages(
        img_ids=[info['img_id'] for info in infos],
        unlabeled=frozenset(info['img_id'] for info in infos
                            if not info.get('img_labels')),
        img_dir=dataset.data_prefix['img_path'],
        img_suffix=dataset.img_suffix,
        metainfo=dict(dataset.metainfo))
