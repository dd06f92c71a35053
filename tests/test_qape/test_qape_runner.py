"""The QAPE runner: end to end with a tiny BLIP, resume after a crash,
settings mismatch, unreadable images, multi-rank sharding."""
import json
import os
import os.path as osp
import shutil
from collections import Counter

import numpy as np
import pytest
import torch
from PIL import Image

from qaclims_mm.datasets.class_names import VOC_CLASSES
from qaclims_mm.qape import runner
from qaclims_mm.qape.corpus import load_corpus, read_shard_records
from qaclims_mm.qape.engines.base import VQAEngine
from qaclims_mm.qape.engines.blip import BlipVQAEngine, build_tiny_blip_vqa
from qaclims_mm.qape.questions import QuestionSet
from qaclims_mm.utils.io import read_split

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
SYNTHETIC_CONFIG = osp.join(REPO, 'configs/_base_/datasets/synthetic_voc.py')


@pytest.fixture(autouse=True, scope='module')
def one_torch_thread():
    """Tiny models gain nothing from threads; on a busy shared CPU, thread
    contention makes them many times slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


class FakeEngine(VQAEngine):
    """Answers ``'<question> @ <mean colour>'``; can crash after N calls."""

    def __init__(self, crash_after=None, model='fake-a'):
        self.crash_after = crash_after
        self.model = model
        self.calls = 0
        self.questions = []

    def preprocess(self, image):
        return int(np.asarray(image).mean())

    def answer_preprocessed(self, inputs, questions):
        if self.crash_after is not None and self.calls >= self.crash_after:
            raise RuntimeError('simulated crash')
        self.calls += 1
        self.questions += [q for qs in questions for q in qs]
        return [[f'{q} @ {x}' for q in qs] for x, qs in zip(inputs, questions)]

    def answer_settings(self):
        return dict(type='FakeEngine', model_path=self.model)


@pytest.fixture(scope='module')
def voc_items(synthetic_voc_root):
    split = osp.join(synthetic_voc_root, 'ImageSets/Segmentation/train.txt')
    return runner.items_from_files(
        split, osp.join(synthetic_voc_root, 'JPEGImages'),
        osp.join(synthetic_voc_root, 'cls_labels.json'), 'voc')


def all_pairs(items):
    return {(it.img_id, c) for it in items for c in it.class_names}


def shard_pair_counts(out_dir):
    return Counter((r['img_id'], r['class_name'])
                   for r in read_shard_records(runner.list_shards(out_dir)))


def test_items_from_files(voc_items, synthetic_voc_root):
    labels = json.load(open(osp.join(synthetic_voc_root,
                                     'cls_labels.json')))['labels']
    assert voc_items and all(osp.isfile(it.img_path) for it in voc_items)
    for it in voc_items:
        assert it.class_names == [VOC_CLASSES[i] for i in labels[it.img_id]]


def test_end_to_end_tiny_blip(voc_items, tmp_path):
    model = build_tiny_blip_vqa(str(tmp_path / 'blip'), image_size=64,
                                hidden_size=32, vision_layers=2)
    engine = BlipVQAEngine(model, device='cpu', image_size=None,
                           batch_size=16)
    items = voc_items[:3]
    out = str(tmp_path / 'qape')
    qs = QuestionSet()
    path = runner.run_qape(engine, items, qs, out, chunk_images=2,
                           num_workers=0, progress=False)
    assert path == osp.join(out, 'corpus.json')
    corpus = load_corpus(path)
    assert {(i, c) for i, c, _ in corpus.pairs()} == all_pairs(items)
    # the corpus holds exactly what the engine answers for the image
    it = items[0]
    img = Image.open(it.img_path).convert('RGB')
    name = it.class_names[0]
    expected = engine.answer([img], [qs.format('fg', name) +
                                     qs.format('bg', name)])[0]
    entry = corpus.get(it.img_id, name)
    assert list(entry.fg_raw) == expected[:6]
    assert list(entry.bg_raw) == expected[6:]
    assert corpus.meta['model'] == osp.abspath(model)
    assert corpus.meta['engine']['num_beams'] == 3
    assert 'transformers' in corpus.meta['engine_versions']
    assert len(runner.list_shards(out)) == 2  # 3 images, chunks of 2
    settings = json.load(open(osp.join(out, 'settings.json')))
    assert settings['questions'] == qs.to_dict()


def test_tool_with_dataset_config(synthetic_voc_root, tmp_path,
                                  monkeypatch):
    import importlib.util
    spec = importlib.util.spec_from_file_location(
        'qape_tool', osp.join(REPO, 'tools/qape.py'))
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    split = tmp_path / 'short.txt'
    ids = read_split(osp.join(synthetic_voc_root,
                              'ImageSets/Segmentation/train.txt'))[:2]
    split.write_text('\n'.join(ids) + '\n')
    model = build_tiny_blip_vqa(str(tmp_path / 'blip'), image_size=64,
                                hidden_size=32, vision_layers=2)
    questions = tmp_path / 'questions.json'
    questions.write_text(json.dumps(dict(fg=['what {} is this?'],
                                         bg=['what is near the {}?'])))
    out = str(tmp_path / 'qape')
    tool.main([
        '--config', SYNTHETIC_CONFIG, '--cfg-options',
        f'train_dataloader.dataset.data_root={synthetic_voc_root}',
        f'train_dataloader.dataset.ann_file={split}',
        '--model-path', model, '--device', 'cpu', '--image-size', '64',
        '--questions', str(questions), '--out-dir', out, '--num-workers', '0',
        '--no-progress'])
    corpus = load_corpus(osp.join(out, 'corpus.json'))
    assert sorted(corpus.entries) == sorted(ids)
    entry = next(e for _, _, e in corpus.pairs())
    assert len(entry.fg_raw) == 1 and len(entry.bg_raw) == 1
    assert corpus.meta['source']['config'] == SYNTHETIC_CONFIG


def test_resume_after_crash(voc_items, tmp_path):
    out = str(tmp_path / 'qape')
    qs = QuestionSet()
    crashing = FakeEngine(crash_after=2)
    with pytest.raises(RuntimeError, match='simulated crash'):
        runner.run_qape(crashing, voc_items, qs, out, chunk_images=3,
                        num_workers=0, progress=False)
    done_first = shard_pair_counts(out)
    assert len(runner.list_shards(out)) == 2
    assert set(done_first) == all_pairs(voc_items[:6])
    assert not osp.exists(osp.join(out, 'corpus.json'))
    # restart with the same command
    engine = FakeEngine()
    runner.run_qape(engine, voc_items, qs, out, chunk_images=3,
                    num_workers=0, progress=False)
    counts = shard_pair_counts(out)
    assert set(counts) == all_pairs(voc_items)
    assert set(counts.values()) == {1}  # nothing lost, nothing duplicated
    # the restart only asked the pending pairs
    pending = len(all_pairs(voc_items)) - len(done_first)
    assert len(engine.questions) == pending * 16
    corpus = load_corpus(osp.join(out, 'corpus.json'))
    assert len(corpus) == len(all_pairs(voc_items))
    it = voc_items[-1]
    name = it.class_names[0]
    mean = int(np.asarray(Image.open(it.img_path).convert('RGB')).mean())
    assert corpus.get(it.img_id, name).fg_raw[0] == \
        f'{qs.format("fg", name)[0]} @ {mean}'
    # a third run has nothing left to do
    idle = FakeEngine()
    runner.run_qape(idle, voc_items, qs, out, num_workers=0, progress=False)
    assert idle.calls == 0


def test_settings_mismatch_refused(voc_items, tmp_path):
    out = str(tmp_path / 'qape')
    runner.run_qape(FakeEngine(model='fake-a'), voc_items[:2], QuestionSet(),
                    out, num_workers=0, progress=False)
    with pytest.raises(ValueError) as err:
        runner.run_qape(FakeEngine(model='fake-b'), voc_items[:2],
                        QuestionSet(), out, num_workers=0, progress=False)
    msg = str(err.value)
    assert 'engine.model_path' in msg and 'fake-a' in msg and 'fake-b' in msg
    assert 'settings.json' in msg
    with pytest.raises(ValueError, match='questions.fg'):
        runner.run_qape(FakeEngine(model='fake-a'), voc_items[:2],
                        QuestionSet(fg=('what {}?', )), out, num_workers=0,
                        progress=False)


def test_unreadable_image_named_and_nothing_lost(voc_items, tmp_path):
    img_dir = tmp_path / 'images'
    img_dir.mkdir()
    items = []
    for it in voc_items[:4]:
        dst = str(img_dir / osp.basename(it.img_path))
        shutil.copy(it.img_path, dst)
        items.append(runner.ImageItem(it.img_id, dst, it.class_names))
    bad = items[2]
    with open(bad.img_path, 'wb') as f:
        f.write(b'not a jpeg')
    out = str(tmp_path / 'qape')
    with pytest.raises(runner.ImageReadError) as err:
        runner.run_qape(FakeEngine(), items, QuestionSet(), out,
                        chunk_images=2, num_workers=0, progress=False)
    assert bad.img_id in str(err.value) and bad.img_path in str(err.value)
    assert set(shard_pair_counts(out)) == all_pairs(items[:2])


def test_ranks_split_images_and_rank0_merges(voc_items, tmp_path,
                                             monkeypatch):
    """Two ranks simulated in turn (rank 1 first, so rank 0 merges last)."""
    out = str(tmp_path / 'qape')
    monkeypatch.setattr(runner, '_barrier', lambda: None)
    engines = {}
    for rank in (0, 1):  # rank 0 writes settings.json first
        monkeypatch.setattr(runner, '_dist_info', lambda r=rank: (r, 2))
        engines[rank] = FakeEngine(crash_after=0 if rank == 0 else None)
        if rank == 0:
            with pytest.raises(RuntimeError):  # rank 0 dies at once
                runner.run_qape(engines[0], voc_items, QuestionSet(), out,
                                num_workers=0, progress=False)
        else:
            assert runner.run_qape(engines[1], voc_items, QuestionSet(), out,
                                   num_workers=0, progress=False) is None
    names = {osp.basename(p) for p in runner.list_shards(out)}
    assert names and all(n.startswith('rank1-') for n in names)
    assert set(shard_pair_counts(out)) == all_pairs(voc_items[1::2])
    # rank 0 restarted: answers its own images, then merges everything
    monkeypatch.setattr(runner, '_dist_info', lambda: (0, 2))
    path = runner.run_qape(FakeEngine(), voc_items, QuestionSet(), out,
                           num_workers=0, progress=False)
    corpus = load_corpus(path)
    assert len(corpus) == len(all_pairs(voc_items))
    assert set(shard_pair_counts(out).values()) == {1}


def test_torchrun_two_processes(synthetic_voc_root, tmp_path):
    """``torchrun --nproc_per_node 2 tools/qape.py`` on CPU (gloo)."""
    import subprocess
    import sys
    split = tmp_path / 'short.txt'
    ids = read_split(osp.join(synthetic_voc_root,
                              'ImageSets/Segmentation/train.txt'))[:4]
    split.write_text('\n'.join(ids) + '\n')
    model = build_tiny_blip_vqa(str(tmp_path / 'blip'), image_size=32,
                                hidden_size=32, vision_layers=1)
    out = str(tmp_path / 'qape')
    env = dict(os.environ, OMP_NUM_THREADS='1')
    proc = subprocess.run(
        [sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node',
         '2', osp.join(REPO, 'tools/qape.py'), '--split-file', str(split),
         '--img-dir', osp.join(synthetic_voc_root, 'JPEGImages'),
         '--labels-file', osp.join(synthetic_voc_root, 'cls_labels.json'),
         '--model-path', model, '--image-size', '32', '--out-dir', out,
         '--chunk-images', '1', '--num-workers', '0', '--no-progress'],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    names = {osp.basename(p)[:6] for p in runner.list_shards(out)}
    assert names == {'rank0-', 'rank1-'}
    corpus = load_corpus(osp.join(out, 'corpus.json'))
    assert sorted(corpus.entries) == sorted(ids)
    assert corpus.meta['runtime']['world_size'] == 2
