"""The tiny VQA of the synthetic world, its cache and its pipeline stage.

One small world and one VQA trained on it are shared by the module (a few
minutes of CPU at most); the quality asserts hold a margin below the values
measured when the test was written (see docs/world_models.md).
"""
import json
import os
import os.path as osp

import pytest

from qaclims_mm.qape.questions import BG_QUESTIONS, FG_QUESTIONS
from qaclims_mm.synthetic import GENERATOR_VERSION
from qaclims_mm.synthetic.describe import SCENE_WORDS, read_descriptions
from qaclims_mm.synthetic.world import cache as world_cache
from qaclims_mm.synthetic.world.vqa import (WorldVQAConfig, bg_answer,
                                            fg_answer, qa_pairs)

#: A small world and a short schedule: the test budget, not the tool's.
SIZES = {
    'train': dict(num_train=160, num_val=1, num_aug=0, min_long=64,
                  max_long=96),
    'eval': dict(num_train=40, num_val=1, num_aug=0, min_long=64,
                 max_long=96),
}
CFG = WorldVQAConfig(epochs=12, images_per_step=16, questions_per_class=4)


@pytest.fixture(scope='module')
def world(tmp_path_factory):
    """A cache built once for the module (VQA only, small world)."""
    root = str(tmp_path_factory.mktemp('world_cache'))
    models = world_cache.build_world_models(
        root, seed=3, progress=False, fg_templates=FG_QUESTIONS,
        bg_templates=BG_QUESTIONS, with_clip=False, vqa_cfg=CFG,
        world_sizes=SIZES, log=lambda msg: None)
    return root, models


def _record(scene, objects):
    return dict(id='x', scene=scene, scene_words=list(SCENE_WORDS[scene]),
                objects=objects)


def _obj(cls, x0, x1, colours='white and red', texture='bicolour'):
    return {'class': cls, 'colours': colours, 'texture': texture,
            'bbox': [x0, 10, x1, 30], 'visible_pixels': (x1 - x0) * 20,
            'position': 'center'}


def test_qa_pairs_follow_the_official_templates():
    boat = _obj('boat', 40, 60)
    person = _obj('person', 5, 15, 'peach and navy')
    record = _record('water', [boat, person])
    pairs = qa_pairs(record, FG_QUESTIONS, BG_QUESTIONS)
    assert len(pairs) == 2 * (6 + 10)
    by_q = {p['question']: p['answer'] for p in pairs}
    assert by_q['What kind of boat is in the photo?'] == 'white and red boat'
    assert by_q['What type of boat is in the photo?'] == 'bicolour boat'
    assert by_q['What is this boat also called?'] == 'ship'
    assert by_q['What is this boat usually called?'] == 'boat'
    assert by_q['what is behind the boat?'] == 'water'
    assert by_q['what is above the boat?'] == 'water'
    assert by_q['what environment is the boat in?'] == 'sea'
    # left of the boat stands the person; nothing right of it
    assert by_q['what is the left side of boat?'] == 'person'
    assert by_q['what is the right side of boat?'] == 'water'
    assert by_q['what is the right side of person?'] == 'boat'
    # multi-word classes are written as QAPE writes them
    table = _record('indoor', [_obj('dining table', 10, 50)])
    qs = {p['question']: p['answer']
          for p in qa_pairs(table, FG_QUESTIONS, BG_QUESTIONS)}
    assert qs['What kind of dining table is in the photo?'] == \
        'white and red table'
    assert qs['what is under the dining table?'] == 'floor'
    assert qs['what place is the dining table in?'] == 'room'
    assert fg_answer('What is another word for this {}?',
                     _obj('tv monitor', 1, 2)) == 'television'
    assert bg_answer('what is behind the {}?', _record('rail', []),
                     _obj('train', 1, 2)) == 'rail track'


def test_vqa_answers_held_out_questions(world):
    """Far above chance on unseen images (measured values in the docs)."""
    _, models = world
    m = models['metrics']
    assert m['vqa_fg_num'] > 300 and m['vqa_bg_num'] > 500
    # the most frequent answer of each template: ~0.07 (FG) / ~0.3 (BG)
    assert m['vqa_fg_chance'] < 0.15 and m['vqa_bg_chance'] < 0.45
    assert m['vqa_fg_acc'] >= 0.85
    assert m['vqa_bg_acc'] >= 0.6
    assert m['vqa_bg_acc'] > m['vqa_bg_chance'] + 0.25
    # "what is behind the X?": the scene itself
    assert m['vqa_bg2_acc'] >= 0.7


