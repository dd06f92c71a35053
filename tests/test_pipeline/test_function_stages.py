"""The function-based pipeline stages, each run directly on the synthetic
``test`` preset (generated once per module by :class:`SyntheticDataStage`).

Evaluation numbers are checked against a numpy reference written here; the
label stages against the refiners' own per-image functions; inputs that are
missing or incomplete must name the stage, the path and the count; a resumed
per-image stage rewrites only the missing files.
"""
import json
import os
import os.path as osp
import shutil
import threading

import numpy as np
import pytest
import torch

from qaclims_mm.pipeline import PIPELINE_STAGES, StageContext, StageInputError
from qaclims_mm.pipeline.stages import common
from qaclims_mm.utils.cam_file import save_cam
from qaclims_mm.utils.io import read_split
from qaclims_mm.utils.label_io import read_label_png

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
IRN_CONFIG = osp.join(REPO, 'configs/irn/irn_r50_1xb32-3e_voc12aug-512x512.py')
R18_CHANNELS = (64, 64, 128, 256, 512)
NUM_IDS = 3  # CAM-based stages run on the first train images


def build(cfg: dict):
    return PIPELINE_STAGES.build(cfg)


def context(tmp_path, name: str, **kwargs) -> StageContext:
    stage_dir = str(tmp_path / 'work' / name)
    os.makedirs(stage_dir, exist_ok=True)
    return StageContext(work_dir=str(tmp_path / 'work'), stage_dir=stage_dir,
                        progress=False, **kwargs)


def run_stage(stage, ctx: StageContext) -> dict:
    stage.check_inputs(ctx)
    return stage.run(ctx)


@pytest.fixture(scope='module')
def world(tmp_path_factory):
    """Synthetic data (by the stage), CAM files of the first train ids."""
    root = tmp_path_factory.mktemp('stages')
    data_root = str(root / 'synthetic' / 'VOC2012')
    stage = build(dict(type='SyntheticDataStage', name='data',
                       outputs=dict(data_root=data_root), preset='test',
                       seed=0))
    metrics = stage.run(context(root, 'data'))
    ids = read_split(osp.join(data_root,
                              'ImageSets/Segmentation/train.txt'))[:NUM_IDS]
    split = str(root / 'ids.txt')
    with open(split, 'w') as f:
        f.write(''.join(i + '\n' for i in ids))
    cam_dir = str(root / 'cams')
    os.makedirs(cam_dir)
    rng = np.random.default_rng(0)
    cams = {}
    for img_id in ids:
        gt = read_label_png(osp.join(data_root, 'SegmentationClass',
                                     img_id + '.png'))
        present = sorted(set(np.unique(gt).tolist()) - {0, 255})
        keys = np.array([c - 1 for c in present] + [14], np.int64)  # + person
        keys = np.unique(keys)
        # each map: its class's GT region plus noise, so every threshold of
        # the sweep gives another label map
        high_res = np.stack([
            0.55 * (gt == k + 1) + 0.45 * rng.random(gt.shape)
            for k in keys
        ]).astype(np.float32)
        high_res /= high_res.max(axis=(1, 2), keepdims=True) + 1e-5
        save_cam(osp.join(cam_dir, img_id + '.npz'), keys,
                 high_res[:, ::4, ::4], high_res)
        cams[img_id] = (keys, high_res)
    return dict(root=root, data_root=data_root, metrics=metrics, ids=ids,
                split=split, cam_dir=cam_dir, cams=cams,
                gt=osp.join(data_root, 'SegmentationClass'),
                images=osp.join(data_root, 'JPEGImages'))


# --------------------------------------------------------------------------
# references
# --------------------------------------------------------------------------
def reference_label(keys, high_res, threshold):
    """The official CAM label: a bg plane at ``threshold``, argmax."""
    planes = np.concatenate(
        [np.full((1, ) + high_res.shape[1:], threshold, np.float32),
         high_res])
    return np.concatenate([[0], keys + 1])[planes.argmax(0)]


def reference_confusion(pairs, n=21):
    conf = np.zeros((n, n), np.int64)
    for gt, pred in pairs:
        valid = gt < n
        np.add.at(conf, (gt[valid].astype(int), pred[valid].astype(int)), 1)
    return conf


def reference_miou(conf):
    iou = []
    for c in range(conf.shape[0]):
        union = conf[c].sum() + conf[:, c].sum() - conf[c, c]
        if union > 0:
            iou.append(conf[c, c] / union)
    return 100 * float(np.mean(iou))


