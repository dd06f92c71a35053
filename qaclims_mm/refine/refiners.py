"""Refiners: one image's CAMs -> its pseudo label, as registered components.

A refiner turns a CAM entry (``keys`` ``[K]`` plus the map it reads,
``high_res`` ``[K, H, W]`` or the stride-4 ``cam``; see
:mod:`qaclims_mm.utils.cam_file`) and, when it needs it, the image file into
a uint8 label map in MMSegmentation's format (0 background, ``key + 1`` for a
class, 255 ignore in IR labels). The offline stages
(:mod:`qaclims_mm.refine.stages`) and
:class:`~qaclims_mm.engine.hooks.CAMToPseudoLabelHook` both take one as a
config dict, e.g. ``refiner=dict(type='RandomWalkRefiner', irn=dict(
config=..., checkpoint=...))``:

============================ ===============================================
``ThresholdRefiner``         background plane at ``threshold``, argmax (§6.2)
``CRFRefiner``               the same, refined by the dense CRF on the image
``IRLabelRefiner``           IR labels: confident fg / bg seeds, 255 between
                             (§6.3)
``RandomWalkRefiner``        IRNet boundaries + random walk (§6.5)
============================ ===============================================

Refiners are small, picklable objects (except a random-walk refiner that
holds its IRNet, which runs in the main process: ``parallel = False``);
:meth:`BaseRefiner.settings` is what decides their output, recorded in the
output folder.
"""
import os.path as osp
from typing import Dict, Mapping, Optional, Union

import numpy as np

from ..evaluation.cam_labels import (DEFAULT_CAM_THRESHOLD, cams_to_label,
                                     check_threshold)
from ..utils.registry import REFINERS
from .ir_label import (check_ir_thresholds, crf_threshold_label,
                       make_ir_label, read_rgb)

CAM_TYPES = ('high_res', 'cam')


class BaseRefiner:
    """The interface of a refiner.

    Attributes:
        cam_field (str): The CAM entry it reads (``'high_res'`` or ``'cam'``).
        needs_image (bool): It reads the image file.
        parallel (bool): It may run in CPU worker processes.
        writes_ignore (bool): Its labels hold the ignore index 255.
    """
    cam_field = 'high_res'
    needs_image = False
    parallel = True
    writes_ignore = False

    def prepare(self, device: Union[str, None] = None) -> None:
        """Load what the refiner needs (a model) before the first image."""

    def settings(self) -> Dict:
        """JSON-serialisable settings that decide the labels."""
        raise NotImplementedError

    def refine(self, cam: Mapping[str, np.ndarray], img_path: Optional[str],
               img_id: str) -> np.ndarray:
        """The ``[H, W]`` uint8 label of one image."""
        raise NotImplementedError

    def __call__(self, cam: Mapping[str, np.ndarray],
                 img_path: Optional[str] = None,
                 img_id: str = '?') -> np.ndarray:
        if self.needs_image and (not img_path or not osp.isfile(img_path)):
            raise FileNotFoundError(
                f'image {img_id!r}: image file not found ({img_path!r}); '
                f'{type(self).__name__} needs it')
        try:
            return np.asarray(self.refine(cam, img_path, img_id),
                              dtype=np.uint8)
        except ValueError as e:
            if repr(img_id) in str(e):
                raise
            raise ValueError(f'image {img_id!r}: {e}') from e

    def __repr__(self) -> str:
        args = ', '.join(f'{k}={v!r}' for k, v in self.settings().items())
        return f'{type(self).__name__}({args})'


def _image_matching(img_path: str, img_id: str,
                    maps: np.ndarray) -> np.ndarray:
    """The RGB image, checked to have the size of the CAM maps."""
    image = read_rgb(img_path, img_id)
    if image.shape[:2] != maps.shape[1:]:
        raise ValueError(f'image {img_id!r}: image size {image.shape[:2]} '
                         f'({img_path}) does not match the CAM size '
                         f'{maps.shape[1:]}')
    return image