def test_model_dir_runs_through_qape(world, tmp_path):
    """The real BLIP engine loads the folder; boats on water get "water" BG
    texts and FG texts that name the boat."""
    from qaclims_mm.datasets.class_names import VOC_CLASSES
    from qaclims_mm.datasets.labels_file import save_labels_file
    from qaclims_mm.qape.stage import make_qa_corpus
    root, models = world
    eval_world = osp.join(models['root'], 'worlds', 'eval')
    records = read_descriptions(
        osp.join(eval_world, 'world_descriptions.jsonl'))
    labels = {r['id']: [VOC_CLASSES.index(o['class']) for o in r['objects']]
              for r in records}
    labels_file = str(tmp_path / 'cls_labels.json')
    save_labels_file(labels_file, labels, VOC_CLASSES, 'voc')
    corpus = make_qa_corpus(
        str(tmp_path / 'corpus'), models['vqa'], engine='blip',
        img_dir=osp.join(eval_world, 'VOC2012', 'JPEGImages'),
        labels_file=labels_file, device='cpu', dtype='fp32',
        image_size=models['vqa_image_size'], num_workers=0, progress=False)
    scene = {r['id']: r['scene'] for r in records}
    entries = list(corpus.pairs())
    assert len(entries) == sum(len(set(v)) for v in labels.values())
    boats = [(i, e) for i, c, e in entries
             if c == 'boat' and scene[i] == 'water']
    assert boats, 'the eval world holds no boat on water'
    with_water = [i for i, e in boats if 'water' in e.bg_texts]
    assert len(with_water) >= 0.8 * len(boats), boats
    for _, e in boats:
        assert len(e.fg_texts) == 6
        assert all('boat' in t for t in e.fg_texts), e.fg_texts
    # BG texts of the whole corpus are mostly the scenes' words
    words = {w for r in records for w in r['scene_words']}
    bg = [t for _, _, e in entries for t in e.bg_texts]
    assert sum(t in words for t in bg) >= 0.6 * len(bg)


def _rebuild_calls(monkeypatch):
    calls = []
    real = world_cache._build

    def spy(*args, **kwargs):
        calls.append(args[0])
        return real(*args, **kwargs)

    monkeypatch.setattr(world_cache, '_build', spy)
    return calls


def _build(root, **kwargs):
    return world_cache.build_world_models(
        root, seed=3, progress=False, fg_templates=FG_QUESTIONS,
        bg_templates=BG_QUESTIONS, with_clip=False, log=lambda m: None,
        **kwargs)


def test_cache_is_reused(world, monkeypatch):
    root, models = world
    calls = _rebuild_calls(monkeypatch)
    mtime = os.stat(models['manifest']).st_mtime_ns
    again = _build(root)
    assert calls == [] and again['built'] is False
    assert again['vqa'] == models['vqa']
    assert os.stat(models['manifest']).st_mtime_ns == mtime
    loaded = world_cache.load_world_models(root, seed=3)
    assert loaded['metrics'] == models['metrics']
    assert loaded['vqa_image_size'] == CFG.image_size
    manifest = json.load(open(models['manifest']))
    assert manifest['generator_version'] == GENERATOR_VERSION
    assert any(k.startswith('vqa/') for k in manifest['files'])


