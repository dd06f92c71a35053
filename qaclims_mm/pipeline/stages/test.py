"""``TestStage``: segmentation val mIoU of a checkpoint, without and with the
dense CRF, and its prediction PNGs."""
import copy
import os
import os.path as osp
from typing import Any, Dict, List, Optional, Sequence

import numpy as np
from mmengine.config import Config
from mmengine.hooks import Hook

from ..base import PIPELINE_STAGES, StageContext, StageInputError
from .config_stage import ConfigStage, sub_run
from .infer import build_dataset, dataset_ids, no_padding

#: Folders of the two test runs under the stage dir.
PLAIN_SUBDIR = 'test'
CRF_SUBDIR = 'test_crf'


class SavePredictionsHook(Hook):
    """Write ``pred_sem_seg`` of every test sample as a palette PNG.

    Args:
        out_dir (str): The folder (``<img_id>.png``, written atomically).
        palette (Sequence[Sequence[int]]): RGB per label.
    """
    priority = 'LOW'

    def __init__(self, out_dir: str, palette: Sequence[Sequence[int]]):
        from ...utils.label_io import label_png_palette
        self.out_dir = out_dir
        self.palette = label_png_palette(palette)
        self.num_written = 0

    def before_test(self, runner) -> None:
        os.makedirs(self.out_dir, exist_ok=True)

    def after_test_iter(self, runner, batch_idx: int, data_batch=None,
                        outputs: Optional[Sequence] = None) -> None:
        save_predictions(outputs or [], self.out_dir, self.palette)
        self.num_written += len(outputs or [])


def _sample_id(sample) -> str:
    img_id = sample.metainfo.get('img_id')
    if img_id is None:
        img_id = osp.splitext(osp.basename(sample.metainfo['img_path']))[0]
    return str(img_id)


def save_predictions(samples: Sequence, out_dir: str,
                     palette: Sequence[Sequence[int]]) -> None:
    """Write each sample's ``pred_sem_seg`` as ``<out_dir>/<img_id>.png``."""
    from ...utils.label_io import write_label_png
    for sample in samples:
        pred = sample.pred_sem_seg.data
        label = pred.detach().cpu().numpy().reshape(pred.shape[-2:])
        write_label_png(osp.join(out_dir, _sample_id(sample) + '.png'),
                        label.astype(np.uint8), palette)


