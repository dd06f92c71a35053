"""QA-CLIMS end to end: the tiny preset of the main job's pipeline.

``configs/pipelines/qaclims_synthetic-voc_tiny.py`` runs through MMSegmentation's
**stock** ``tools/train.py``: synthetic data, world models (test size), QAPE,
text caches, baseline CAM, QA-CLIMS and CLIMS from it, CAMs of all three,
IR labels, IRNet, random walk, DeepLab and its test. The world models are
built first; then every side file of descriptions is deleted, so that no
later stage can read one. The assertions read the logged numbers
(``summary.json``, MMEngine's ``scalars.json``) and the files.
"""
import glob
import json
import math
import os
import os.path as osp
import subprocess
import sys

import numpy as np
import pytest
import torch

import qaclims_mm  # noqa: F401  (MMEngine checkpoints load safely)

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG = osp.join(REPO, 'configs', 'pipelines', 'qaclims_synthetic-voc_tiny.py')


def stock_train_py() -> str:
    import mmseg
    return osp.join(osp.dirname(mmseg.__file__), '.mim', 'tools', 'train.py')


def run_pipeline(cwd: str, work_dir: str, *options: str) -> str:
    """Run the tiny pipeline with the stock train.py; its output."""
    cmd = [sys.executable, stock_train_py(), CONFIG, '--work-dir', work_dir]
    if options:
        cmd += ['--cfg-options', *options]
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep +
               os.environ.get('PYTHONPATH', ''))
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=1800)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-6000:]
    return out


@pytest.fixture(scope='module')
def pipeline(tmp_path_factory):
    root = tmp_path_factory.mktemp('qaclims_e2e')
    work_dir = str(root / 'work')
    # 1. data and the world models (cached under <root>/data/pretrained)
    run_pipeline(str(root), work_dir, 'run_stages=[data,world]')
    side_files = glob.glob(str(root / '**' / 'world_descriptions.jsonl'),
                           recursive=True)
    for path in side_files:
        os.remove(path)
    # 2. everything else, without any side file around
    out = run_pipeline(str(root), work_dir)
    with open(osp.join(work_dir, 'summary.json')) as f:
        summary = json.load(f)
    return dict(root=str(root), work_dir=work_dir, out=out,
                side_files=side_files,
                records={r['stage']: r for r in summary['stages']})


def scalars(work_dir: str, stage: str) -> list:
    """The records of a training stage's (last) scalars.json."""
    files = sorted(glob.glob(osp.join(work_dir, stage, 'train', '*',
                                      'vis_data', 'scalars.json')))
    assert files, f'no scalars.json for stage {stage}'
    with open(files[-1]) as f:
        return [json.loads(line) for line in f if line.strip()]


def losses(records: list, key: str) -> list:
    return [r[key] for r in records if key in r]


def split_ids(work_dir: str, name: str) -> list:
    path = osp.join(work_dir, 'data', 'VOC2012', 'ImageSets', 'Segmentation',
                    f'{name}.txt')
    with open(path) as f:
        return f.read().split()


def test_every_stage_ran_and_the_report_is_written(pipeline):
    records = pipeline['records']
    assert list(records) == [
        'data', 'world', 'qape', 'text_cache', 'clims_prompts', 'cam',
        'cam_cams', 'cam_eval', 'qaclims', 'qaclims_cams', 'qaclims_eval',
        'clims', 'clims_cams', 'clims_eval', 'ir_labels', 'irn',
        'random_walk', 'pseudo_eval', 'deeplab', 'deeplab_test'
    ]
    assert records['data']['status'] == 'skipped'  # ran in step 1
    assert records['world']['status'] == 'skipped'
    assert all(r['status'] == 'ran' for name, r in records.items()
               if name not in ('data', 'world'))
    assert pipeline['side_files'], 'the world models were built from none'
    report = open(osp.join(pipeline['work_dir'], 'report.md')).read()
    assert 'QA-CLIMS' in report and 'CLIMS' in report
    for png in ('threshold_sweep.png', 'image_grid.png'):
        assert osp.getsize(osp.join(pipeline['work_dir'], 'report-files',
                                    png)) > 1000


