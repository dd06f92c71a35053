"""Turn the CAMs of a test run into pseudo-label PNGs, one per image."""
import multiprocessing
import os
import os.path as osp
from typing import Dict, List, Optional, Sequence

import numpy as np
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmseg.registry import HOOKS

from ...evaluation.cam_sweep import cams_to_label, check_threshold
from ...refine.ir_label import (check_ir_thresholds, crf_threshold_label,
                                label_palette, make_ir_label, read_rgb)
from ...refine.pseudo_label import label_to_png_bytes
from ...structures.crf import require_pydensecrf
from ...utils.io import atomic_write_bytes
from ...utils.output_settings import claim_output_dir, release_output_dir

MODES = ('threshold', 'crf', 'random_walk')


def _write_label(job: tuple) -> str:
    """Compute one image's pseudo label and write its PNG; return the id.

    Module level, so that it also runs in a worker process.
    """
    (img_id, img_path, out_path, keys, high_res, mode, threshold, ir_label,
     fg_thr, bg_thr, crf_cfg, palette) = job
    use_crf = mode == 'crf'
    image = None
    if use_crf:
        if not img_path or not osp.isfile(img_path):
            raise FileNotFoundError(f'image {img_id!r}: image file not found '
                                    f'({img_path!r}); the CRF needs it')
        image = read_rgb(img_path, img_id)
        if image.shape[:2] != high_res.shape[1:]:
            raise ValueError(f'image {img_id!r}: image size {image.shape[:2]} '
                             f'({img_path}) does not match the CAM size '
                             f'{high_res.shape[1:]}')
    try:
        if ir_label:
            label = make_ir_label(image, high_res, keys, fg_thr, bg_thr,
                                  crf_cfg, use_crf=use_crf)
        elif use_crf:
            label = crf_threshold_label(image, high_res, keys, threshold,
                                        crf_cfg)
        else:
            label = cams_to_label(high_res, keys, threshold)
    except ValueError as e:
        raise ValueError(f'image {img_id!r}: {e}') from e
    atomic_write_bytes(out_path, label_to_png_bytes(label, palette))
    return img_id


