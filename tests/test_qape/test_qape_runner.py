"""The QAPE runner: end to end with a tiny BLIP, resume after a crash,
settings mismatch, unreadable images, multi-rank sharding."""
import contextlib
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
from qaclims_mm.qape.engines.blip import BlipVQAEngine
from qaclims_mm.qape.questions import QuestionSet
from qaclims_mm.testing import build_tiny_blip_vqa
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
        f'train_dataloader.dataset.ann_file={split}', '--split-only',
        '--model-path', model, '--device', 'cpu', '--image-size', '64',
        '--questions', str(questions), '--out-dir', out, '--num-workers', '0',
        '--no-progress'])
    corpus = load_corpus(osp.join(out, 'corpus.json'))
    assert sorted(corpus.entries) == sorted(ids)
    entry = next(e for _, _, e in corpus.pairs())
    assert len(entry.fg_raw) == 1 and len(entry.bg_raw) == 1
    assert corpus.meta['source']['config'] == SYNTHETIC_CONFIG
    assert corpus.meta['source']['images'] == 'split'


def load_tool():
    import importlib.util
    spec = importlib.util.spec_from_file_location(
        'qape_tool', osp.join(REPO, 'tools/qape.py'))
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    return tool


def labelled_ids(labels_file):
    labels = json.load(open(labels_file))['labels']
    return [i for i, idx in labels.items() if idx]


def test_every_labelled_image_is_asked_by_default(synthetic_voc_root):
    """The official script asks every image of cls_labels (train_aug and
    val), not only the training split."""
    labels_file = osp.join(synthetic_voc_root, 'cls_labels.json')
    img_dir = osp.join(synthetic_voc_root, 'JPEGImages')
    expected = labelled_ids(labels_file)
    val = read_split(osp.join(synthetic_voc_root,
                              'ImageSets/Segmentation/val.txt'))
    train_aug = read_split(osp.join(synthetic_voc_root,
                                    'ImageSets/Segmentation/train_aug.txt'))
    items = runner.items_from_files(None, img_dir, labels_file, 'voc')
    assert [it.img_id for it in items] == expected
    assert {it.img_id for it in items} & (set(val) - set(train_aug))
    cfg_options = {'train_dataloader.dataset.data_root': synthetic_voc_root}
    from_config = runner.items_from_dataset_config(
        SYNTHETIC_CONFIG, cfg_options=cfg_options)
    assert [(it.img_id, it.img_path, it.class_names)
            for it in from_config] == [(it.img_id, it.img_path,
                                        it.class_names) for it in items]
    split_only = runner.items_from_dataset_config(
        SYNTHETIC_CONFIG, cfg_options=cfg_options, split_only=True)
    assert {it.img_id for it in split_only} == \
        set(train_aug) & set(expected)


def test_tool_asks_every_labelled_image_without_split_file(
        synthetic_voc_root, tmp_path):
    """``--img-dir/--labels-file`` alone: every image of the labels file."""
    src = json.load(open(osp.join(synthetic_voc_root, 'cls_labels.json')))
    val = read_split(osp.join(synthetic_voc_root,
                              'ImageSets/Segmentation/val.txt'))
    train = read_split(osp.join(synthetic_voc_root,
                                'ImageSets/Segmentation/train.txt'))
    ids = [i for i in train[:1] + val[:2] if src['labels'][i]]
    labels_file = tmp_path / 'labels.json'
    labels_file.write_text(json.dumps(dict(
        src, labels={i: src['labels'][i] for i in ids})))
    model = build_tiny_blip_vqa(str(tmp_path / 'blip'), image_size=32,
                                hidden_size=32, vision_layers=1)
    questions = tmp_path / 'questions.json'
    questions.write_text(json.dumps(dict(fg=['what {} is this?'],
                                         bg=['what is near the {}?'])))
    out = str(tmp_path / 'qape')
    load_tool().main([
        '--img-dir', osp.join(synthetic_voc_root, 'JPEGImages'),
        '--labels-file', str(labels_file), '--model-path', model,
        '--device', 'cpu', '--image-size', '32', '--questions',
        str(questions), '--out-dir', out, '--num-workers', '0',
        '--no-progress'])
    corpus = load_corpus(osp.join(out, 'corpus.json'))
    assert sorted(corpus.entries) == sorted(ids)
    assert len(corpus) == sum(len(src['labels'][i]) for i in ids)
    assert corpus.meta['source']['images'] == 'labels_file'
    assert corpus.meta['source']['split_file'] is None


