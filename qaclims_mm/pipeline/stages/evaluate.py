"""Evaluation stages: CAM files and pseudo masks against GT label PNGs.

Thin wrappers over :func:`~qaclims_mm.evaluation.evaluate_cams` (one
threshold plus the official sweep, spec §6.2) and
:func:`~qaclims_mm.evaluation.evaluate_pseudo_masks` (spec §6.6). Both write
``<stage_dir>/eval.json`` (the metrics and the dataset confusion matrix) and
a text report; scores are percentages (as mmseg's ``IoUMetric`` reports).
"""
import os.path as osp
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

from ...evaluation.cam_labels import DEFAULT_CAM_THRESHOLD, check_threshold
from ...evaluation.confusion import (confusion_to_scores,
                                     fg_false_activation_per_class)
from ...utils.io import atomic_write_text
from ..base import PIPELINE_STAGES, StageContext, require_files
from .common import (FunctionStage, dataset_metainfo, percent, read_split_ids,
                     write_json)

#: The official threshold sweep (``--eval_cam_best``): 0.05..0.59 by 0.01.
DEFAULT_SWEEP = (0.05, 0.59, 0.01)


def class_scores(conf: np.ndarray,
                 class_names: Sequence[str]) -> Dict[str, Any]:
    """The scores of one ``[N, N]`` confusion matrix, in percent.

    Args:
        conf (np.ndarray): Dataset confusion matrix (rows = GT).
        class_names (Sequence[str]): ``N`` names, background first.

    Returns:
        dict: ``mIoU``, ``IoU_per_class`` (name -> IoU),
        ``fg_false_activation`` (predicted-foreground pixels that are GT
        background) and ``fg_false_activation_per_class`` (object class ->
        share of its predicted pixels that are GT background; None for a
        class never predicted).
    """
    scores = confusion_to_scores(conf)
    per_class = fg_false_activation_per_class(conf)
    return dict(
        mIoU=percent(scores['mIoU']),
        IoU_per_class={n: percent(v)
                       for n, v in zip(class_names, scores['IoU'])},
        fg_false_activation=percent(scores['fg_false_activation']),
        fg_false_activation_per_class={
            n: percent(v)
            for n, v in zip(class_names[1:], per_class)
        })


class _EvalStage(FunctionStage):
    """Shared parts: ``split`` and ``gt`` inputs, the ``dataset`` param."""

    run_on = 'rank0'

    def __init__(self, name: str, inputs: Optional[Dict[str, str]] = None,
                 outputs: Optional[Dict[str, str]] = None,
                 dataset: str = 'voc', **params) -> None:
        super().__init__(name, inputs, outputs, dataset=dataset, **params)
        self._classes = None

    @property
    def class_names(self) -> Sequence[str]:
        """The dataset's classes, background first."""
        if self._classes is None:
            self._classes = tuple(
                dataset_metainfo(self.params['dataset'])['classes'])
        return self._classes

    def num_classes(self) -> Optional[int]:
        return len(self.class_names) - 1

    def ids(self) -> List[str]:
        """The ids of the ``split`` input."""
        return read_split_ids(self.name, 'split', self.inputs['split'])

    def split_name(self) -> str:
        """The split file's stem (``train``), for the report header."""
        return osp.splitext(osp.basename(self.inputs['split']))[0]