@REFINERS.register_module()
class ThresholdRefiner(BaseRefiner):
    """Background plane at ``threshold``, argmax (the CAM metric's labels).

    Args:
        threshold (float): The background score. Defaults to 0.15.
        cam_type (str): ``'high_res'`` (full resolution) or ``'cam'``
            (stride-4 maps, stride-4 labels). Defaults to ``'high_res'``.
    """

    def __init__(self, threshold: float = DEFAULT_CAM_THRESHOLD,
                 cam_type: str = 'high_res') -> None:
        if cam_type not in CAM_TYPES:
            raise ValueError(f'cam_type must be one of {CAM_TYPES}, got '
                             f'{cam_type!r}')
        self.threshold = check_threshold(threshold, 'threshold')
        self.cam_field = cam_type

    def settings(self) -> Dict:
        return dict(threshold=self.threshold, cam_type=self.cam_field)

    def refine(self, cam, img_path, img_id) -> np.ndarray:
        return cams_to_label(cam[self.cam_field], cam['keys'], self.threshold)


@REFINERS.register_module()
class CRFRefiner(BaseRefiner):
    """Threshold labels refined by the dense CRF on the image (no ignore).

    Args:
        threshold (float): The background score. Defaults to 0.15.
        crf_cfg (dict, optional): Overrides of the CRF parameters of
            :func:`~qaclims_mm.structures.crf.crf_from_labels`. Defaults to None.
    """
    needs_image = True

    def __init__(self, threshold: float = DEFAULT_CAM_THRESHOLD,
                 crf_cfg: Optional[Dict] = None) -> None:
        from ..structures.crf import require_pydensecrf
        require_pydensecrf()  # fail at build time, with the install hint
        self.threshold = check_threshold(threshold, 'threshold')
        self.crf_cfg = dict(crf_cfg) if crf_cfg else None

    def settings(self) -> Dict:
        return dict(threshold=self.threshold, crf_cfg=dict(self.crf_cfg or {}))

    def refine(self, cam, img_path, img_id) -> np.ndarray:
        high_res = cam['high_res']
        image = _image_matching(img_path, img_id, high_res)
        return crf_threshold_label(image, high_res, cam['keys'],
                                   self.threshold, self.crf_cfg)


@REFINERS.register_module()
class IRLabelRefiner(BaseRefiner):
    """IR labels (spec §6.3): class above ``fg_threshold``, 0 below
    ``bg_threshold``, 255 in between; both decisions CRF-refined unless
    ``use_crf=False``.

    Args:
        fg_threshold (float): Confident-foreground threshold. Defaults to
            0.30 (QA-CLIMS, VOC and COCO; CLIMS used 0.35 on COCO).
        bg_threshold (float): Confident-background threshold. Defaults to
            0.10.
        use_crf (bool): Refine with the CRF, as the official code. Defaults
            to True.
        crf_cfg (dict, optional): CRF parameter overrides. Defaults to None.
    """
    writes_ignore = True

    def __init__(self,
                 fg_threshold: float = 0.30,
                 bg_threshold: float = 0.10,
                 use_crf: bool = True,
                 crf_cfg: Optional[Dict] = None) -> None:
        self.fg_threshold, self.bg_threshold = check_ir_thresholds(
            fg_threshold, bg_threshold)
        self.use_crf = bool(use_crf)
        self.needs_image = self.use_crf
        if self.use_crf:
            from ..structures.crf import require_pydensecrf
            require_pydensecrf()
        self.crf_cfg = dict(crf_cfg) if crf_cfg else None

    def settings(self) -> Dict:
        return dict(fg_thr=self.fg_threshold, bg_thr=self.bg_threshold,
                    use_crf=self.use_crf, crf_cfg=dict(self.crf_cfg or {}))

    def refine(self, cam, img_path, img_id) -> np.ndarray:
        high_res = cam['high_res']
        image = (_image_matching(img_path, img_id, high_res)
                 if self.use_crf else None)
        return make_ir_label(image, high_res, cam['keys'], self.fg_threshold,
                             self.bg_threshold, self.crf_cfg,
                             use_crf=self.use_crf)


