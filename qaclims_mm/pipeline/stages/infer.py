"""``InferCAMsStage``: the CAM files of a CAM config's test split."""
import copy
import os.path as osp
from typing import Any, Dict, List, Optional, Sequence

from mmengine.config import Config

from ..base import PIPELINE_STAGES, StageContext, StageInputError
from .config_stage import ConfigStage, sub_run

#: The test run's folder under the stage dir.
INFER_SUBDIR = 'infer'
#: The metric a CAM config evaluates (its numbers become the stage's).
CAM_METRIC = 'CAMIoUMetric'


@PIPELINE_STAGES.register_module()
class InferCAMsStage(ConfigStage):
    """Run the test loop of a CAM config; ``SaveCAMHook`` writes the CAMs.

    Inputs: ``checkpoint`` (the trained weights) and config keys (data
    roots). Outputs: ``cams`` (one ``<img_id>.npz`` per image of the
    config's test split, :mod:`qaclims_mm.utils.cam_file`), optionally
    ``vis`` (the hook's overlay pictures).

    Under several ranks the test sampler does not pad (``DefaultSampler``
    ``round_up=False``): each image is inferred and written by one rank.

    Resume: CAM files are written atomically, so an existing file is
    complete; a resumed run infers only the images without a file (the test
    dataset restricted with ``indices``) and, when the config evaluates
    CAMs, scores the whole folder offline.

    Metrics: when the config's ``test_evaluator`` is ``CAMIoUMetric`` and the
    split has masks, its numbers: ``mIoU`` (%, at its threshold, 0.15 by
    default), ``best_mIoU``, ``best_threshold``, ``fg_false_act``; plus
    ``num_cams``.

    Args:
        split (str, optional): Another split of the dataset than the
            config's test split: the name of a file in
            ``ImageSets/Segmentation`` (e.g. ``'train_aug'``, the images the
            IR labels and pseudo masks are made for). Its CAMs are written
            without scoring (such splits lack full masks) unless
            ``evaluate``. Defaults to None (the config's split).
        evaluate (bool): Score the CAMs of ``split`` against the masks of
            the config's ``seg_map_path``. Defaults to False.
    """

    run_on = 'all'
    required_inputs = ('checkpoint', )
    required_outputs = ('cams', )

    def __init__(self, name: str, inputs: Optional[Dict[str, str]] = None,
                 outputs: Optional[Dict[str, str]] = None,
                 split: Optional[str] = None, evaluate: bool = False,
                 **kwargs) -> None:
        params = dict(kwargs)
        if split is not None:
            params.update(split=split, evaluate=evaluate)
        super().__init__(name, inputs, outputs, **params)
        self.split = split
        self.evaluate = bool(evaluate)

    def check_inputs(self, ctx: StageContext) -> None:
        super().check_inputs(ctx)
        cfg = self.load_config()
        if not isinstance(cfg.get('test_dataloader'), dict):
            raise StageInputError(
                f'stage {self.name!r}: {self.config} has no test_dataloader '
                f'(the split whose CAMs are written)')

    def build_test_config(self, ctx: StageContext) -> Config:
        """The test config: checkpoint, CAM folder, no sampler padding."""
        from ...utils.config import set_cam_dir
        cfg = self.build_config(ctx, INFER_SUBDIR)
        cfg.load_from = self.inputs['checkpoint']
        set_cam_dir(cfg, self.outputs['cams'])
        if 'vis' in self.outputs:
            for hook in cfg.custom_hooks:
                if hook.get('type') == 'SaveCAMHook':
                    hook['vis_dir'] = self.outputs['vis']
        no_padding(cfg, 'test_dataloader')
        if self.split is not None:
            dataset = cfg.test_dataloader.dataset
            dataset['ann_file'] = f'ImageSets/Segmentation/{self.split}.txt'
            dataset.pop('indices', None)
            if not self.evaluate:
                dataset['with_seg_map'] = False
        return cfg

    def run(self, ctx: StageContext) -> Dict[str, Any]:
        cfg = self.build_test_config(ctx)
        dataset = build_dataset(cfg.test_dataloader.dataset)
        ids = dataset_ids(dataset)
        cam_dir = self.outputs['cams']
        todo = list(range(len(ids)))
        if ctx.resume:
            todo = [i for i, img_id in enumerate(ids)
                    if not osp.isfile(osp.join(cam_dir, img_id + '.npz'))]
            if ctx.distributed:  # every rank shards the same list
                from mmengine.dist import broadcast_object_list
                shared = [todo]
                broadcast_object_list(shared)
                todo = shared[0]
        evaluates = (cfg.get('test_evaluator') or {}).get('type') == \
            CAM_METRIC
        loop_metrics = None
        if todo:
            if len(todo) < len(ids):
                restrict(cfg.test_dataloader.dataset, todo)
                if ctx.logger is not None:
                    ctx.logger.info(
                        f'stage {self.name}: {len(ids) - len(todo)} of '
                        f'{len(ids)} CAM files exist; inferring the other '
                        f'{len(todo)}')
            with sub_run(ctx):
                runner = self.build_runner(cfg)
                loop_metrics = runner.test()
        metrics: Dict[str, Any] = dict(num_cams=len(ids))
        if not evaluates or not getattr(dataset, 'with_seg_map', False):
            return metrics
        if len(todo) == len(ids) and loop_metrics:
            metrics.update({k: float(loop_metrics[k])
                            for k in CAM_METRIC_KEYS if k in loop_metrics})
        elif ctx.rank == 0:
            metrics.update(offline_cam_metrics(cfg, dataset, ids, cam_dir))
        return metrics

    def headline(self, metrics: Dict[str, Any]) -> Dict[str, Any]:
        """CAM mIoU at the threshold and the best threshold."""
        return {k: metrics[k] for k in ('mIoU', 'best_threshold', 'best_mIoU',
                                        'num_cams') if k in metrics}