def test_world_models_far_above_chance(pipeline):
    metrics = pipeline['records']['world']['metrics']
    assert metrics['vqa_fg_acc'] > 0.5 and metrics['vqa_bg_acc'] > 0.5
    assert metrics['clip_object_acc'] > 0.3  # 20 classes: chance 0.05
    assert metrics['clip_scene_acc'] > 0.4  # 7 scenes: chance 0.14


def test_corpus_and_text_cache(pipeline):
    work_dir = pipeline['work_dir']
    qape = pipeline['records']['qape']['metrics']
    assert qape['num_pairs'] > 0
    assert qape['num_answers'] == 16 * qape['num_pairs']  # 6 FG + 10 BG
    with open(osp.join(work_dir, 'text_cache', 'qa.json')) as f:
        assert json.load(f)


def test_training_losses_finite_and_falling(pipeline):
    work_dir = pipeline['work_dir']
    cam = losses(scalars(work_dir, 'cam'), 'loss')
    assert len(cam) >= 2 and all(map(math.isfinite, cam))
    assert cam[-1] < cam[0]
    for stage, keys in (('qaclims', ('loss_frc', 'loss_brc', 'loss_reg')),
                        ('clims', ('loss_otm', 'loss_btm', 'loss_reg')),
                        ('irn', ('loss', )), ('deeplab', ('loss', ))):
        records = scalars(work_dir, stage)
        for key in keys:
            values = losses(records, key)
            assert values and all(map(math.isfinite, values)), (stage, key)
    # the baseline's CAMs are what RITC starts from; RITC must change them
    start = torch.load(osp.join(work_dir, 'cam', 'final.pth'),
                       map_location='cpu')['state_dict']
    for stage in ('qaclims', 'clims'):
        end = torch.load(osp.join(work_dir, stage, 'final.pth'),
                         map_location='cpu')['state_dict']
        changed = [k for k in start if k.startswith('backbone.')
                   and not torch.equal(start[k], end[k])]
        assert changed, f'{stage} left the backbone unchanged'


def test_every_stage_output_complete(pipeline):
    work_dir = pipeline['work_dir']
    train, train_aug = split_ids(work_dir, 'train'), split_ids(
        work_dir, 'train_aug')
    for folder, ids, suffix in (('cam_cams/cams', train_aug, '.npz'),
                                ('qaclims_cams/cams', train_aug, '.npz'),
                                ('clims_cams/cams', train, '.npz'),
                                ('ir_labels/labels', train_aug, '.png'),
                                ('random_walk/labels', train_aug, '.png')):
        missing = [i for i in ids
                   if not osp.isfile(osp.join(work_dir, folder, i + suffix))]
        assert not missing, (folder, missing[:3])
    val = split_ids(work_dir, 'val')
    assert len(os.listdir(osp.join(work_dir, 'deeplab_test',
                                   'predictions'))) == len(val)


def _all_background_miou(work_dir: str) -> float:
    """mIoU (%) of predicting background everywhere on the train split: what
    an untrained CAM network scores at any threshold."""
    from PIL import Image
    gt_dir = osp.join(work_dir, 'data', 'VOC2012', 'SegmentationClass')
    inter = union = 0
    present = set()
    for img_id in split_ids(work_dir, 'train'):
        gt = np.array(Image.open(osp.join(gt_dir, img_id + '.png')))
        valid = gt != 255
        inter += int(((gt == 0) & valid).sum())
        union += int(valid.sum())
        present |= set(np.unique(gt[valid]).tolist())
    return 100 * inter / union / len(present)


def test_metrics_finite_and_above_untrained(pipeline):
    records, work_dir = pipeline['records'], pipeline['work_dir']
    floor = _all_background_miou(work_dir)
    for stage in ('cam_eval', 'qaclims_eval', 'clims_eval'):
        m = records[stage]['metrics']
        assert math.isfinite(m['mIoU']) and math.isfinite(m['best_mIoU'])
        assert m['best_mIoU'] > floor + 0.5, (stage, m['best_mIoU'], floor)
    assert math.isfinite(records['pseudo_eval']['metrics']['mIoU'])
    test = records['deeplab_test']['metrics']
    assert math.isfinite(test['mIoU']) and math.isfinite(test['mIoU_crf'])
