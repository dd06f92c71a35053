"""Label stages: a folder of CAM files -> a folder of label PNGs.

Thin wrappers over :mod:`qaclims_mm.refine.stages`; every rank of a
distributed run writes its share of the split (:func:`.common.run_sharded`),
finished PNGs are skipped, so a killed stage resumes where it stopped.

=================== =================================== ====================
type                writer                              defaults (spec)
=================== =================================== ====================
``PseudoLabelStage`` :func:`make_pseudo_labels`          ThresholdRefiner 0.15
                                                        (§6.2)
``IRLabelsStage``    :func:`make_ir_labels`              fg 0.30, bg 0.10
                                                        (§6.3)
``RandomWalkStage``  :func:`make_rw_labels`              radius 5, beta 10,
                                                        exp_times 8, bg 0.2
                                                        (§6.5)
=================== =================================== ====================
"""
import os.path as osp
from typing import Any, Dict, List, Optional

from ...refine.refiners import build_refiner
from ...refine.stages import (make_ir_labels, make_pseudo_labels,
                              make_rw_labels)
from ..base import (PIPELINE_STAGES, StageContext, StageInputError,
                    require_files)
from .common import (FunctionStage, dataset_metainfo, default_device,
                     read_split_ids, run_sharded)


class _CAMLabelStage(FunctionStage):
    """Shared parts: inputs ``cams``, ``split`` (+ ``images``), output
    ``labels``; params ``dataset`` (class names and palette), ``img_suffix``,
    ``workers`` (CPU processes per rank), ``progress``."""

    run_on = 'all'
    required_inputs = ('cams', 'split')
    required_outputs = ('labels', )
    runtime_params = ('workers', 'device')
    #: Whether the writer reads the images (then ``images`` is required).
    needs_images = False

    def __init__(self, name: str, inputs: Optional[Dict[str, str]] = None,
                 outputs: Optional[Dict[str, str]] = None,
                 dataset: str = 'voc', img_suffix: str = '.jpg',
                 workers: int = 0, **params) -> None:
        super().__init__(name, inputs, outputs, dataset=dataset,
                         img_suffix=img_suffix, workers=workers, **params)
        if self.needs_images and 'images' not in self.inputs:
            raise KeyError(f'stage {name!r} ({type(self).__name__}) needs '
                           f'the input "images" (the JPEG folder)')
        self._meta = None

    @property
    def meta(self) -> Dict[str, Any]:
        """The dataset's ``classes`` (background first) and ``palette``."""
        if self._meta is None:
            self._meta = dataset_metainfo(self.params['dataset'])
        return self._meta

    def num_classes(self) -> Optional[int]:
        return len(self.meta['classes']) - 1

    def ids(self) -> List[str]:
        """The ids of the ``split`` input."""
        return read_split_ids(self.name, 'split', self.inputs['split'])

    def check_inputs(self, ctx: StageContext) -> None:
        ids = self.ids()
        require_files(self.name, 'cams', self.inputs['cams'], ids, '.npz')
        if self.needs_images:
            require_files(self.name, 'images', self.inputs['images'], ids,
                          self.params['img_suffix'])

    def write(self, ids: List[str], ctx: StageContext) -> None:
        """Write the PNGs of ``ids`` (skipping finished ones)."""
        raise NotImplementedError

    def run(self, ctx: StageContext) -> Dict[str, Any]:
        ids = self.ids()
        out_dir = self.outputs['labels']
        run_sharded(ctx, self.name, 'labels', out_dir, ids, '.png',
                    lambda shard: self.write(shard, ctx))
        return dict(num_images=len(ids))


@PIPELINE_STAGES.register_module()
class PseudoLabelStage(_CAMLabelStage):
    """Pseudo labels by any registered refiner (threshold, CRF, ...).

    Inputs: ``cams`` (CAM ``.npz`` folder), ``split`` (id file), ``images``
    (the JPEG folder; required when the refiner reads the image, e.g.
    ``CRFRefiner``). Output: ``labels`` (one palette PNG per id).

    Args:
        refiner (dict): The refiner config. Defaults to
            ``dict(type='ThresholdRefiner', threshold=0.15)`` (spec §6.2).
        dataset (str): ``'voc'``, ``'coco'``, a dataset type or config:
            class count and palette. Defaults to ``'voc'``.
        img_suffix (str): Defaults to ``'.jpg'``.
        workers (int): CPU processes per rank. Defaults to 0.
    """

    def __init__(self, name: str, inputs: Optional[Dict[str, str]] = None,
                 outputs: Optional[Dict[str, str]] = None,
                 refiner: Optional[Dict[str, Any]] = None, **params) -> None:
        refiner = dict(refiner or dict(type='ThresholdRefiner',
                                       threshold=0.15))
        self.needs_images = build_refiner(dict(refiner)).needs_image
        super().__init__(name, inputs, outputs, refiner=refiner, **params)

    def write(self, ids: List[str], ctx: StageContext) -> None:
        make_pseudo_labels(
            self.inputs['cams'], ids, self.outputs['labels'],
            dict(self.params['refiner']),
            img_dir=self.inputs.get('images'), palette=self.meta['palette'],
            img_suffix=self.params['img_suffix'],
            workers=self.params['workers'], progress=ctx.progress,
            num_classes=self.num_classes())


