"""Turn the CAMs of a test run into pseudo-label PNGs, one per image."""
import os.path as osp
from typing import Callable, Dict, Mapping, Optional, Sequence, Union

import numpy as np
from mmengine.dist import get_dist_info
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmseg.registry import HOOKS

from ...models.utils.cam_ops import DEFAULT_CAM_THRESHOLD
from ...utils.registry import REFINERS
from ...utils.image_jobs import ImageJobWriter
from ...utils.label_io import label_png_palette, label_to_png_bytes


def refine_to_png(img_id: str, refiner: Callable,
                  cam: Mapping[str, np.ndarray], img_path: Optional[str],
                  palette: Sequence[Sequence[int]]) -> bytes:
    """One image's pseudo label as PNG bytes (runs in a worker, too).

    Args:
        img_id (str): The image id, named in errors.
        refiner (Callable): The refiner
            (:class:`~qaclims_mm.refine.refiners.BaseRefiner`).
        cam (Mapping): ``keys`` and the refiner's CAM entry.
        img_path (str, optional): The image file.
        palette (Sequence[Sequence[int]]): The 256 PNG colours.
    """
    return label_to_png_bytes(refiner(cam, img_path, img_id), palette)


@HOOKS.register_module()
class CAMToPseudoLabelHook(Hook):
    """Write ``<out_dir>/<img_id>.png`` pseudo labels from ``pred_cam``.

    Attach it to a test run of a CAM model (``custom_hooks``): after every
    test iteration, each sample's ``pred_cam`` (``keys`` ``[K]``, the
    full-resolution ``high_res`` and the stride-4 ``cam``) is turned into a
    palette PNG in MMSegmentation's label format (0 background, ``1..C`` the
    classes, 255 ignore in IR labels) by a registered refiner
    (:mod:`qaclims_mm.refine.refiners`), the same one the offline stages
    use:

    - ``dict(type='ThresholdRefiner', threshold=0.15)``: a background plane
      at ``threshold``, argmax (the labels the CAM metric scores, §6.2);
    - ``dict(type='CRFRefiner', threshold=0.15)``: those labels refined by
      the dense CRF on the image read from the sample's ``img_path``;
    - ``dict(type='IRLabelRefiner', fg_threshold=0.30, bg_threshold=0.10)``:
      the IR labels of §6.3 (``use_crf=False`` for plain thresholds);
    - ``dict(type='RandomWalkRefiner', irn=dict(config=..., checkpoint=...))``:
      IRNet boundaries + random walk on ``pred_cam['cam']`` (§6.5), on the
      model's device; the same labels as ``tools/make_sem_seg_labels.py``
      on saved CAMs.

    PNGs that exist are skipped (a re-run resumes and changes nothing)
    unless ``overwrite``; writes are atomic; the refiner's settings and the
    CAM checkpoint are recorded in ``<out_dir>/settings.json`` and a run
    with other settings into the same folder is refused unless
    ``overwrite`` (:class:`~qaclims_mm.utils.image_jobs.ImageJobWriter`).
    Images without labels (``K = 0``) get all-background PNGs. The palette
    is the test dataset's metainfo palette. At the end the counts (of all
    ranks) and the ``data_prefix`` to train on the labels are logged. Under
    DDP each rank writes the images of its share; pass
    ``test_dataloader.sampler.round_up=False`` so that no image is padded
    onto a second rank.

    Args:
        out_dir (str): Output folder; relative to the runner's ``work_dir``
            unless absolute.
        refiner (dict | BaseRefiner): The refiner (a config of
            :data:`~qaclims_mm.utils.registry.REFINERS`, or a built one).
            Defaults to ``dict(type='ThresholdRefiner', threshold=0.15)``.
        overwrite (bool): Rewrite PNGs that exist and accept a folder
            recorded with other settings. Defaults to False.
        num_workers (int): CPU processes for the refiner (the CRF is slow);
            0 computes in the test loop. Defaults to 0 (and always 0 for a
            refiner that runs a model).
    """
    priority = 'LOW'

    def __init__(self,
                 out_dir: str,
                 refiner: Union[Dict, Callable] = dict(
                     type='ThresholdRefiner',
                     threshold=DEFAULT_CAM_THRESHOLD),
                 overwrite: bool = False,
                 num_workers: int = 0) -> None:
        self.out_dir = out_dir
        self.refiner = (REFINERS.build(dict(refiner))
                        if isinstance(refiner, Mapping) else refiner)
        self.overwrite = bool(overwrite)
        self.num_workers = int(num_workers) if self.refiner.parallel else 0
        self._writer: Optional[ImageJobWriter] = None

    def _settings(self, runner) -> Dict:
        """What decides the PNGs' content, recorded in the output folder."""
        cfg = getattr(runner, 'cfg', None)
        load_from = cfg.get('load_from') if cfg is not None else None
        return dict(writer='CAMToPseudoLabelHook',
                    refiner=type(self.refiner).__name__,
                    cam_checkpoint=(osp.abspath(load_from)
                                    if isinstance(load_from, str) else None),
                    **self.refiner.settings())

    def before_test(self, runner) -> None:
        out = (self.out_dir if osp.isabs(self.out_dir) else osp.join(
            runner.work_dir, self.out_dir))
        self._dataset = runner.test_dataloader.dataset
        self._palette = label_png_palette(self._dataset.metainfo['palette'])
        if not self.refiner.parallel:
            device = next(runner.model.parameters()).device
            self.refiner.prepare(str(device))
        # under DDP rank 0 alone claims the folder's settings record, and
        # marks it complete once every rank finished (close() is collective)
        rank, world_size = get_dist_info()
        self._writer = ImageJobWriter(out, self._settings(runner),
                                      self.overwrite, self.num_workers,
                                      rank=rank,
                                      world_size=world_size).open()

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
            if self._writer.is_done(img_id):
                self._writer.skip(img_id)
                continue
            pred = sample.pred_cam
            field = self.refiner.cam_field
            cam = dict(keys=pred['keys'].detach().cpu().numpy(),
                       **{field: pred[field].detach().cpu().numpy()})
            self._writer.submit(img_id, refine_to_png, self.refiner, cam,
                                sample.metainfo.get('img_path'),
                                self._palette)

    def after_test(self, runner) -> None:
        result = self._writer.close()
        out = osp.abspath(self._writer.out_dir)
        img_prefix = self._dataset.data_prefix.get('img_path', '')
        root = getattr(self._dataset, 'data_root', None) or ''
        if root and img_prefix.startswith(root):
            img_prefix = osp.relpath(img_prefix, root)
        print_log(
            f'CAMToPseudoLabelHook ({self.refiner!r}): '
            f'{result.written} pseudo label(s) written, '
            f'{result.skipped} already present (skipped), in {out}',
            logger='current')
        print_log(
            "Train a segmenter on them with the dataset's data_prefix="
            f"dict(img_path='{img_prefix}', seg_map_path='{out}') "
            "(an absolute seg_map_path is used as is, a relative one is "
            'joined to data_root)', logger='current')
