"""The config-based stage types (TrainStage, InferCAMsStage, TestStage),
run directly through ``stage.run(StageContext(...))`` on the synthetic
'test' preset with tiny models and schedules."""
import glob
import json
import math
import os
import os.path as osp
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
import torch

from qaclims_mm.pipeline import StageContext
from qaclims_mm.pipeline.stages import InferCAMsStage, TrainStage
from qaclims_mm.pipeline.stages import TestStage as SegTestStage
from qaclims_mm.utils.label_io import read_label_png

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CAM_CONFIG = osp.join(REPO, 'configs/cam/'
                      'cam_r18-os16_1xb16-12e_synthetic-voc-160x160.py')
DEEPLAB_CONFIG = osp.join(
    REPO, 'configs/deeplab/'
    'deeplabv2_r18-os8-msc_1xb8-ga2-600it_synthetic-voc-pseudo-128x128.py')
EPOCHS = 3
ITERS_PER_EPOCH = 2  # 8 images, batch 4
NUM_TEST = 6

# ResNet-18 with 8 base channels (64 out), 48 px crops, 8 training images,
# 3 epochs of 2 iterations, a checkpoint per epoch, every iteration logged
TINY_CAM = {
    'model.backbone.stem_channels': 8,
    'model.backbone.base_channels': 8,
    'model.cam_head.in_channels': 64,
    'train_dataloader.batch_size': 4,
    'train_dataloader.num_workers': 0,
    'train_dataloader.dataset.indices': 8,
    'train_dataloader.dataset.pipeline.1.long_range': (48, 64),
    'train_dataloader.dataset.pipeline.3.crop_size': 48,
    'train_cfg.max_epochs': EPOCHS,
    'param_scheduler.0.end': EPOCHS,
    'default_hooks.checkpoint.interval': 1,
    'default_hooks.checkpoint.max_keep_ckpts': EPOCHS,
    'default_hooks.logger.interval': 1,
    'log_processor.window_size': 1,
    'test_dataloader.num_workers': 0,
    'test_dataloader.dataset.indices': NUM_TEST,
    'test_dataloader.dataset.pipeline.1.scales': (1.0, ),
}


def cam_inputs(voc_root):
    return {'train_dataloader.dataset.data_root': voc_root,
            'test_dataloader.dataset.data_root': voc_root}


def train_stage(voc_root, out_dir, **options):
    return TrainStage(
        name='cam', config=CAM_CONFIG, cfg_options=dict(TINY_CAM, **options),
        inputs=cam_inputs(voc_root),
        outputs=dict(checkpoint=osp.join(out_dir, 'cam', 'final.pth')))


def context(work_dir, name, **kwargs):
    stage_dir = osp.join(work_dir, name)
    os.makedirs(stage_dir, exist_ok=True)
    return StageContext(work_dir=work_dir, stage_dir=stage_dir,
                        progress=False, **kwargs)


def state_dict(path):
    ckpt = torch.load(path, map_location='cpu', weights_only=True)
    return ckpt['state_dict']


def scalar_losses(work_dir):
    """``loss`` of every training record, per run (oldest first)."""
    runs = []
    for path in sorted(glob.glob(osp.join(work_dir, '*', 'vis_data',
                                          'scalars.json'))):
        with open(path) as f:
            records = [json.loads(line) for line in f if line.strip()]
        runs.append([r['loss'] for r in records if 'loss' in r])
    return runs


@pytest.fixture(scope='module')
def trained(synthetic_voc_root, tmp_path_factory):
    """An uninterrupted TrainStage run, from a process whose pipeline has
    its own logger and visualizer."""
    from mmengine.logging import MMLogger
    from mmengine.visualization import Visualizer
    work = str(tmp_path_factory.mktemp('uninterrupted'))
    logger = MMLogger.get_instance('cfgstages_pipeline')
    Visualizer.get_instance('cfgstages_pipeline_vis')
    stage = train_stage(synthetic_voc_root, work)
    metrics = stage.run(context(work, 'cam', logger=logger))
    current = (MMLogger.get_current_instance().instance_name,
               Visualizer.get_current_instance().instance_name)
    return work, stage, metrics, current