def cam_confusion(world, threshold):
    pairs = []
    for img_id, (keys, high_res) in world['cams'].items():
        gt = read_label_png(osp.join(world['gt'], img_id + '.png'))
        pairs.append((gt, reference_label(keys, high_res, threshold)))
    return reference_confusion(pairs)


# --------------------------------------------------------------------------
# synthetic data
# --------------------------------------------------------------------------
def test_synthetic_data_stage_writes_converted_voc(world):
    data_root = world['data_root']
    assert world['metrics'] == dict(num_images=60, num_train=24, num_val=12,
                                    num_train_aug=48)
    labels = json.load(open(osp.join(data_root, 'cls_labels.json')))
    train_aug = read_split(osp.join(data_root,
                                    'ImageSets/Segmentation/train_aug.txt'))
    assert len(train_aug) == 48 and set(train_aug) <= set(labels['labels'])
    masks = os.listdir(osp.join(data_root, 'SegmentationClassAug'))
    assert len(masks) == 48 + 12


def test_synthetic_data_stage_resumes_a_killed_generation(tmp_path, world):
    data_root = str(tmp_path / 'syn' / 'VOC2012')
    cfg = dict(type='SyntheticDataStage', name='data', preset='test',
               outputs=dict(data_root=data_root))
    build(cfg).run(context(tmp_path, 'data'))
    jpeg = osp.join(data_root, 'JPEGImages', world['ids'][0] + '.jpg')
    reference = open(jpeg, 'rb').read()
    # a finished folder is kept as it is
    stamp = os.stat(jpeg).st_mtime_ns
    build(cfg).run(context(tmp_path, 'data', resume=True))
    assert os.stat(jpeg).st_mtime_ns == stamp
    # a killed run: no record, a truncated image, the converter's files gone
    os.remove(osp.join(data_root, 'synthetic.json'))
    open(jpeg, 'wb').write(reference[:100])
    shutil.rmtree(osp.join(data_root, 'SegmentationClassAug'))
    metrics = build(cfg).run(context(tmp_path, 'data', resume=True))
    assert open(jpeg, 'rb').read() == reference
    assert metrics == world['metrics']
    assert len(os.listdir(osp.join(data_root, 'SegmentationClassAug'))) == 60
    with pytest.raises(ValueError, match='VOC2012'):
        build(dict(cfg, outputs=dict(data_root=str(tmp_path / 'x'))))


# --------------------------------------------------------------------------
# evaluation
# --------------------------------------------------------------------------
def eval_cams_stage(world, cam_dir=None):
    return build(dict(type='EvalCAMsStage', name='eval_cam',
                      inputs=dict(cams=cam_dir or world['cam_dir'],
                                  gt=world['gt'], split=world['split'])))


def test_eval_cams_matches_numpy_reference(world, tmp_path):
    stage = eval_cams_stage(world)
    assert stage.num_classes() == 20
    ctx = context(tmp_path, 'eval_cam')
    metrics = run_stage(stage, ctx)
    conf = cam_confusion(world, np.float32(0.15))
    assert metrics['mIoU'] == pytest.approx(reference_miou(conf))
    # fg false activation: predicted-fg pixels whose GT is background
    assert metrics['fg_false_activation'] == pytest.approx(
        100 * conf[0, 1:].sum() / conf[:, 1:].sum())
    per_class = metrics['fg_false_activation_per_class']
    assert list(per_class)[0] == 'aeroplane' and len(per_class) == 20
    checked = 0
    for c, name in enumerate(per_class, start=1):
        if conf[:, c].sum():
            assert per_class[name] == pytest.approx(
                100 * conf[0, c] / conf[:, c].sum())
            checked += 1
        else:
            assert per_class[name] is None
    assert checked >= 2
    # the sweep: 0.05..0.59, the best threshold is the argmax of the curve
    sweep = metrics['sweep']
    assert len(sweep['thresholds']) == 55 == len(sweep['mIoU'])
    assert sweep['thresholds'][0] == 0.05 and sweep['thresholds'][-1] == 0.59
    curve = [reference_miou(cam_confusion(world, np.float32(t)))
             for t in sweep['thresholds']]
    np.testing.assert_allclose(sweep['mIoU'], curve)
    best = int(np.argmax(curve))
    assert metrics['best_threshold'] == sweep['thresholds'][best]
    assert metrics['best_mIoU'] == pytest.approx(curve[best])
    assert len(set(np.round(curve, 6))) > 5  # the sweep is not flat
    # files: eval.json holds the metrics; the text report
    record = json.load(open(osp.join(ctx.stage_dir, 'eval.json')))
    assert record['metrics']['mIoU'] == metrics['mIoU']
    assert np.array_equal(record['confusion'], conf)
    report = open(osp.join(ctx.stage_dir, 'eval_report.txt')).read()
    assert f'mIoU {metrics["mIoU"]:.2f}' in report
    assert set(stage.headline(metrics)) == {
        'mIoU', 'best_threshold', 'best_mIoU', 'fg_false_activation'}