@PIPELINE_STAGES.register_module()
class IRLabelsStage(_CAMLabelStage):
    """IR labels (spec §6.3): CRF-refined confident fg / bg, 255 between.

    Inputs: ``cams``, ``images``, ``split``. Output: ``labels``.

    Args:
        fg_thr (float): Confident-foreground threshold. Defaults to 0.30
            (QA-CLIMS / CLIMS; IRNet's own is also 0.30).
        bg_thr (float): Confident-background threshold. Defaults to 0.10
            (QA-CLIMS / CLIMS; IRNet's own is 0.05).
        crf_cfg (dict, optional): Overrides of the CRF parameters.
        dataset, img_suffix, workers: as :class:`PseudoLabelStage`.
    """
    needs_images = True

    def __init__(self, name: str, inputs: Optional[Dict[str, str]] = None,
                 outputs: Optional[Dict[str, str]] = None,
                 fg_thr: float = 0.30, bg_thr: float = 0.10,
                 crf_cfg: Optional[Dict] = None, **params) -> None:
        super().__init__(name, inputs, outputs, fg_thr=fg_thr, bg_thr=bg_thr,
                         crf_cfg=crf_cfg, **params)

    def write(self, ids: List[str], ctx: StageContext) -> None:
        p = self.params
        make_ir_labels(
            self.inputs['cams'], self.inputs['images'], ids,
            self.outputs['labels'], fg_thr=p['fg_thr'], bg_thr=p['bg_thr'],
            num_workers=max(1, p['workers']), progress=ctx.progress,
            palette=self.meta['palette'], crf_cfg=p['crf_cfg'],
            img_suffix=p['img_suffix'], num_classes=self.num_classes())


@PIPELINE_STAGES.register_module()
class RandomWalkStage(_CAMLabelStage):
    """Pseudo masks by random walk on IRNet boundaries (spec §6.5).

    Inputs: ``cams`` (with the stride-4 ``cam`` maps), ``images``,
    ``split``, ``irn_checkpoint`` (the trained IRNet). Output: ``labels``.

    Args:
        config (str): The IRN config of ``irn_checkpoint`` (relative to the
            pipeline config's folder, like a training stage's ``config``).
        radius (int): Random-walk radius. Defaults to 5.
        beta (float): Affinity exponent. Defaults to 10.
        exp_times (int): ``log2`` of the walk steps. Defaults to 8.
        bg_threshold (float): Background score (``sem_seg_bg_thres``).
            Defaults to 0.2 (QA-CLIMS; IRNet's own is 0.25).
        device (str, optional): Where IRNet runs; defaults to this rank's
            GPU, else the CPU.
        dataset, img_suffix: as :class:`PseudoLabelStage` (``workers`` is
            unused: IRNet runs in the main process).
    """
    needs_images = True
    required_inputs = ('cams', 'images', 'split', 'irn_checkpoint')

    def __init__(self, name: str, inputs: Optional[Dict[str, str]] = None,
                 outputs: Optional[Dict[str, str]] = None,
                 config: Optional[str] = None, radius: int = 5,
                 beta: float = 10., exp_times: int = 8,
                 bg_threshold: float = 0.2, device: Optional[str] = None,
                 **params) -> None:
        if not config:
            raise KeyError(f'stage {name!r} (RandomWalkStage) needs '
                           'config=<the IRN config of irn_checkpoint>')
        super().__init__(name, inputs, outputs, config=config,
                         radius=radius, beta=beta, exp_times=exp_times,
                         bg_threshold=bg_threshold, device=device, **params)

    def check_inputs(self, ctx: StageContext) -> None:
        super().check_inputs(ctx)
        if not osp.isfile(self.inputs['irn_checkpoint']):
            raise StageInputError(
                f'stage {self.name!r}: input \'irn_checkpoint\' not found: '
                f'{self.inputs["irn_checkpoint"]}')

    def write(self, ids: List[str], ctx: StageContext) -> None:
        p = self.params
        make_rw_labels(
            self.inputs['cams'], self.inputs['images'], ids,
            self.outputs['labels'], p['config'],
            self.inputs['irn_checkpoint'], radius=p['radius'], beta=p['beta'],
            exp_times=p['exp_times'], bg_threshold=p['bg_threshold'],
            palette=self.meta['palette'], img_suffix=p['img_suffix'],
            device=default_device(p['device']), progress=ctx.progress)