def test_train_stage_writes_the_checkpoint_and_logged_losses(trained):
    work, stage, metrics, current = trained
    # after the sub-run, the pipeline's logger and visualizer are current
    assert current == ('cfgstages_pipeline', 'cfgstages_pipeline_vis')
    ckpt = stage.outputs['checkpoint']
    assert osp.isfile(ckpt)
    # the final checkpoint, copied: same weights as the sub-run's last one
    last = osp.join(work, 'cam', 'train', f'epoch_{EPOCHS}.pth')
    sd, sd_last = state_dict(ckpt), state_dict(last)
    assert all(torch.equal(sd[k], sd_last[k]) for k in sd_last)
    runs = scalar_losses(osp.join(work, 'cam', 'train'))
    assert len(runs) == 1 and len(runs[0]) == EPOCHS * ITERS_PER_EPOCH
    assert metrics['loss_first'] == pytest.approx(runs[0][0])
    assert metrics['loss'] == pytest.approx(runs[0][-1])
    assert math.isfinite(metrics['loss']) and math.isfinite(
        metrics['loss_cls'])
    assert metrics['iters'] == EPOCHS * ITERS_PER_EPOCH
    assert set(stage.headline(metrics)) == {'loss_first', 'loss', 'iters'}


def test_settings_follow_the_config_not_the_work_dir(synthetic_voc_root,
                                                      tmp_path):
    base = train_stage(synthetic_voc_root, str(tmp_path / 'a')).settings()
    # inputs and outputs in another work dir, another work_dir option
    moved = TrainStage(
        name='cam', config=CAM_CONFIG,
        cfg_options=dict(TINY_CAM, work_dir=str(tmp_path / 'elsewhere')),
        inputs=cam_inputs(str(tmp_path / 'b' / 'VOC2012')),
        outputs=dict(checkpoint=str(tmp_path / 'b' / 'final.pth')))
    assert moved.settings() == base
    changed = train_stage(synthetic_voc_root, str(tmp_path / 'a'),
                          **{'optim_wrapper.optimizer.lr': 0.07})
    assert changed.settings() != base
    assert changed.settings()['config']['optim_wrapper']['optimizer'][
        'lr'] == 0.07
    json.dumps(base)  # JSON-able: it goes into the manifest
    assert not base['params']  # the config path is not a setting


def test_num_classes_from_the_sub_config(synthetic_voc_root, tmp_path):
    assert train_stage(synthetic_voc_root, str(tmp_path)).num_classes() == 20


KILLED_RUN = textwrap.dedent('''
    import json, sys, time
    from mmengine.hooks import Hook
    from qaclims_mm.pipeline import StageContext
    from qaclims_mm.pipeline.stages import TrainStage

    spec = json.loads(sys.argv[1])


    class Pause(Hook):
        """Stop inside the second epoch, after the first checkpoint (and
        after its first iteration was logged)."""
        priority = 'LOWEST'

        def after_train_iter(self, runner, batch_idx, data_batch=None,
                             outputs=None):
            if runner.epoch == 1 and batch_idx == 0:
                open(spec['marker'], 'w').close()
                time.sleep(600)


    stage = TrainStage(**spec['stage'])
    build = stage.build_runner


    def build_runner(cfg):
        runner = build(cfg)
        runner.register_hook(Pause())
        return runner


    stage.build_runner = build_runner
    stage.run(StageContext(**spec['ctx']))
''')