def test_missing_labelled_image_named_before_any_answer(synthetic_voc_root,
                                                        tmp_path):
    labels_file = osp.join(synthetic_voc_root, 'cls_labels.json')
    img_dir = tmp_path / 'images'
    img_dir.mkdir()
    first = labelled_ids(labels_file)[0]
    with pytest.raises(FileNotFoundError) as err:
        runner.items_from_files(None, str(img_dir), labels_file, 'voc')
    assert first in str(err.value) and labels_file in str(err.value)


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


class ReentrantEngine(FakeEngine):
    """On its first call, starts a second run into the same folder (another
    chunking), as a concurrent ``tools/qape.py`` would."""

    def __init__(self, second_run):
        super().__init__()
        self.second_run = second_run
        self.second_error = None

    def answer_preprocessed(self, inputs, questions):
        if self.calls == 0:
            try:
                self.second_run()
            except Exception as e:  # noqa: BLE001 (recorded, checked below)
                self.second_error = e
        return super().answer_preprocessed(inputs, questions)


def test_second_run_into_a_busy_folder_is_refused(voc_items, tmp_path):
    out = str(tmp_path / 'qape')
    items = voc_items[:5]
    second = FakeEngine()
    engine = ReentrantEngine(lambda: runner.run_qape(
        second, items, QuestionSet(), out, chunk_images=3, num_workers=0,
        progress=False))
    runner.run_qape(engine, items, QuestionSet(), out, chunk_images=2,
                    num_workers=0, progress=False)
    err = engine.second_error
    lock = osp.join(out, '.qape.lock')
    assert err is not None, 'the second run wrote into the busy folder'
    assert isinstance(err, runner.OutputDirLockedError), repr(err)
    assert lock in str(err) and f'pid {os.getpid()}' in str(err)
    assert second.calls == 0  # it wrote nothing
    counts = shard_pair_counts(out)
    assert set(counts) == all_pairs(items) and set(counts.values()) == {1}
    assert len(load_corpus(osp.join(out, 'corpus.json'))) == \
        len(all_pairs(items))
    # released at the end: the next run goes through
    assert runner.run_qape(FakeEngine(), items, QuestionSet(), out,
                           num_workers=0, progress=False)


