"""IRNet edge inference + random walk for one image (spec §6.5).

Used by :class:`~qaclims_mm.refine.refiners.RandomWalkRefiner`, which the
offline stage (:func:`~qaclims_mm.refine.stages.make_rw_labels`) and
:class:`~qaclims_mm.engine.hooks.CAMToPseudoLabelHook` share. Building the
IRNet needs ``mmseg.models``; the walk itself lives in the core module
:mod:`qaclims_mm.refine.random_walk`.
"""
from typing import Mapping, Optional, Tuple

import numpy as np
import torch

from .random_walk import rw_pseudo_label


def init_segmentor(config, checkpoint: str, device='cpu',
                   cfg_options: Optional[dict] = None):
    """:func:`mmseg.apis.init_model`, then a strict load of ``checkpoint``.

    ``init_model`` loads non-strictly; our segmentors refuse a checkpoint
    that leaves a module uninitialised, so the weights are loaded here.

    Args:
        config (str | Config): The model config.
        checkpoint (str): The trained weights.
        device (str | torch.device): Where to run. Defaults to 'cpu'.
        cfg_options (dict, optional): Config overrides.

    Returns:
        torch.nn.Module: The model in eval mode, its config in ``model.cfg``.
    """
    import os.path as osp

    from mmengine.config import Config
    from mmengine.runner import load_checkpoint
    from mmseg.apis import init_model

    if not osp.isfile(checkpoint):
        raise FileNotFoundError(f'checkpoint not found: {checkpoint}')
    if isinstance(config, str):
        if not osp.isfile(config):
            raise FileNotFoundError(f'config not found: {config}')
        config = Config.fromfile(config)
    model = init_model(config, None, 'cpu', cfg_options)
    load_checkpoint(model, checkpoint, map_location='cpu',
                    revise_keys=[(r'^module\.', '')], strict=True)
    return model.to(device).eval()


class IRNEdgeInferencer:
    """A trained IRNet with its inference pipeline, giving edge maps.

    Args:
        config (str): The IRN config (``configs/irn/*.py``); its
            ``test_pipeline`` prepares an image.
        checkpoint (str): The trained IRNet checkpoint.
        device (str | torch.device): Where to run. Defaults to 'cpu'.
        cfg_options (dict, optional): Config overrides.
    """

    def __init__(self, config: str, checkpoint: str, device='cpu',
                 cfg_options: Optional[dict] = None) -> None:
        from mmcv.transforms import Compose
        self.model = init_segmentor(config, checkpoint, device, cfg_options)
        self.device = torch.device(device)
        if 'test_pipeline' not in self.model.cfg:
            raise KeyError(f'{config} has no test_pipeline (the edge '
                           f'inference pipeline)')
        self.pipeline = Compose(self.model.cfg.test_pipeline)
        self.config = config

    @torch.no_grad()
    def edge(self, img_path: str,
             img_id: str = '') -> Tuple[torch.Tensor, Tuple[int, int]]:
        """The ``[ceil(H/4), ceil(W/4)]`` boundary map and ``(H, W)``."""
        from mmengine.dataset import pseudo_collate
        data = self.pipeline(dict(img_path=img_path, img_id=img_id,
                                  img_labels=[], seg_fields=[],
                                  reduce_zero_label=False))
        batch = self.model.data_preprocessor(pseudo_collate([data]), False)
        sample = self.model.predict(batch['inputs'], batch['data_samples'])[0]
        ori = sample.metainfo['ori_shape']
        return sample.pred_edge.data[0], (int(ori[0]), int(ori[1]))


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