def test_incomplete_cam_folder_names_stage_path_and_count(world, tmp_path):
    cam_dir = str(tmp_path / 'cams')
    shutil.copytree(world['cam_dir'], cam_dir)
    os.remove(osp.join(cam_dir, world['ids'][1] + '.npz'))
    stage = eval_cams_stage(world, cam_dir)
    with pytest.raises(StageInputError) as err:
        stage.check_inputs(context(tmp_path, 'eval_cam'))
    text = str(err.value)
    assert "'eval_cam'" in text and cam_dir in text
    assert '2 of the 3' in text and world['ids'][1] in text
    # the label stages say the same
    stage = build(dict(type='PseudoLabelStage', name='thr',
                       inputs=dict(cams=cam_dir, split=world['split']),
                       outputs=dict(labels=str(tmp_path / 'labels'))))
    with pytest.raises(StageInputError, match=r"'thr'.*2 of the 3"):
        stage.check_inputs(context(tmp_path, 'thr'))
    # a missing split file is named too
    stage = build(dict(type='EvalCAMsStage', name='eval_cam',
                       inputs=dict(cams=cam_dir, gt=world['gt'],
                                   split=str(tmp_path / 'nope.txt'))))
    with pytest.raises(StageInputError, match='nope.txt'):
        stage.check_inputs(context(tmp_path, 'eval_cam'))


# --------------------------------------------------------------------------
# label stages
# --------------------------------------------------------------------------
def test_threshold_labels_resume_and_pseudo_mask_eval(world, tmp_path):
    labels = str(tmp_path / 'thr')
    stage = build(dict(type='PseudoLabelStage', name='thr',
                       inputs=dict(cams=world['cam_dir'],
                                   split=world['split']),
                       outputs=dict(labels=labels)))
    assert stage.run_on == 'all' and stage.num_classes() == 20
    metrics = run_stage(stage, context(tmp_path, 'thr'))
    assert metrics == dict(num_images=NUM_IDS)
    for img_id, (keys, high_res) in world['cams'].items():
        np.testing.assert_array_equal(
            read_label_png(osp.join(labels, img_id + '.png')),
            reference_label(keys, high_res, np.float32(0.15)))
    # resume: only the missing PNG is written again
    first, second = (osp.join(labels, i + '.png') for i in world['ids'][:2])
    stamp = os.stat(second).st_mtime_ns
    reference = open(first, 'rb').read()
    os.remove(first)
    run_stage(stage, context(tmp_path, 'thr', resume=True))
    assert open(first, 'rb').read() == reference
    assert os.stat(second).st_mtime_ns == stamp

    # pseudo-mask evaluation of those labels == CAM mIoU at 0.15
    ev = build(dict(type='EvalPseudoMasksStage', name='eval_thr',
                    inputs=dict(labels=labels, gt=world['gt'],
                                split=world['split'])))
    ctx = context(tmp_path, 'eval_thr')
    scores = run_stage(ev, ctx)
    conf = cam_confusion(world, np.float32(0.15))
    assert scores['mIoU'] == pytest.approx(reference_miou(conf))
    assert scores['fg_false_activation'] == pytest.approx(
        100 * conf[0, 1:].sum() / conf[:, 1:].sum())
    iou = scores['IoU_per_class']
    assert list(iou)[0] == 'background' and len(iou) == 21
    assert iou['background'] == pytest.approx(
        100 * conf[0, 0] / (conf[0].sum() + conf[:, 0].sum() - conf[0, 0]))
    record = json.load(open(osp.join(ctx.stage_dir, 'eval.json')))
    assert record['metrics']['mIoU'] == scores['mIoU']
    os.remove(osp.join(labels, world['ids'][2] + '.png'))
    with pytest.raises(StageInputError, match=r"'eval_thr'.*2 of the 3"):
        ev.check_inputs(ctx)