def test_kill_9_inside_training_then_resume_equals_uninterrupted(
        trained, synthetic_voc_root, tmp_path):
    work = str(tmp_path)
    stage = train_stage(synthetic_voc_root, work)
    ctx = context(work, 'cam')
    marker = str(tmp_path / 'paused')
    spec = dict(stage=dict(name=stage.name, config=stage.config,
                           cfg_options=stage.cfg_options,
                           inputs=stage.inputs, outputs=stage.outputs),
                ctx=dict(work_dir=work, stage_dir=ctx.stage_dir,
                         progress=False), marker=marker)
    script = tmp_path / 'killed_run.py'
    script.write_text(KILLED_RUN)
    proc = subprocess.Popen([sys.executable, str(script), json.dumps(spec)],
                            stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    try:
        deadline = time.time() + 300
        while not osp.exists(marker):
            assert proc.poll() is None, proc.stderr.read().decode()[-3000:]
            assert time.time() < deadline, 'the killed run never paused'
            time.sleep(0.2)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    sub = osp.join(ctx.stage_dir, 'train')
    assert osp.isfile(osp.join(sub, 'epoch_1.pth'))
    assert not osp.exists(osp.join(sub, 'epoch_2.pth'))
    assert not osp.exists(stage.outputs['checkpoint'])

    ctx.resume = True
    metrics = stage.run(ctx)
    resumed = state_dict(stage.outputs['checkpoint'])
    reference = state_dict(trained[1].outputs['checkpoint'])
    assert resumed.keys() == reference.keys()
    differ = [k for k in reference if not torch.equal(resumed[k],
                                                      reference[k])]
    assert not differ, f'{len(differ)} tensors differ, e.g. {differ[:5]}'
    # the killed run logged epoch 1 (and maybe a step of epoch 2), the
    # resumed run epochs 2 and 3 (how the records split over log folders
    # depends on when the kill lands); first loss from the first run, last
    # from the last
    runs = scalar_losses(sub)
    assert sum(len(r) for r in runs) >= 2 * ITERS_PER_EPOCH + 1
    assert metrics['loss_first'] == pytest.approx(trained[2]['loss_first'])
    assert metrics['loss'] == pytest.approx(trained[2]['loss'])


def infer_stage(voc_root, checkpoint, out_dir):
    inputs = dict(cam_inputs(voc_root), checkpoint=checkpoint)
    return InferCAMsStage(
        name='cam_infer', config=CAM_CONFIG, cfg_options=TINY_CAM,
        inputs=inputs, outputs=dict(cams=osp.join(out_dir, 'cams'),
                                    vis=osp.join(out_dir, 'vis')))


def test_infer_cams_writes_one_file_per_id_and_resumes_the_missing(
        trained, synthetic_voc_root, tmp_path):
    work = str(tmp_path)
    stage = infer_stage(synthetic_voc_root, trained[1].outputs['checkpoint'],
                        work)
    ctx = context(work, 'cam_infer')
    metrics = stage.run(ctx)
    with open(osp.join(synthetic_voc_root,
                       'ImageSets/Segmentation/train.txt')) as f:
        ids = [line.strip() for line in f if line.strip()][:NUM_TEST]
    cams = stage.outputs['cams']
    assert sorted(os.listdir(cams)) == sorted(i + '.npz' for i in ids)
    assert os.listdir(stage.outputs['vis'])  # the hook's overlays
    assert metrics['num_cams'] == NUM_TEST
    for key in ('mIoU', 'best_mIoU', 'best_threshold', 'fg_false_act'):
        assert math.isfinite(metrics[key]), (key, metrics)

    # a resumed run rewrites only the deleted files, and scores them all
    stamps = {i: os.stat(osp.join(cams, i + '.npz')).st_mtime_ns
              for i in ids}
    gone = ids[1:3]
    for img_id in gone:
        os.remove(osp.join(cams, img_id + '.npz'))
    time.sleep(0.01)
    ctx.resume = True
    again = stage.run(ctx)
    assert sorted(os.listdir(cams)) == sorted(i + '.npz' for i in ids)
    rewritten = [i for i in ids
                 if os.stat(osp.join(cams, i + '.npz')).st_mtime_ns !=
                 stamps[i]]
    assert rewritten == gone
    assert again == pytest.approx(metrics)


def random_deeplab_checkpoint(path, options, background_bias=0.):
    """A randomly initialised tiny DeepLab, saved as a checkpoint; the
    background logit raised by ``background_bias`` (so that the predictions
    overlap the GT somewhat)."""
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS
    cfg = Config.fromfile(DEEPLAB_CONFIG)
    cfg.merge_from_dict(options)
    init_default_scope('mmseg')
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    state = model.state_dict()
    for key, value in state.items():
        if key.startswith('decode_head.convs.') and key.endswith('.bias'):
            value[0] += background_bias
    torch.save({'state_dict': state}, path)
    return path


TINY_DEEPLAB = {
    'model.backbone.stem_channels': 8,
    'model.backbone.base_channels': 8,
    'model.decode_head.in_channels': 64,
    'test_dataloader.num_workers': 0,
    'test_dataloader.dataset.indices': 3,
}


def test_test_stage_miou_with_and_without_crf(synthetic_voc_root, tmp_path):
    work = str(tmp_path)
    ckpt = random_deeplab_checkpoint(str(tmp_path / 'init.pth'),
                                     TINY_DEEPLAB, background_bias=20.)
    split = osp.join(synthetic_voc_root, 'ImageSets/Segmentation')
    stage = SegTestStage(
        name='seg_test', config=DEEPLAB_CONFIG, cfg_options=TINY_DEEPLAB,
        inputs={'checkpoint': ckpt,
                'test_dataloader.dataset.data_root': synthetic_voc_root,
                'vis_split': osp.join(split, 'train.txt')},
        outputs=dict(predictions=osp.join(work, 'pred'),
                     vis_predictions=osp.join(work, 'vis_pred')),
        num_vis=2)
    ctx = context(work, 'seg_test')
    metrics = stage.run(ctx)
    with open(osp.join(split, 'val.txt')) as f:
        val_ids = [line.strip() for line in f if line.strip()][:3]
    with open(osp.join(split, 'train.txt')) as f:
        vis_ids = [line.strip() for line in f if line.strip()][:2]
    assert sorted(os.listdir(stage.outputs['predictions'])) == sorted(
        i + '.png' for i in val_ids)
    plain = osp.join(ctx.stage_dir, 'test', 'predictions')
    assert sorted(os.listdir(plain)) == sorted(i + '.png' for i in val_ids)
    assert sorted(os.listdir(stage.outputs['vis_predictions'])) == sorted(
        i + '.png' for i in vis_ids)
    for key in ('mIoU', 'mIoU_crf'):
        assert math.isfinite(metrics[key]), metrics
    # the per-class IoU of the written PNGs gives the metric's mIoU
    for suffix in ('', '_crf'):
        ious = [v for v in metrics['IoU_per_class' + suffix].values()
                if v is not None]
        assert np.mean(ious) == pytest.approx(metrics['mIoU' + suffix],
                                              abs=0.02)
    # a prediction PNG has the image's size and labels in range
    gt = read_label_png(osp.join(synthetic_voc_root, 'SegmentationClass',
                                 val_ids[0] + '.png'))
    pred = read_label_png(osp.join(stage.outputs['predictions'],
                                   val_ids[0] + '.png'))
    assert pred.shape == gt.shape and pred.max() < 21
    assert set(stage.headline(metrics)) == {'mIoU', 'mIoU_crf'}
    # the CRF run is another run: the dense CRF changed predictions
    assert any(not np.array_equal(
        read_label_png(osp.join(plain, i + '.png')),
        read_label_png(osp.join(stage.outputs['predictions'], i + '.png')))
        for i in val_ids)
    assert metrics['IoU_per_class']['background'] > 0


@pytest.mark.skipif(torch.cuda.is_available(), reason='CPU-only check')
def test_amp_on_cpu_is_refused_naming_the_stage(synthetic_voc_root,
                                                 tmp_path):
    stage = train_stage(synthetic_voc_root, str(tmp_path))
    with pytest.raises(RuntimeError, match="stage 'cam'.*AMP.*CUDA"):
        stage.run(context(str(tmp_path), 'cam', amp=True))
    assert not os.listdir(osp.join(str(tmp_path), 'cam'))


def test_runs_in_one_process_keep_their_own_logs(trained):
    """Later runs in this process (resume, inference, test) did not write to
    the first run's vis_data: each run has its own visualizer."""
    work = trained[0]
    runs = scalar_losses(osp.join(work, 'cam', 'train'))
    assert len(runs) == 1 and len(runs[0]) == EPOCHS * ITERS_PER_EPOCH


def test_build_config_takes_the_run_context(synthetic_voc_root, tmp_path):
    """Work dir, launcher, dist backend, unique run names, CPU DDP wrapper,
    no sampler padding for inference, the class-count check."""
    stage = infer_stage(synthetic_voc_root, str(tmp_path / 'x.pth'),
                        str(tmp_path))
    ctx = context(str(tmp_path), 'cam_infer', launcher='pytorch', rank=1,
                  world_size=2,
                  env_cfg=dict(dist_cfg=dict(backend='gloo')))
    cfg = stage.build_test_config(ctx)
    other = stage.build_test_config(ctx)
    assert cfg.work_dir == osp.join(ctx.stage_dir, 'infer')
    assert cfg.launcher == 'pytorch'
    assert cfg.env_cfg.dist_cfg.backend == 'gloo'
    assert cfg.experiment_name != other.experiment_name
    assert cfg.visualizer.name == cfg.experiment_name
    assert cfg.test_dataloader.sampler.round_up is False
    assert cfg.load_from == str(tmp_path / 'x.pth')
    assert [h for h in cfg.custom_hooks if h['type'] == 'SaveCAMHook'][0][
        'out_dir'] == stage.outputs['cams']
    assert any(h['type'] == 'NumClassesCheckHook' for h in cfg.custom_hooks)
    if not torch.cuda.is_available():
        assert cfg.model_wrapper_cfg.device_ids is None
    # another split: its CAMs, not scored
    aug = InferCAMsStage(name='cam_infer', config=CAM_CONFIG,
                         cfg_options=TINY_CAM, inputs=stage.inputs,
                         outputs=stage.outputs, split='train_aug')
    aug_cfg = aug.build_test_config(ctx).test_dataloader.dataset
    assert aug_cfg.ann_file == 'ImageSets/Segmentation/train_aug.txt'
    assert aug_cfg.with_seg_map is False and 'indices' not in aug_cfg
    assert aug.settings() != stage.settings()
    # one process: no wrapper set
    single = stage.build_test_config(context(str(tmp_path), 'cam_infer'))
    assert 'model_wrapper_cfg' not in single
