"""Write the CAMs of a test run to disk, one file per image."""
import os
import os.path as osp
from typing import Optional, Sequence

import numpy as np
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmseg.registry import HOOKS

from ...utils.cam_file import save_cam
from ...utils.io import atomic_open


def cam_overlay(image_bgr: np.ndarray, cams: np.ndarray,
                titles: Sequence[str], alpha: float = 0.5) -> np.ndarray:
    """Side-by-side picture: the image, then one jet-coloured overlay per map.

    Args:
        image_bgr (np.ndarray): ``[H, W, 3]`` uint8 image (BGR).
        cams (np.ndarray): ``[K, H, W]`` maps in [0, 1].
        titles (Sequence[str]): One caption per map.
        alpha (float): Weight of the heat map. Defaults to 0.5.

    Returns:
        np.ndarray: ``[H, (K + 1) * W, 3]`` uint8 BGR picture.
    """
    import cv2
    panels = [image_bgr]
    for cam, title in zip(cams, titles):
        heat = cv2.applyColorMap(
            np.clip(cam * 255, 0, 255).astype(np.uint8), cv2.COLORMAP_JET)
        panel = cv2.addWeighted(image_bgr, 1 - alpha, heat, alpha, 0)
        cv2.putText(panel, title, (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.45,
                    (255, 255, 255), 1, cv2.LINE_AA)
        panels.append(panel)
    return np.concatenate(panels, axis=1)


@HOOKS.register_module()
class SaveCAMHook(Hook):
    """Save ``pred_cam`` of every test sample as ``<out_dir>/<img_id>.npz``.

    The file format is documented in :mod:`qaclims_mm.utils.cam_file`. Files
    are written atomically, so an interrupted run leaves only complete files;
    re-running overwrites them with identical content.

    Args:
        out_dir (str): The CAM folder. Relative paths are relative to the
            runner's ``work_dir``.
        fields (Sequence[str]): Which maps to store: ``'cam'`` (stride 4),
            ``'high_res'``. Defaults to both (refinement needs both).
        vis_dir (str, optional): Where to write overlay pictures
            (``<img_id>.jpg``: the image and one heat map per labelled class).
            Relative to ``work_dir``. Defaults to None (no pictures).
        num_vis (int): How many images get an overlay. Defaults to 8.
    """
    priority = 'LOW'

    def __init__(self,
                 out_dir: str,
                 fields: Sequence[str] = ('cam', 'high_res'),
                 vis_dir: Optional[str] = None,
                 num_vis: int = 8) -> None:
        unknown = set(fields) - {'cam', 'high_res'}
        if unknown:
            raise ValueError(f"SaveCAMHook.fields: unknown {sorted(unknown)}; "
                             f"use 'cam' and/or 'high_res'")
        self.out_dir = out_dir
        self.fields = tuple(fields)
        self.vis_dir = vis_dir
        self.num_vis = num_vis
        self._num_written = 0
        self._num_vis_written = 0

    def _resolve(self, runner, path: str) -> str:
        return path if osp.isabs(path) else osp.join(runner.work_dir, path)

    def before_test(self, runner) -> None:
        self._out = self._resolve(runner, self.out_dir)
        os.makedirs(self._out, exist_ok=True)
        self._vis = (self._resolve(runner, self.vis_dir)
                     if self.vis_dir else None)
        self._num_written = self._num_vis_written = 0
        self._classes = runner.test_dataloader.dataset.metainfo['classes'][1:]

    def after_test_iter(self, runner, batch_idx: int, data_batch=None,
                        outputs: Optional[Sequence] = None) -> None:
        for sample in outputs or []:
            if 'pred_cam' not in sample:
                raise KeyError('SaveCAMHook: the model output has no pred_cam '
                               '(use a CAM model such as CAMClassifier)')
            img_id = sample.metainfo.get('img_id')
            if img_id is None:
                raise KeyError('SaveCAMHook: data sample without img_id; use '
                               'a WSSS dataset and PackWSSSInputs')
            pred = sample.pred_cam
            maps = {f: pred[f].detach().cpu().numpy() for f in self.fields}
            save_cam(osp.join(self._out, img_id + '.npz'),
                     pred['keys'].cpu().numpy(), maps.get('cam'),
                     maps.get('high_res'))
            self._num_written += 1
            if self._vis and self._num_vis_written < self.num_vis:
                self._save_overlay(sample, img_id)

    def _save_overlay(self, sample, img_id: str) -> None:
        from ...structures.image_decoding import read_image
        image = read_image(sample.img_path, channel_order='bgr')
        cams = sample.pred_cam['high_res'].detach().cpu().numpy()
        titles = [self._classes[k] for k in sample.pred_cam['keys'].tolist()]
        picture = cam_overlay(image, cams, titles)
        ok, buf = __import__('cv2').imencode('.jpg', picture)
        with atomic_open(osp.join(self._vis, img_id + '.jpg'), 'wb') as f:
            f.write(buf.tobytes())
        self._num_vis_written += 1

    def after_test(self, runner) -> None:
        print_log(f'SaveCAMHook: wrote {self._num_written} CAM files to '
                  f'{self._out}' + (f', {self._num_vis_written} overlays to '
                                    f'{self._vis}' if self._vis else ''),
                  logger='current')