@PIPELINE_STAGES.register_module()
class EvalCAMsStage(_EvalStage):
    """CAM mIoU at ``threshold`` and over a threshold sweep.

    Inputs: ``cams`` (CAM ``.npz`` folder), ``gt`` (GT PNG folder,
    ``SegmentationClass``), ``split`` (id file; the paper scores VOC
    ``train``). No outputs: writes ``<stage_dir>/eval.json`` and
    ``<stage_dir>/eval_report.txt``.

    Metrics (percent): ``mIoU`` at ``threshold``, ``best_threshold``,
    ``best_mIoU``, ``fg_false_activation`` and
    ``fg_false_activation_per_class`` at ``threshold``, ``sweep`` =
    ``dict(thresholds=[...], mIoU=[...])``.

    Args:
        threshold (float): The reported background threshold. Defaults to
            0.15 (spec §6.2).
        sweep (tuple, optional): ``(start, stop, step)``, stop included;
            None scores ``threshold`` only. Defaults to ``(0.05, 0.59,
            0.01)`` (the official ``--eval_cam_best`` grid).
        cam_type (str): ``'high_res'`` (official) or ``'cam'``. Defaults to
            ``'high_res'``.
        dataset (str): ``'voc'``, ``'coco'``, a dataset type or config: the
            class names. Defaults to ``'voc'``.
    """
    required_inputs = ('cams', 'gt', 'split')

    def __init__(self, name: str, inputs: Optional[Dict[str, str]] = None,
                 outputs: Optional[Dict[str, str]] = None,
                 threshold: float = DEFAULT_CAM_THRESHOLD,
                 sweep: Optional[Sequence[float]] = DEFAULT_SWEEP,
                 cam_type: str = 'high_res', **params) -> None:
        check_threshold(threshold, f'stage {name!r} threshold')
        if sweep is not None:
            sweep = [float(v) for v in sweep]
            if len(sweep) != 3:
                raise ValueError(f'stage {name!r}: sweep must be (start, '
                                 f'stop, step), got {sweep}')
        super().__init__(name, inputs, outputs, threshold=float(threshold),
                         sweep=sweep, cam_type=cam_type, **params)

    def check_inputs(self, ctx: StageContext) -> None:
        ids = self.ids()
        require_files(self.name, 'cams', self.inputs['cams'], ids, '.npz')
        require_files(self.name, 'gt', self.inputs['gt'], ids, '.png')

    def run(self, ctx: StageContext) -> Dict[str, Any]:
        from ...evaluation.offline import evaluate_cams
        p = self.params
        ids = self.ids()
        result = evaluate_cams(
            self.inputs['cams'], self.inputs['gt'], ids, self.class_names,
            p['threshold'], p['sweep'], p['cam_type'],
            split=self.split_name(), progress=ctx.progress)
        thresholds = result['thresholds']
        at = int(np.flatnonzero(np.isclose(thresholds, p['threshold'],
                                           rtol=0, atol=1e-9))[0])
        at_thr = class_scores(result['conf'][at], self.class_names)
        metrics = dict(
            mIoU=at_thr['mIoU'],
            best_threshold=float(result['best_threshold']),
            best_mIoU=percent(result['best_mIoU']),
            fg_false_activation=at_thr['fg_false_activation'],
            fg_false_activation_per_class=at_thr[
                'fg_false_activation_per_class'],
            sweep=dict(thresholds=[float(t) for t in thresholds],
                       mIoU=[percent(v)
                             for v in result['summary']['mIoU_curve']]),
            num_images=len(ids))
        write_json(
            osp.join(ctx.stage_dir, 'eval.json'),
            dict(metrics=metrics, threshold=p['threshold'],
                 split=self.inputs['split'], class_names=self.class_names,
                 IoU_per_class=at_thr['IoU_per_class'],
                 confusion=result['conf'][at].tolist()))
        atomic_write_text(osp.join(ctx.stage_dir, 'eval_report.txt'),
                          result['report'] + '\n')
        if ctx.logger is not None:
            ctx.logger.info('\n' + result['report'])
        return metrics

    def headline(self, metrics: Dict[str, Any]) -> Dict[str, Any]:
        keys = ('mIoU', 'best_threshold', 'best_mIoU', 'fg_false_activation')
        return {k: metrics[k] for k in keys if k in metrics}


@PIPELINE_STAGES.register_module()
class EvalPseudoMasksStage(_EvalStage):
    """Pseudo-mask mIoU by the official rule (spec §6.6: 255 in a mask
    counts as background).

    Inputs: ``labels`` (pseudo-mask PNG folder), ``gt``, ``split``. No
    outputs: writes ``<stage_dir>/eval.json`` and
    ``<stage_dir>/eval_report.txt``.

    Metrics (percent): ``mIoU``, ``IoU_per_class`` (name -> IoU),
    ``fg_false_activation``, ``fg_false_activation_per_class``,
    ``bg_fp_rate``, ``bg_fn_rate``.

    Args:
        dataset (str): ``'voc'``, ``'coco'``, a dataset type or config: the
            class names. Defaults to ``'voc'``.
    """
    required_inputs = ('labels', 'gt', 'split')

    def check_inputs(self, ctx: StageContext) -> None:
        ids = self.ids()
        require_files(self.name, 'labels', self.inputs['labels'], ids,
                      '.png')
        require_files(self.name, 'gt', self.inputs['gt'], ids, '.png')

    def run(self, ctx: StageContext) -> Dict[str, Any]:
        from ...evaluation.metrics.pseudo_mask_metric import (
            evaluate_pseudo_masks, format_pseudo_mask_report)
        ids = self.ids()
        conf = evaluate_pseudo_masks(
            self.inputs['labels'], self.inputs['gt'], ids,
            num_classes=self.num_classes(), progress=ctx.progress)
        scores = confusion_to_scores(conf)
        metrics = class_scores(conf, self.class_names)
        metrics.update(bg_fp_rate=percent(scores['fp_rate'][0]),
                       bg_fn_rate=percent(scores['fn_rate'][0]),
                       num_images=len(ids))
        report = format_pseudo_mask_report(conf, self.class_names,
                                           split=self.split_name(),
                                           num_images=len(ids))
        write_json(osp.join(ctx.stage_dir, 'eval.json'),
                   dict(metrics=metrics, split=self.inputs['split'],
                        class_names=self.class_names,
                        confusion=conf.tolist()))
        atomic_write_text(osp.join(ctx.stage_dir, 'eval_report.txt'),
                          report + '\n')
        if ctx.logger is not None:
            ctx.logger.info('\n' + report)
        return metrics

    def headline(self, metrics: Dict[str, Any]) -> Dict[str, Any]:
        keys = ('mIoU', 'fg_false_activation')
        return {k: metrics[k] for k in keys if k in metrics}