#: The numbers of ``CAMIoUMetric`` the stage reports.
CAM_METRIC_KEYS = ('mIoU', 'best_mIoU', 'best_threshold', 'fg_false_act')


def no_padding(cfg: Config, loader: str) -> None:
    """``round_up=False`` for a ``DefaultSampler``: no image runs twice."""
    sampler = cfg[loader].get('sampler')
    if isinstance(sampler, dict) and sampler.get(
            'type', 'DefaultSampler') in ('DefaultSampler', ):
        sampler['round_up'] = False


def build_dataset(dataset_cfg: dict):
    """Build a dataset config in the ``mmseg`` scope (reads its split)."""
    from mmengine.registry import init_default_scope
    from mmseg.registry import DATASETS
    init_default_scope('mmseg')
    return DATASETS.build(copy.deepcopy(dataset_cfg))


def dataset_ids(dataset) -> List[str]:
    """The image ids of a built WSSS dataset, in order."""
    ids = []
    for i in range(len(dataset)):
        info = dataset.get_data_info(i)
        img_id = info.get('img_id') or osp.splitext(
            osp.basename(info['img_path']))[0]
        ids.append(str(img_id))
    return ids


def restrict(dataset_cfg: dict, positions: Sequence[int]) -> None:
    """Keep only ``positions`` of the dataset (composes with ``indices``)."""
    base = dataset_cfg.get('indices')
    if base is None:
        picked = list(positions)
    elif isinstance(base, int):
        picked = list(positions) if base >= 0 else None
        if picked is None:
            raise ValueError('a negative dataset indices cannot be resumed')
    else:
        base = list(base)
        picked = [base[p] for p in positions]
    dataset_cfg['indices'] = [int(p) for p in picked]


def offline_cam_metrics(cfg: Config, dataset, ids: Sequence[str],
                        cam_dir: str) -> Dict[str, float]:
    """``CAMIoUMetric``'s numbers computed from the CAM files of ``ids``."""
    from ...evaluation.metrics.cam_metric import cam_metrics_from_summary
    from ...evaluation.offline import evaluate_cams
    metric = dict(cfg.test_evaluator)
    gt_dir = dataset.data_prefix.get('seg_map_path', '')
    suffix = getattr(dataset, 'seg_map_suffix', '.png')
    if suffix != '.png':
        raise ValueError(f'CAM metrics offline need .png masks, got {suffix}')
    result = evaluate_cams(
        cam_dir, gt_dir, ids, list(dataset.metainfo['classes']),
        threshold=metric.get('threshold', 0.15),
        sweep=metric.get('sweep', (0.05, 0.59, 0.01)),
        cam_type=metric.get('cam_type', 'high_res'),
        ignore_index=metric.get('ignore_index', 255),
        split=metric.get('split') or 'unknown')
    return cam_metrics_from_summary(result['summary'])