@REFINERS.register_module()
class RandomWalkRefiner(BaseRefiner):
    """IRNet boundaries + random walk of the stride-4 CAMs (spec §6.5).

    The IRNet is built from its config with :func:`mmseg.apis.init_model`
    and loaded strictly on :meth:`prepare` (the first image at the latest);
    its ``test_pipeline`` prepares an image for the edge inference.

    Args:
        irn (dict): ``config`` (an IRN config path), ``checkpoint`` (a
            trained IRNet) and optionally ``cfg_options``.
        radius (int): Random-walk radius. Defaults to 5.
        beta (float): Affinity exponent. Defaults to 10.
        exp_times (int): ``log2`` of the number of steps. Defaults to 8.
        bg_threshold (float): Background score of the walked maps. Defaults
            to 0.2 (QA-CLIMS; IRN used 0.25).
        device (str, optional): Where IRNet and the walk run; the hook
            passes its model's device. Defaults to None (cpu).
    """
    cam_field = 'cam'
    needs_image = True
    parallel = False

    def __init__(self,
                 irn: Dict,
                 radius: int = 5,
                 beta: float = 10.,
                 exp_times: int = 8,
                 bg_threshold: float = 0.2,
                 device: Optional[str] = None) -> None:
        irn = dict(irn or {})
        if not (irn.get('config') and irn.get('checkpoint')):
            raise ValueError('RandomWalkRefiner.irn needs config and '
                             'checkpoint (a trained IRNet, configs/irn/)')
        for key in ('config', 'checkpoint'):
            if not osp.isfile(irn[key]):
                raise FileNotFoundError(
                    f'RandomWalkRefiner: irn.{key} {irn[key]} not found')
        self.irn = irn
        self.radius = int(radius)
        self.beta = float(beta)
        self.exp_times = int(exp_times)
        self.bg_threshold = check_threshold(bg_threshold, 'bg_threshold')
        self.device = device
        self._inferencer = None

    @property
    def rw_cfg(self) -> Dict:
        """The walk's settings in :func:`random_walk_label`'s names."""
        return dict(radius=self.radius, beta=self.beta,
                    exp_times=self.exp_times, bg_thr=self.bg_threshold)

    def settings(self) -> Dict:
        return dict(irn_config=osp.abspath(self.irn['config']),
                    irn_checkpoint=osp.abspath(self.irn['checkpoint']),
                    random_walk=self.rw_cfg)

    def prepare(self, device: Union[str, None] = None) -> None:
        if device is not None:
            self.device = str(device)
        if self._inferencer is None:
            from .irn_inference import IRNEdgeInferencer
            self._inferencer = IRNEdgeInferencer(
                self.irn['config'], self.irn['checkpoint'],
                self.device or 'cpu', self.irn.get('cfg_options'))

    def refine(self, cam, img_path, img_id) -> np.ndarray:
        from .irn_inference import random_walk_label
        keys = np.asarray(cam['keys']).reshape(-1)
        if keys.size == 0:  # no class: all background, no IRNet needed
            from PIL import Image
            with Image.open(img_path) as img:
                width, height = img.size
            return np.zeros((height, width), dtype=np.uint8)
        self.prepare()
        edge, image_hw = self._inferencer.edge(img_path, img_id)
        return random_walk_label(cam, edge, image_hw, self.rw_cfg, img_id)

    def __getstate__(self) -> Dict:
        state = dict(self.__dict__)
        state['_inferencer'] = None  # a model does not travel to workers
        return state


def build_refiner(cfg: Union[Dict, BaseRefiner]) -> BaseRefiner:
    """Build a refiner from a config dict (or return a built one)."""
    if isinstance(cfg, BaseRefiner):
        return cfg
    if not isinstance(cfg, Mapping) or 'type' not in cfg:
        raise TypeError(f'a refiner config must be a dict with a type (one '
                        f'of {sorted(REFINERS.module_dict)}), got {cfg!r}')
    return REFINERS.build(dict(cfg))