def test_corrupt_cache_is_refused_and_rebuilt(world, tmp_path, monkeypatch):
    import shutil
    root = str(tmp_path / 'cache')
    folder = osp.join(root, world_cache.world_dir_name(3))
    shutil.copytree(world[1]['root'], folder)
    weights = osp.join(folder, 'vqa', 'model.safetensors')
    with open(weights, 'r+b') as f:  # flip bytes in the middle
        f.seek(os.path.getsize(weights) // 2)
        f.write(b'\x00\x01\x02\x03')
    with pytest.raises(world_cache.WorldModelsError,
                       match='corrupt.*model.safetensors.*'
                       'train_world_models.py --out .* --seed 3'):
        world_cache.load_world_models(root, seed=3)
    # a rebuild trains again (a spy stands in for the training)
    calls = []

    def fake_build(partial, *args, **kwargs):
        calls.append(partial)
        os.makedirs(osp.join(partial, 'vqa'))
        with open(osp.join(partial, 'vqa', 'model.safetensors'), 'w') as f:
            f.write('new')
        manifest = dict(generator_version=GENERATOR_VERSION, seed=3,
                        fg_templates=list(FG_QUESTIONS),
                        bg_templates=list(BG_QUESTIONS), clip=None,
                        vqa=dict(image_size=64), metrics={},
                        files=world_cache._model_files(partial))
        with open(osp.join(partial, 'world.json'), 'w') as f:
            json.dump(manifest, f)
        return manifest

    monkeypatch.setattr(world_cache, '_build', fake_build)
    with pytest.warns(UserWarning, match='corrupt'):
        rebuilt = _build(root)
    assert len(calls) == 1 and rebuilt['built'] is True
    assert open(weights).read() == 'new'
    assert world_cache.load_world_models(root, seed=3)['root'] == folder
    # a missing file is also corrupt
    os.remove(weights)
    with pytest.raises(world_cache.WorldModelsError, match='missing'):
        world_cache.check_world_models(folder, 3)


def test_missing_or_other_version_names_the_command(world, tmp_path):
    root = str(tmp_path / 'empty')
    with pytest.raises(world_cache.WorldModelsError,
                       match=r'python tools/synthetic/train_world_models.py '
                       rf'--out {root} --seed 7'):
        world_cache.load_world_models(root, seed=7)
    # a cache of another generator version
    import shutil
    folder = osp.join(root, world_cache.world_dir_name(7))
    shutil.copytree(world[1]['root'], folder)
    manifest_path = osp.join(folder, 'world.json')
    manifest = json.load(open(manifest_path))
    manifest.update(generator_version=GENERATOR_VERSION - 1, seed=7)
    json.dump(manifest, open(manifest_path, 'w'))
    with pytest.raises(world_cache.WorldModelsError,
                       match=rf'generator version {GENERATOR_VERSION - 1}.*'
                       'train_world_models.py'):
        world_cache.load_world_models(root, seed=7)
    # an incomplete folder (no world.json: a killed build)
    os.remove(manifest_path)
    with pytest.raises(world_cache.WorldModelsError, match='incomplete'):
        world_cache.load_world_models(root, seed=7)


def test_world_models_stage(world, tmp_path, monkeypatch):
    """The stage reuses the cache and copies the models to its outputs."""
    from qaclims_mm.pipeline import PIPELINE_STAGES, StageContext
    from qaclims_mm.pipeline.stages.world import WorldModelsStage
    root, models = world
    assert PIPELINE_STAGES.get('WorldModelsStage') is WorldModelsStage
    out = tmp_path / 'work'
    stage = WorldModelsStage(
        'world', outputs=dict(vqa=str(out / 'world' / 'vqa'),
                              clip=str(out / 'world' / 'clip')),
        cache_root=root, seed=3, with_clip=False)
    calls = _rebuild_calls(monkeypatch)
    metrics = stage.run(StageContext(work_dir=str(out),
                                     stage_dir=str(out / 'world'),
                                     progress=False))
    assert calls == [] and metrics['built'] is False
    assert metrics['vqa_fg_acc'] == models['metrics']['vqa_fg_acc']
    assert metrics['vqa_image_size'] == CFG.image_size
    assert open(out / 'world' / 'vqa' / 'model.safetensors', 'rb').read() \
        == open(osp.join(models['vqa'], 'model.safetensors'), 'rb').read()
    assert stage.settings()['generator_version'] == GENERATOR_VERSION
    # outputs inside the cache would be wiped by the runner: refused
    with pytest.raises(ValueError, match='overlaps the world-model cache'):
        WorldModelsStage('world', outputs=dict(
            vqa=osp.join(models['root'], 'vqa'), clip=str(out / 'c')),
            cache_root=root, seed=3)


def test_tool_reuses_and_prints(world, capsys, monkeypatch):
    import importlib.util
    repo = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
    spec = importlib.util.spec_from_file_location(
        'train_world_models',
        osp.join(repo, 'tools', 'synthetic', 'train_world_models.py'))
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    assert tool.parse_args([]).out == 'data/pretrained/synthetic'
    root, models = world
    calls = _rebuild_calls(monkeypatch)
    tool.main(['--out', root, '--seed', '3', '--no-clip', '--no-progress'])
    text = capsys.readouterr().out
    assert calls == [] and 'reused' in text and '"vqa_fg_acc"' in text
