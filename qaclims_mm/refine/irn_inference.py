"""IRNet edge inference + random walk for one image (spec §6.5).

Shared by ``tools/make_sem_seg_labels.py`` (saved CAM files) and
:class:`~qaclims_mm.engine.hooks.CAMToPseudoLabelHook` (CAMs of a running test
loop). Building the IRNet needs ``mmseg.models``; the walk itself lives in the
core module :mod:`qaclims_mm.refine.random_walk`.
"""
from typing import Dict, Mapping, Optional, Tuple

import numpy as np
import torch

from .random_walk import rw_pseudo_label

#: Random-walk settings of QA-CLIMS (spec §6.5).
DEFAULT_RW_CFG = dict(radius=5, beta=10, exp_times=8, bg_thr=0.2)


class IRNEdgeInferencer:
    """A trained IRNet with its inference pipeline, giving edge maps.

    Args:
        config (str): The IRN config (``configs/irn/*.py``); its
            ``infer_dataloader.dataset.pipeline`` prepares an image and its
            optional ``random_walk`` dict overrides :data:`DEFAULT_RW_CFG`.
        checkpoint (str): The trained IRNet checkpoint.
        device (str | torch.device): Where to run. Defaults to 'cpu'.
        cfg_options (dict, optional): Config overrides.
    """

    def __init__(self, config: str, checkpoint: str, device='cpu',
                 cfg_options: Optional[dict] = None) -> None:
        import os.path as osp

        from mmcv.transforms import Compose
        from mmengine.registry import init_default_scope
        from mmengine.runner import load_checkpoint
        from mmseg.registry import MODELS

        from ..utils.config import load_config
        if not osp.isfile(checkpoint):
            raise FileNotFoundError(f'IRNet checkpoint not found: {checkpoint}')
        cfg = load_config(config, cfg_options)
        if 'infer_dataloader' not in cfg:
            raise KeyError(f'{config} has no infer_dataloader (the edge '
                           f'inference pipeline)')
        init_default_scope(cfg.get('default_scope', 'mmseg'))
        self.model = MODELS.build(cfg.model)
        load_checkpoint(self.model, checkpoint, map_location='cpu',
                        revise_keys=[(r'^module\.', '')], strict=True)
        self.device = torch.device(device)
        self.model.to(self.device).eval()
        self.pipeline = Compose(cfg.infer_dataloader.dataset.pipeline)
        self.rw_cfg: Dict = dict(DEFAULT_RW_CFG, **cfg.get('random_walk', {}))
        self.config = config

    @torch.no_grad()
    def edge(self, img_path: str, img_id: str = '') -> torch.Tensor:
        """The ``[ceil(H/4), ceil(W/4)]`` boundary map of an image."""
        from mmengine.dataset import pseudo_collate
        data = self.pipeline(dict(img_path=img_path, img_id=img_id,
                                  img_labels=[], seg_fields=[],
                                  reduce_zero_label=False))
        batch = self.model.data_preprocessor(pseudo_collate([data]), False)
        sample = self.model.predict(batch['inputs'], batch['data_samples'])[0]
        return sample.pred_edge.data[0]


def random_walk_label(cam: Mapping[str, np.ndarray], edge: torch.Tensor,
                      image_hw: Tuple[int, int], rw_cfg: Mapping,
                      img_id: str = '?', device=None) -> np.ndarray:
    """Random-walk pseudo label of one image from its stride-4 CAMs.

    Args:
        cam (Mapping): ``keys`` ``[K]`` and ``cam`` ``[K, h, w]`` (a CAM file
            entry or a ``pred_cam``).
        edge (torch.Tensor): ``[h, w]`` IRNet boundary map.
        image_hw (tuple[int, int]): ``(H, W)`` of the image.
        rw_cfg (Mapping): ``radius``, ``beta``, ``exp_times``, ``bg_thr``.
        img_id (str): For error messages.
        device: Where to walk. Defaults to the edge map's device.

    Returns:
        np.ndarray: uint8 ``[H, W]`` labels (0 background, ``key + 1``).

    Raises:
        ValueError: naming the image when the CAM grid and the edge map
            differ.
    """
    keys = np.asarray(cam['keys']).reshape(-1)
    if keys.size == 0:
        return np.zeros(tuple(image_hw), dtype=np.uint8)
    if tuple(np.shape(cam['cam'])[1:]) != tuple(edge.shape):
        raise ValueError(
            f'image {img_id!r}: CAM grid {tuple(np.shape(cam["cam"])[1:])} '
            f'does not match the IRNet edge map {tuple(edge.shape)}; were the '
            f'CAMs computed on this image at stride 4?')
    return rw_pseudo_label(cam, edge, image_hw, bg_thr=rw_cfg['bg_thr'],
                           radius=rw_cfg['radius'], beta=rw_cfg['beta'],
                           exp_times=rw_cfg['exp_times'], device=device)