def test_label_stage_shards_ids_over_ranks(world, tmp_path, monkeypatch):
    """Two ranks (threads here): each writes only ids[rank::2]; rank 0 alone
    records the folder's settings and checks completeness."""
    gate = threading.Barrier(2)
    monkeypatch.setattr(common, 'barrier', lambda ctx: gate.wait(timeout=60))
    labels = str(tmp_path / 'thr')
    written, errors = {}, []

    def rank_main(rank):
        stage = build(dict(type='PseudoLabelStage', name='thr',
                           inputs=dict(cams=world['cam_dir'],
                                       split=world['split']),
                           outputs=dict(labels=labels)))
        calls = written.setdefault(rank, [])
        original = stage.write
        stage.write = lambda ids, ctx: (calls.append(list(ids)),
                                        original(ids, ctx))
        try:
            stage.run(context(tmp_path, 'thr', rank=rank, world_size=2))
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)
            gate.abort()

    threads = [threading.Thread(target=rank_main, args=(r, ))
               for r in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    ids = world['ids']
    assert written[0] == [[], ids[0::2]]
    assert written[1] == [ids[1::2]]
    assert sorted(os.listdir(labels)) == sorted(
        [i + '.png' for i in ids] + ['settings.json'])


def test_ir_labels_match_reference(world, tmp_path):
    from qaclims_mm.refine.ir_label import make_ir_label, read_rgb
    labels = str(tmp_path / 'ir')
    stage = build(dict(type='IRLabelsStage', name='ir',
                       inputs=dict(cams=world['cam_dir'],
                                   images=world['images'],
                                   split=world['split']),
                       outputs=dict(labels=labels)))
    assert stage.params['fg_thr'] == 0.30 and stage.params['bg_thr'] == 0.10
    run_stage(stage, context(tmp_path, 'ir'))
    saw_ignore = False
    for img_id, (keys, high_res) in world['cams'].items():
        image = read_rgb(osp.join(world['images'], img_id + '.jpg'))
        label = read_label_png(osp.join(labels, img_id + '.png'))
        np.testing.assert_array_equal(
            label, make_ir_label(image, high_res, keys, 0.30, 0.10))
        saw_ignore |= bool((label == 255).any())
    assert saw_ignore
    with pytest.raises(KeyError, match='images'):
        build(dict(type='IRLabelsStage', name='ir',
                   inputs=dict(cams=world['cam_dir'], split=world['split']),
                   outputs=dict(labels=labels)))


def test_random_walk_stage(world, tmp_path):
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS

    from qaclims_mm.refine.stages import make_rw_labels
    irn_config = tmp_path / 'irn.py'
    irn_config.write_text(f"""
_base_ = [{IRN_CONFIG!r}]
model = dict(backbone=dict(depth=18, init_cfg=None),
             edge_head=dict(in_channels={R18_CHANNELS}),
             displacement_head=dict(in_channels={R18_CHANNELS}))
""")
    init_default_scope('mmseg')
    torch.manual_seed(0)
    irn = MODELS.build(Config.fromfile(str(irn_config)).model)
    ckpt = str(tmp_path / 'irn.pth')
    torch.save({'state_dict': irn.state_dict(), 'meta': {}}, ckpt)
    ids = world['ids'][:2]
    split = tmp_path / 'two.txt'
    split.write_text(''.join(i + '\n' for i in ids))
    inputs = dict(cams=world['cam_dir'], images=world['images'],
                  split=str(split), irn_checkpoint=ckpt)
    labels = str(tmp_path / 'rw')
    stage = build(dict(type='RandomWalkStage', name='rw', inputs=inputs,
                       outputs=dict(labels=labels), config=str(irn_config)))
    assert {k: stage.params[k] for k in ('radius', 'beta', 'exp_times',
                                         'bg_threshold')} == dict(
        radius=5, beta=10., exp_times=8, bg_threshold=0.2)
    run_stage(stage, context(tmp_path, 'rw'))
    direct = str(tmp_path / 'direct')
    make_rw_labels(world['cam_dir'], world['images'], ids, direct,
                   str(irn_config), ckpt, progress=False)
    for img_id in ids:
        label = read_label_png(osp.join(labels, img_id + '.png'))
        np.testing.assert_array_equal(
            label, read_label_png(osp.join(direct, img_id + '.png')))
        keys = world['cams'][img_id][0]
        assert set(np.unique(label).tolist()) <= {0, *(keys + 1).tolist()}
    os.remove(ckpt)
    with pytest.raises(StageInputError, match="'rw'.*irn_checkpoint"):
        stage.check_inputs(context(tmp_path, 'rw'))


# --------------------------------------------------------------------------
# QAPE and text caches
# --------------------------------------------------------------------------
@pytest.fixture(scope='module')
def qape_run(world):
    """QAPE with a tiny random BLIP, inside a process group it must keep."""
    import torch.distributed as dist

    from qaclims_mm.testing import build_tiny_blip_vqa
    root = world['root']
    model = build_tiny_blip_vqa(str(root / 'blip'), image_size=32,
                                hidden_size=32, vision_layers=1)
    corpus = str(root / 'qape')
    stage = build(dict(type='QAPEStage', name='qape',
                       inputs=dict(images=osp.join(world['data_root'],
                                                   'JPEGImages'),
                                   labels=osp.join(world['data_root'],
                                                   'cls_labels.json'),
                                   split=world['split'], model=model),
                       outputs=dict(corpus=corpus), image_size=32,
                       num_workers=0, device='cpu'))
    dist.init_process_group('gloo', init_method=f'file://{root}/pg',
                            rank=0, world_size=1)
    try:
        metrics = run_stage(stage, context(root, 'qape'))
        kept = dist.is_initialized()
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
    return dict(stage=stage, metrics=metrics, kept_group=kept,
                corpus=corpus, model=model)


def test_qape_stage_metrics_and_resume(world, qape_run, tmp_path):
    from qaclims_mm.qape.corpus import load_corpus
    labels = json.load(open(osp.join(world['data_root'],
                                     'cls_labels.json')))['labels']
    num_pairs = sum(len(labels[i]) for i in world['ids'])
    assert qape_run['metrics'] == dict(num_images=NUM_IDS,
                                       num_pairs=num_pairs,
                                       num_answers=num_pairs * 16)
    assert qape_run['kept_group'], 'the runner\'s process group was destroyed'
    corpus = load_corpus(osp.join(qape_run['corpus'], 'corpus.json'))
    assert sorted(corpus.entries) == sorted(world['ids'])
    assert qape_run['stage'].num_classes() == 20
    # resume: a finished run asks nothing again (the shards stay as they are)
    shards = osp.join(qape_run['corpus'], 'shards')
    before = {f: os.stat(osp.join(shards, f)).st_mtime_ns
              for f in os.listdir(shards)}
    qape_run['stage'].run(context(tmp_path, 'qape', resume=True))
    after = {f: os.stat(osp.join(shards, f)).st_mtime_ns
             for f in os.listdir(shards)}
    assert after == before


def test_qape_missing_image_names_stage(world, qape_run, tmp_path):
    images = tmp_path / 'images'
    images.mkdir()
    stage = build(dict(type='QAPEStage', name='qape',
                       inputs=dict(images=str(images),
                                   labels=osp.join(world['data_root'],
                                                   'cls_labels.json'),
                                   split=world['split'],
                                   model=qape_run['model']),
                       outputs=dict(corpus=str(tmp_path / 'c'))))
    with pytest.raises(StageInputError, match=r"'qape'.*3 of the 3"):
        stage.check_inputs(context(tmp_path, 'qape'))


@pytest.fixture(scope='module')
def tiny_clip(world):
    from qaclims_mm.testing.tiny_clip import save_tiny_clip
    weights = str(world['root'] / 'clip.pth')
    folder = str(world['root'] / 'clip_text')
    save_tiny_clip(weights, folder)
    return dict(weights=weights, folder=folder)


def test_text_cache_stage(qape_run, tiny_clip, tmp_path):
    from qaclims_mm.qape.corpus import load_corpus
    from qaclims_mm.qape.text_cache import collect_strings
    from qaclims_mm.structures.text_cache_format import safetensors_memmap
    prefix = str(tmp_path / 'cache' / 'texts')
    os.makedirs(osp.dirname(prefix))
    stage = build(dict(type='TextCacheStage', name='text',
                       inputs=dict(corpus=qape_run['corpus'],
                                   clip=tiny_clip['folder']),
                       outputs=dict(cache=prefix)))
    metrics = run_stage(stage, context(tmp_path, 'text'))
    corpus = load_corpus(osp.join(qape_run['corpus'], 'corpus.json'))
    strings, pairs = collect_strings(corpus)
    assert metrics == dict(num_texts=len(strings), num_pairs=len(corpus),
                           dim=16)
    index = json.load(open(prefix + '.json'))
    assert index['model'] == 'local-dir:' + tiny_clip['folder']
    feats = safetensors_memmap(prefix + '.safetensors', 'features')
    assert feats.shape == (len(strings), 16)
    np.testing.assert_allclose(np.linalg.norm(feats, axis=1), 1, atol=1e-5)
    # a weights file needs the architecture's name
    stage = build(dict(type='TextCacheStage', name='text',
                       inputs=dict(corpus=qape_run['corpus'],
                                   clip=tiny_clip['weights']),
                       outputs=dict(cache=prefix)))
    with pytest.raises(StageInputError, match="'text'.*model_name"):
        stage.check_inputs(context(tmp_path, 'text'))
    stage = build(dict(type='TextCacheStage', name='text',
                       inputs=dict(corpus=str(tmp_path / 'none'),
                                   clip=tiny_clip['folder']),
                       outputs=dict(cache=prefix)))
    with pytest.raises(StageInputError, match="'text'"):
        stage.check_inputs(context(tmp_path, 'text'))


def test_prompt_cache_stage(tiny_clip, tmp_path):
    from qaclims_mm.models.losses.clims_losses import clims_background_prompts
    from qaclims_mm.structures.text_cache_format import safetensors_memmap
    prefix = str(tmp_path / 'clims_voc')
    stage = build(dict(type='PromptCacheStage', name='prompts',
                       inputs=dict(clip=tiny_clip['folder']),
                       outputs=dict(cache=prefix)))
    metrics = run_stage(stage, context(tmp_path, 'prompts'))
    num_bg = len(clims_background_prompts('voc'))
    assert metrics == dict(num_class_prompts=20,
                           num_background_prompts=num_bg, dim=16)
    index = json.load(open(prefix + '.json'))
    assert index['class_prompts'][14] == 'a photo of player.'
    assert safetensors_memmap(prefix + '.safetensors',
                              'class_features').shape == (20, 16)


RANK_SCRIPT = r'''
import json, sys
import torch.distributed as dist
import qaclims_mm  # noqa: F401
from qaclims_mm.pipeline import PIPELINE_STAGES, StageContext
rank, cams, split, labels, work = sys.argv[1:]
dist.init_process_group('gloo', rank=int(rank), world_size=2)
stage = PIPELINE_STAGES.build(dict(
    type='PseudoLabelStage', name='thr',
    inputs=dict(cams=cams, split=split), outputs=dict(labels=labels)))
done = []
write = stage.write
stage.write = lambda ids, ctx: (done.append(list(ids)), write(ids, ctx))
ctx = StageContext(work_dir=work, stage_dir=work, rank=int(rank),
                   world_size=2, progress=False)
stage.check_inputs(ctx)
metrics = stage.run(ctx)
dist.barrier()
dist.destroy_process_group()
print('RESULT', json.dumps(dict(done=done, metrics=metrics)))
'''


def test_label_stage_under_two_gloo_processes(world, tmp_path):
    """The real barrier: two processes in one gloo group share the split."""
    import socket
    import subprocess
    import sys
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
    env = dict(os.environ, MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port))
    labels = str(tmp_path / 'thr')
    procs = [
        subprocess.Popen(
            [sys.executable, '-c', RANK_SCRIPT, str(rank), world['cam_dir'],
             world['split'], labels, str(tmp_path)],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True) for rank in (0, 1)
    ]
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err[-3000:]
        line = [x for x in out.splitlines() if x.startswith('RESULT ')][-1]
        results.append(json.loads(line[len('RESULT '):]))
    ids = world['ids']
    assert results[0]['done'] == [[], ids[0::2]]
    assert results[1]['done'] == [ids[1::2]]
    assert results[0]['metrics'] == dict(num_images=NUM_IDS)
    for img_id, (keys, high_res) in world['cams'].items():
        np.testing.assert_array_equal(
            read_label_png(osp.join(labels, img_id + '.png')),
            reference_label(keys, high_res, np.float32(0.15)))


def test_runtime_params_are_not_fingerprinted(world):
    inputs = dict(cams=world['cam_dir'], images=world['images'],
                  split=world['split'], irn_checkpoint='x.pth')
    outputs = dict(labels='rw')

    def settings(**params):
        return build(dict(type='RandomWalkStage', name='rw', inputs=inputs,
                          outputs=outputs, config='irn.py',
                          **params)).settings()

    assert settings(device='cuda:1', workers=4) == settings()
    assert settings(beta=8.) != settings()