def test_lock_of_a_killed_run_is_released(voc_items, tmp_path):
    """``kill -9`` of the lock holder must not leave the folder locked."""
    import signal
    import subprocess
    import sys
    out = str(tmp_path / 'qape')
    code = ('import sys, time\n'
            'from qaclims_mm.qape.runner import lock_out_dir\n'
            'with lock_out_dir(sys.argv[1]):\n'
            '    print("locked", flush=True)\n'
            '    time.sleep(600)\n')
    proc = subprocess.Popen([sys.executable, '-c', code, out],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == 'locked'
        with pytest.raises(runner.OutputDirLockedError) as err:
            runner.run_qape(FakeEngine(), voc_items[:2], QuestionSet(), out,
                            num_workers=0, progress=False)
        assert osp.join(out, runner.LOCK_FILE) in str(err.value)
        assert f'pid {proc.pid}' in str(err.value)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
        proc.stdout.close()
    assert osp.isfile(osp.join(out, runner.LOCK_FILE))  # stale file stays
    path = runner.run_qape(FakeEngine(), voc_items[:2], QuestionSet(), out,
                           num_workers=0, progress=False)
    assert len(load_corpus(path)) == len(all_pairs(voc_items[:2]))


def holds_lock_file(lock_path):
    """Whether this process has a descriptor open on ``lock_path``."""
    fds = '/proc/self/fd'
    for name in os.listdir(fds):
        with contextlib.suppress(OSError):
            if os.readlink(osp.join(fds, name)) == lock_path:
                return True
    return False


class LockProbeEngine(FakeEngine):
    """Records, per process, whether it holds the folder's lock file."""

    def __init__(self, lock_path):
        super().__init__()
        self.lock_path = lock_path
        self.seen = []

    def preprocess(self, image):  # runs in the loader worker
        return os.getpid(), holds_lock_file(self.lock_path)

    def answer_preprocessed(self, inputs, questions):  # the run's process
        self.seen += list(inputs)
        self.seen.append((os.getpid(), holds_lock_file(self.lock_path)))
        return [[q for q in qs] for qs in questions]


def test_loader_workers_do_not_hold_the_lock(voc_items, tmp_path):
    """Forked image-loading workers close their copy of the lock, so a
    killed run's orphaned workers cannot keep the folder locked."""
    out = str(tmp_path / 'qape')
    engine = LockProbeEngine(osp.abspath(osp.join(out, '.qape.lock')))
    runner.run_qape(engine, voc_items[:2], QuestionSet(), out,
                    chunk_images=2, num_workers=1, progress=False)
    workers = {held for pid, held in engine.seen if pid != os.getpid()}
    main = {held for pid, held in engine.seen if pid == os.getpid()}
    assert workers == {False} and main == {True}


def write_extra_shard(out, items, chunk_images, seq):
    """What a second, concurrent run (older version) left: the same pairs
    answered again under another chunking, in shards of its own."""
    records = []
    for start in range(0, len(items), chunk_images):
        chunk = items[start:start + chunk_images]
        engine = FakeEngine()
        answers = engine.answer_preprocessed(
            [engine.preprocess(Image.open(it.img_path).convert('RGB'))
             for it in chunk],
            [[q for n in it.class_names for q in
              QuestionSet().format('fg', n) + QuestionSet().format('bg', n)]
             for it in chunk])
        for it, ans in zip(chunk, answers):
            for k, name in enumerate(it.class_names):
                block = ans[k * 16:(k + 1) * 16]
                records.append(dict(img_id=it.img_id, class_name=name,
                                    fg=block[:6], bg=block[6:]))
    path = runner.shard_path(out, 0, seq)
    runner.write_shard(path, records)
    return path


def test_identical_duplicate_records_are_merged(voc_items, tmp_path):
    out = str(tmp_path / 'qape')
    items = voc_items[:4]
    runner.run_qape(FakeEngine(), items[:2], QuestionSet(), out,
                    chunk_images=2, num_workers=0, progress=False)
    write_extra_shard(out, items, chunk_images=3, seq=7)
    assert max(shard_pair_counts(out).values()) == 2
    path = runner.run_qape(FakeEngine(), items, QuestionSet(), out,
                           chunk_images=2, num_workers=0, progress=False)
    corpus = load_corpus(path)
    assert {(i, c) for i, c, _ in corpus.pairs()} == all_pairs(items)
    it = items[0]
    mean = int(np.asarray(Image.open(it.img_path).convert('RGB')).mean())
    name = it.class_names[0]
    assert corpus.get(it.img_id, name).fg_raw[0] == \
        f'{QuestionSet().format("fg", name)[0]} @ {mean}'


def test_differing_duplicate_records_name_both_shards(voc_items, tmp_path):
    out = str(tmp_path / 'qape')
    items = voc_items[:3]
    runner.run_qape(FakeEngine(), items, QuestionSet(), out, chunk_images=2,
                    num_workers=0, progress=False)
    extra = write_extra_shard(out, items[1:2], chunk_images=1, seq=9)
    with open(extra, encoding='utf-8') as f:
        records = [json.loads(line) for line in f]
    records[0]['bg'][3] = 'something else'
    runner.write_shard(extra, records)
    first = runner.list_shards(out)[0]
    with pytest.raises(ValueError) as err:
        runner.run_qape(FakeEngine(), items, QuestionSet(), out,
                        num_workers=0, progress=False)
    msg = str(err.value)
    assert first in msg and extra in msg and items[1].img_id in msg
    # following the message repairs the folder
    os.remove(extra)
    assert runner.run_qape(FakeEngine(), items, QuestionSet(), out,
                           num_workers=0, progress=False)


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


@pytest.fixture
def no_flock(monkeypatch):
    """A filesystem without locking: every flock fails with ENOLCK."""
    import errno
    import fcntl

    def flock(fd, operation):
        raise OSError(errno.ENOLCK, 'No locks available')

    monkeypatch.setattr(fcntl, 'flock', flock)


def test_filesystem_without_flock_is_named_and_can_opt_out(
        voc_items, tmp_path, no_flock):
    out = str(tmp_path / 'nfs' / 'qape')
    lock = osp.join(out, runner.LOCK_FILE)
    with pytest.raises(runner.OutputDirLockUnsupportedError) as err:
        with runner.lock_out_dir(out):
            pass
    message = str(err.value)
    assert lock in message and f'folder {out}:' in message
    assert 'ENOLCK' in message and '--no-lock' in message
    assert 'lock=False' in message
    engine = FakeEngine()
    with pytest.raises(runner.OutputDirLockUnsupportedError, match=lock):
        runner.run_qape(engine, voc_items[:2], QuestionSet(), out,
                        num_workers=0, progress=False)
    assert engine.calls == 0 and not runner.list_shards(out)
    # the explicit opt-out runs unlocked
    path = runner.run_qape(engine, voc_items[:2], QuestionSet(), out,
                           num_workers=0, progress=False, lock=False)
    assert len(load_corpus(path)) == len(all_pairs(voc_items[:2]))


@pytest.mark.parametrize('code', ['EOPNOTSUPP', 'ENOSYS'])
def test_other_no_lock_errnos(tmp_path, monkeypatch, code):
    import errno
    import fcntl

    def flock(fd, operation):
        raise OSError(getattr(errno, code), os.strerror(getattr(errno, code)))

    monkeypatch.setattr(fcntl, 'flock', flock)
    with pytest.raises(runner.OutputDirLockUnsupportedError,
                       match='cannot lock the QAPE output folder'):
        with runner.lock_out_dir(str(tmp_path)):
            pass


def test_tool_no_lock_option(synthetic_voc_root, tmp_path, monkeypatch,
                             no_flock):
    from qaclims_mm.qape.engines import base as engines_base
    tool = load_tool()
    monkeypatch.setattr(engines_base, 'build_vqa_engine',
                        lambda cfg: FakeEngine())
    labels_file = osp.join(synthetic_voc_root, 'cls_labels.json')
    split = osp.join(synthetic_voc_root, 'ImageSets/Segmentation/train.txt')
    out = str(tmp_path / 'qape')
    argv = ['--img-dir', osp.join(synthetic_voc_root, 'JPEGImages'),
            '--labels-file', labels_file, '--split-file', split,
            '--model-path', 'fake', '--device', 'cpu', '--out-dir', out,
            '--num-workers', '0', '--no-progress']
    with pytest.raises(runner.OutputDirLockUnsupportedError,
                       match='--no-lock'):
        tool.main(argv)
    tool.main(argv + ['--no-lock'])
    corpus = load_corpus(osp.join(out, 'corpus.json'))
    assert len(corpus) == len(all_pairs(runner.items_from_files(
        split, osp.join(synthetic_voc_root, 'JPEGImages'), labels_file,
        'voc')))