@HOOKS.register_module()
class CAMToPseudoLabelHook(Hook):
    """Write ``<out_dir>/<img_id>.png`` pseudo labels from ``pred_cam``.

    Attach it to a test run of a CAM model (``custom_hooks``): after every
    test iteration, the full-resolution CAMs ``pred_cam['high_res']``
    (``[K, H, W]``, class indices ``pred_cam['keys']``) of each sample become
    a palette PNG in MMSegmentation's label format: 0 background, ``1..C``
    the classes, 255 (ignore) only in IR labels.

    Modes:

    - ``'threshold'``: a background plane at ``threshold``, argmax (the
      labels that the CAM metric scores, spec §6.2);
    - ``'crf'``: those labels refined by the dense CRF
      (:func:`~qaclims_mm.structures.crf.crf_from_labels`, §6.3 parameters) on
      the image read from the sample's ``img_path``;
    - ``'random_walk'``: IRNet boundaries + random walk on the stride-4
      ``pred_cam['cam']`` (spec §6.5): a trained IRNet is loaded from
      ``irn_config`` / ``irn_checkpoint``; its edge map of each image (read
      from ``img_path``) drives the walk; ``rw_cfg`` overrides the config's
      ``random_walk`` settings (radius 5, beta 10, 2^8 steps, bg 0.2). The
      same computation as ``tools/make_sem_seg_labels.py`` on saved CAMs.

    With ``ir_label=True`` the IR labels of §6.3 are written instead (class
    above ``fg_thr``, 255 in between, 0 below ``bg_thr``; CRF-refined in
    ``'crf'`` mode as in the official code, plain thresholds in
    ``'threshold'`` mode).

    PNGs that exist are skipped (so a re-run resumes and changes nothing)
    unless ``overwrite``; writes are atomic. The settings (mode, thresholds,
    CRF / random-walk settings, IRNet and CAM checkpoints) are recorded in
    ``<out_dir>/settings.json``; a run with other settings into the same
    folder is refused unless ``overwrite``. Images without labels (``K = 0``)
    get all-background PNGs. The palette is VOC's for 21
    classes (background included), a COCO-style one otherwise. At the end
    the counts and the ``data_prefix`` to train on the labels are logged.

    Args:
        out_dir (str): Output folder; relative to the runner's ``work_dir``
            unless absolute.
        mode (str): ``'threshold'``, ``'crf'`` or ``'random_walk'``.
            Defaults to ``'threshold'``.
        threshold (float): Background score of the non-IR modes. Defaults to
            0.15 (``cam_eval_thres``).
        ir_label (bool): Write IR labels. Defaults to False.
        fg_thr (float): IR confident-foreground threshold. Defaults to 0.30.
        bg_thr (float): IR confident-background threshold. Defaults to 0.10.
        crf_cfg (dict, optional): Overrides of the CRF parameters
            (``n_iters``, ``gt_prob``, ``gauss_sxy``, ...). Defaults to None.
        overwrite (bool): Rewrite PNGs that exist and accept a folder
            recorded with other settings. Defaults to False.
        num_workers (int): CPU processes for the label computation (the CRF
            is slow); 0 computes in the test loop. Defaults to 0 (and always
            0 in ``'random_walk'`` mode, which runs on the model's device).
        irn_config (str, optional): IRN config (``'random_walk'`` mode).
        irn_checkpoint (str, optional): Trained IRNet (``'random_walk'``).
        rw_cfg (dict, optional): Random-walk overrides (``radius``, ``beta``,
            ``exp_times``, ``bg_thr``).
    """
    priority = 'LOW'

    def __init__(self,
                 out_dir: str,
                 mode: str = 'threshold',
                 threshold: float = 0.15,
                 ir_label: bool = False,
                 fg_thr: float = 0.30,
                 bg_thr: float = 0.10,
                 crf_cfg: Optional[Dict] = None,
                 overwrite: bool = False,
                 num_workers: int = 0,
                 irn_config: Optional[str] = None,
                 irn_checkpoint: Optional[str] = None,
                 rw_cfg: Optional[Dict] = None) -> None:
        if mode not in MODES:
            raise ValueError(f'CAMToPseudoLabelHook.mode must be one of '
                             f'{MODES}, got {mode!r}')
        if mode == 'random_walk':
            if not (irn_config and irn_checkpoint):
                raise ValueError(
                    "CAMToPseudoLabelHook: mode='random_walk' needs "
                    'irn_config and irn_checkpoint (a trained IRNet, '
                    'configs/irn/)')
            if ir_label:
                raise ValueError('ir_label applies to the threshold and crf '
                                 'modes, not to random_walk')
            for path in (irn_config, irn_checkpoint):
                if not osp.isfile(path):
                    raise FileNotFoundError(
                        f'CAMToPseudoLabelHook: {path} not found')
        threshold = check_threshold(threshold, 'threshold')
        if ir_label:
            fg_thr, bg_thr = check_ir_thresholds(fg_thr, bg_thr)
        if rw_cfg and 'bg_thr' in rw_cfg:
            check_threshold(rw_cfg['bg_thr'], 'rw_cfg.bg_thr')
        if mode == 'crf':
            require_pydensecrf()
        self.out_dir = out_dir
        self.mode = mode
        self.threshold = float(threshold)
        self.ir_label = bool(ir_label)
        self.fg_thr = float(fg_thr)
        self.bg_thr = float(bg_thr)
        self.crf_cfg = dict(crf_cfg) if crf_cfg else None
        self.overwrite = overwrite
        self.num_workers = 0 if mode == 'random_walk' else int(num_workers)
        self.irn_config = irn_config
        self.irn_checkpoint = irn_checkpoint
        self.rw_cfg = dict(rw_cfg or {})
        self._irn = None
        self._pool = None
        self._pending: List = []
        self._num_written = self._num_skipped = 0

    def _describe(self) -> str:
        if self.mode == 'random_walk':
            rw = self._irn.rw_cfg if self._irn else self.rw_cfg
            return (f"mode='random_walk', IRNet {self.irn_checkpoint}, "
                    + ', '.join(f'{k}={v:g}' for k, v in sorted(rw.items())))
        if self.ir_label:
            what = (f'IR labels fg_thr={self.fg_thr:g} '
                    f'bg_thr={self.bg_thr:g}')
        else:
            what = f'threshold={self.threshold:g}'
        return f'mode={self.mode!r}, {what}'

    def _settings(self, runner) -> Dict:
        """What decides the PNGs' content, recorded in the output folder."""
        cfg = getattr(runner, 'cfg', None)
        load_from = cfg.get('load_from') if cfg is not None else None
        settings = dict(
            writer='CAMToPseudoLabelHook', mode=self.mode,
            ir_label=self.ir_label,
            cam_checkpoint=(osp.abspath(load_from)
                            if isinstance(load_from, str) else None))
        if self.mode == 'random_walk':
            settings.update(irn_config=osp.abspath(self.irn_config),
                            irn_checkpoint=osp.abspath(self.irn_checkpoint),
                            random_walk=dict(self._irn.rw_cfg))
        elif self.ir_label:
            settings.update(fg_thr=self.fg_thr, bg_thr=self.bg_thr)
        else:
            settings.update(threshold=self.threshold)
        if self.mode == 'crf':
            settings.update(crf_cfg=dict(self.crf_cfg or {}))
        return settings

    def before_test(self, runner) -> None:
        self._out = (self.out_dir if osp.isabs(self.out_dir) else osp.join(
            runner.work_dir, self.out_dir))
        os.makedirs(self._out, exist_ok=True)
        self._dataset = runner.test_dataloader.dataset
        classes = self._dataset.metainfo['classes']  # background first
        self._palette = label_palette(len(classes) - 1)
        self._num_written = self._num_skipped = 0
        self._pending = []
        if self.mode == 'random_walk' and self._irn is None:
            from ...refine.irn_inference import IRNEdgeInferencer
            device = next(runner.model.parameters()).device
            self._irn = IRNEdgeInferencer(self.irn_config,
                                          self.irn_checkpoint, device)
            self._irn.rw_cfg.update(self.rw_cfg)
            check_threshold(self._irn.rw_cfg['bg_thr'], 'random_walk.bg_thr')
        self._settings_record = self._settings(runner)
        claim_output_dir(self._out, self._settings_record, self.overwrite)
        if self.num_workers > 0:
            self._pool = multiprocessing.Pool(self.num_workers)

    def after_test_iter(self,
                        runner,
                        batch_idx: int,
                        data_batch=None,
                        outputs: Optional[Sequence] = None) -> None:
        for sample in outputs or []:
            if 'pred_cam' not in sample:
                raise KeyError('CAMToPseudoLabelHook: the model output has '
                               'no pred_cam (use a CAM model such as '
                               'CAMClassifier)')
            img_id = sample.metainfo.get('img_id')
            if img_id is None:
                raise KeyError('CAMToPseudoLabelHook: data sample without '
                               'img_id; use a WSSS dataset and '
                               'PackWSSSInputs')
            out_path = osp.join(self._out, f'{img_id}.png')
            if not self.overwrite and osp.isfile(out_path):
                self._num_skipped += 1
                continue
            pred = sample.pred_cam
            keys = np.asarray(pred['keys'].detach().cpu().numpy())  # [K]
            if self.mode == 'random_walk':
                self._write_random_walk(sample, img_id, keys, out_path)
                continue
            high_res = pred['high_res'].detach().cpu().numpy()  # [K, H, W]
            job = (img_id, sample.metainfo.get('img_path'), out_path, keys,
                   high_res, self.mode, self.threshold, self.ir_label,
                   self.fg_thr, self.bg_thr, self.crf_cfg, self._palette)
            if self._pool is None:
                _write_label(job)
            else:
                self._pending.append(self._pool.apply_async(_write_label,
                                                            (job, )))
                # bound the CAMs held in flight; surface errors early
                while len(self._pending) > 4 * self.num_workers:
                    self._pending.pop(0).get()
            self._num_written += 1

    def _write_random_walk(self, sample, img_id: str, keys: np.ndarray,
                           out_path: str) -> None:
        from ...refine.irn_inference import random_walk_label
        img_path = sample.metainfo.get('img_path')
        if not img_path or not osp.isfile(img_path):
            raise FileNotFoundError(f'image {img_id!r}: image file not found '
                                    f'({img_path!r}); IRNet needs it')
        pred = sample.pred_cam
        image_hw = tuple(pred['high_res'].shape[1:])
        cam = dict(keys=keys, cam=pred['cam'].detach().cpu().numpy())
        edge = self._irn.edge(img_path, img_id)
        label = random_walk_label(cam, edge, image_hw, self._irn.rw_cfg,
                                  img_id)
        atomic_write_bytes(out_path, label_to_png_bytes(label, self._palette))
        self._num_written += 1

    def after_test(self, runner) -> None:
        if self._pool is not None:
            try:
                for result in self._pending:
                    result.get()
            finally:
                self._pool.close()
                self._pool.join()
                self._pool = None
                self._pending = []
        release_output_dir(self._out, self._settings_record)
        out = osp.abspath(self._out)
        img_prefix = self._dataset.data_prefix.get('img_path', '')
        root = getattr(self._dataset, 'data_root', None) or ''
        if root and img_prefix.startswith(root):
            img_prefix = osp.relpath(img_prefix, root)
        print_log(
            f'CAMToPseudoLabelHook ({self._describe()}): '
            f'{self._num_written} pseudo label(s) written, '
            f'{self._num_skipped} already present (skipped), in {out}',
            logger='current')
        print_log(
            "Train a segmenter on them with the dataset's data_prefix="
            f"dict(img_path='{img_prefix}', seg_map_path='{out}') "
            "(an absolute seg_map_path is used as is, a relative one is "
            'joined to data_root)', logger='current')