@PIPELINE_STAGES.register_module()
class TestStage(ConfigStage):
    """Val mIoU of a segmentation checkpoint, without and with the dCRF.

    The config's test loop runs once with ``model.test_cfg.crf=False`` and,
    with ``crf=True`` (default), once more with ``model.test_cfg.crf=True``
    (``MSCEncoderDecoder``'s dense CRF; ``DenseCRFSegTTAModel`` reads the
    same key). The sampler does not pad, so each image is predicted by one
    rank.

    Inputs: ``checkpoint``, config keys (data roots) and optionally
    ``vis_split`` (a split file, e.g. ``train.txt``, of the images shown in
    the report). Outputs: ``predictions`` (one palette PNG per image of the
    test split: the CRF predictions when ``crf``, else the plain ones);
    optionally ``vis_predictions`` (PNGs of the first ``num_vis`` ids of
    ``vis_split``, same setting). The other run's PNGs stay in
    ``<stage_dir>/<test|test_crf>/predictions``.

    Resume: the test runs again (a test pass is not resumable in MMEngine,
    and the metric needs every image); the PNGs are rewritten atomically.

    Metrics: ``mIoU`` and ``mIoU_crf`` (%, the config's ``IoUMetric``), and
    ``IoU_per_class`` / ``IoU_per_class_crf`` (%, from the written PNGs and
    the GT masks).

    Args:
        crf (bool): Also test with the dense CRF. Defaults to True.
        num_vis (int): Images of ``vis_split`` predicted for the report.
            Defaults to 4.
    """

    __test__ = False  # not a pytest test class
    run_on = 'all'
    required_inputs = ('checkpoint', )
    required_outputs = ('predictions', )

    def __init__(self, name: str, inputs: Optional[Dict[str, str]] = None,
                 outputs: Optional[Dict[str, str]] = None,
                 crf: bool = True, num_vis: int = 4, **kwargs) -> None:
        super().__init__(name, inputs, outputs, crf=crf, num_vis=num_vis,
                         **kwargs)
        self.crf = bool(crf)
        self.num_vis = int(num_vis)
        if 'vis_predictions' in self.outputs and 'vis_split' not in \
                self.inputs:
            raise KeyError(f'stage {name!r}: output vis_predictions needs '
                           f'the input vis_split (a split file)')

    def check_inputs(self, ctx: StageContext) -> None:
        super().check_inputs(ctx)
        cfg = self.load_config()
        if not isinstance(cfg.get('test_dataloader'), dict) or not cfg.get(
                'test_evaluator'):
            raise StageInputError(
                f'stage {self.name!r}: {self.config} has no test_dataloader '
                f'/ test_evaluator (the val split and its metric)')

    def _runs(self) -> List[tuple]:
        """``(crf, work subdir, prediction dir)`` of each test run."""
        runs = [(False, PLAIN_SUBDIR)]
        if self.crf:
            runs.append((True, CRF_SUBDIR))
        final = runs[-1][0]
        return [(crf, sub, None if crf == final else sub)
                for crf, sub in runs]

    def build_test_config(self, ctx: StageContext, crf: bool,
                          subdir: str) -> Config:
        """The config of one test run (checkpoint, CRF on/off, no padding)."""
        cfg = self.build_config(ctx, subdir)
        cfg.load_from = self.inputs['checkpoint']
        cfg.model.setdefault('test_cfg', {})
        cfg.model.test_cfg['crf'] = crf
        no_padding(cfg, 'test_dataloader')
        return cfg

    def run(self, ctx: StageContext) -> Dict[str, Any]:
        metrics: Dict[str, Any] = {}
        for crf, subdir, own_dir in self._runs():
            cfg = self.build_test_config(ctx, crf, subdir)
            dataset = build_dataset(cfg.test_dataloader.dataset)
            pred_dir = (self.outputs['predictions'] if own_dir is None else
                        osp.join(ctx.stage_dir, own_dir, 'predictions'))
            hook = SavePredictionsHook(pred_dir, dataset.metainfo['palette'])
            with sub_run(ctx):
                runner = self.build_runner(cfg)
                runner.register_hook(hook)
                result = runner.test()
                if own_dir is None and 'vis_predictions' in self.outputs \
                        and ctx.rank == 0:
                    self._predict_vis(runner, cfg, hook.palette)
            suffix = '_crf' if crf else ''
            metrics['mIoU' + suffix] = float(result['mIoU'])
            if ctx.rank == 0:
                metrics['IoU_per_class' + suffix] = per_class_iou(
                    dataset, pred_dir)
        return metrics

    def _predict_vis(self, runner, cfg: Config, palette) -> None:
        """Predict the first ``num_vis`` ids of ``vis_split`` (rank 0)."""
        from mmengine.dataset import pseudo_collate
        dataset_cfg = copy.deepcopy(cfg.test_dataloader.dataset)
        dataset_cfg.update(
            ann_file=self.inputs['vis_split'], indices=self.num_vis,
            with_seg_map=False, test_mode=True,
            pipeline=[t for t in dataset_cfg['pipeline']
                      if t.get('type') != 'LoadAnnotations'])
        dataset = build_dataset(dataset_cfg)
        out_dir = self.outputs['vis_predictions']
        os.makedirs(out_dir, exist_ok=True)
        model = runner.model
        model.eval()
        import torch
        with torch.no_grad():
            for i in range(len(dataset)):
                outputs = model.test_step(pseudo_collate([dataset[i]]))
                save_predictions(outputs, out_dir, palette)

    def headline(self, metrics: Dict[str, Any]) -> Dict[str, Any]:
        """Val mIoU without and with the CRF."""
        return {k: metrics[k] for k in ('mIoU', 'mIoU_crf') if k in metrics}


def per_class_iou(dataset, pred_dir: str) -> Dict[str, float]:
    """IoU (%) per class of the PNGs in ``pred_dir`` against the dataset's
    GT masks (None for a class absent from both)."""
    from ...evaluation.confusion import confusion_matrix, confusion_to_scores
    from ...utils.label_io import read_label_png
    classes = list(dataset.metainfo['classes'])
    conf = np.zeros((len(classes), len(classes)), dtype=np.int64)
    for i, img_id in enumerate(dataset_ids(dataset)):
        gt_path = dataset.get_data_info(i)['seg_map_path']
        pred_path = osp.join(pred_dir, img_id + '.png')
        if not osp.isfile(pred_path):
            raise StageInputError(f'no prediction for image {img_id!r}: '
                                  f'{pred_path}')
        conf += confusion_matrix(read_label_png(gt_path),
                                 read_label_png(pred_path), len(classes))
    iou = confusion_to_scores(conf)['IoU']
    return {name: (round(float(v) * 100, 2) if np.isfinite(v) else None)
            for name, v in zip(classes, iou)}
