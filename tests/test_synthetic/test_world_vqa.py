"""The tiny VQA of the synthetic world, its cache and its pipeline stage.

One small world and one VQA trained on it are shared by the module (a few
minutes of CPU at most); the quality asserts hold a margin below the values
measured when the test was written (see docs/world_models.md).
"""
import json
import os
import os.path as osp
import re

import pytest

from qaclims_mm.qape.questions import BG_QUESTIONS, FG_QUESTIONS
from qaclims_mm.synthetic import GENERATOR_VERSION
from qaclims_mm.synthetic.describe import SCENE_WORDS, read_descriptions
from qaclims_mm.synthetic.world import cache as world_cache
from qaclims_mm.synthetic.world.vqa import (WorldVQAConfig, bg_answer,
                                            fg_answer, qa_pairs)

#: A small world and a short schedule: the test budget, not the tool's.
SIZES = {
    'train': dict(num_train=80, num_val=1, num_aug=0, min_long=64,
                  max_long=96),
    'eval': dict(num_train=40, num_val=1, num_aug=0, min_long=64,
                 max_long=96),
}
CFG = WorldVQAConfig(image_size=32, vision_layers=2, epochs=55,
                     warmup_steps=30)


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
    print(json.dumps(m, indent=1))
    assert m['vqa_fg_num'] > 150 and m['vqa_bg_num'] > 250
    # the most frequent answer of each template: ~0.07 (FG) / ~0.3 (BG)
    assert m['vqa_fg_chance'] < 0.15 and m['vqa_bg_chance'] < 0.45
    # measured (seed 3, this config): FG 0.86, BG 0.74, behind 0.85,
    # BG where the scene is not the class's usual one 0.52
    assert m['vqa_fg_acc'] >= 0.7
    assert m['vqa_bg_acc'] >= 0.6
    assert m['vqa_bg_acc'] > m['vqa_bg_chance'] + 0.3
    # "what is behind the X?": the scene itself
    assert m['vqa_bg2_acc'] >= 0.7
    # the image is looked at: above the class -> scene prior off its scene
    assert m['vqa_bg_off_prior_acc'] >= 0.35


def test_model_dir_runs_through_qape(world, tmp_path):
    """The real BLIP engine loads the folder; boats on water get "water" BG
    texts and FG texts that name the boat."""
    from qaclims_mm.datasets.class_names import VOC_CLASSES
    from qaclims_mm.datasets.labels_file import save_labels_file
    from qaclims_mm.qape.corpus import load_corpus
    from qaclims_mm.qape.stage import make_qa_corpus
    root, models = world
    eval_world = osp.join(models['root'], 'worlds', 'eval')
    records = read_descriptions(
        osp.join(eval_world, 'world_descriptions.jsonl'))
    labels = {r['id']: [VOC_CLASSES.index(o['class']) for o in r['objects']]
              for r in records}
    labels_file = str(tmp_path / 'cls_labels.json')
    save_labels_file(labels_file, labels, VOC_CLASSES, 'voc')
    corpus_path = make_qa_corpus(
        str(tmp_path / 'corpus'), models['vqa'], engine='blip',
        img_dir=osp.join(eval_world, 'VOC2012', 'JPEGImages'),
        labels_file=labels_file, device='cpu', dtype='fp32',
        image_size=models['vqa_image_size'], num_workers=0, progress=False)
    corpus = load_corpus(corpus_path)
    scene = {r['id']: r['scene'] for r in records}
    entries = list(corpus.pairs())
    assert len(entries) == sum(len(set(v)) for v in labels.values())
    boats = [(i, e) for i, c, e in entries
             if c == 'boat' and scene[i] == 'water']
    assert boats, 'the eval world holds no boat on water'
    with_water = [i for i, e in boats if 'water' in e.bg_texts]
    assert len(with_water) >= 0.8 * len(boats), boats
    # the engine's raw answers are the trained ones (as measured on the
    # held-out world with the training code's decoding)
    expected = {(p['id'], p['class'], p['kind'], p['template']): p['answer']
                for r in records
                for p in qa_pairs(r, FG_QUESTIONS, BG_QUESTIONS)}
    for kind, least in (('fg', 0.7), ('bg', 0.6)):
        hits = [a == expected[(i, c, kind, t)]
                for i, c, e in entries
                for t, a in enumerate(getattr(e, f'{kind}_raw'))]
        assert sum(hits) >= least * len(hits), (kind, sum(hits), len(hits))
    for _, e in boats:  # post-processing keeps the object word
        assert len(e.fg_texts) == 6
        assert all('boat' in t for t in e.fg_texts), e.fg_texts
    # BG texts of the whole corpus are mostly the scenes' words
    words = {w for r in records for w in r['scene_words']}
    bg = [t for _, _, e in entries for t in e.bg_texts]
    assert sum(t in words for t in bg) >= 0.6 * len(bg)


def _fake_build(calls):
    """Stands in for the training: a tiny model folder and its manifest."""

    def build(partial, seed, *args, **kwargs):
        calls.append(partial)
        os.makedirs(osp.join(partial, 'vqa'))
        with open(osp.join(partial, 'vqa', 'model.safetensors'), 'w') as f:
            f.write(f'weights {len(calls)}')
        manifest = dict(generator_version=GENERATOR_VERSION, seed=seed,
                        fg_templates=list(FG_QUESTIONS),
                        bg_templates=list(BG_QUESTIONS), clip=None,
                        vqa=dict(image_size=32),
                        metrics=dict(vqa_fg_acc=0.9, vqa_bg_acc=0.8),
                        files=world_cache._model_files(partial))
        with open(osp.join(partial, 'world.json'), 'w') as f:
            json.dump(manifest, f)
        return manifest

    return build


@pytest.fixture
def fake_training(monkeypatch):
    """``calls``: the folders a (fake) training ran in."""
    calls = []
    monkeypatch.setattr(world_cache, '_build', _fake_build(calls))
    return calls


def _build(root, seed=3, **kwargs):
    return world_cache.build_world_models(
        root, seed=seed, progress=False, fg_templates=FG_QUESTIONS,
        bg_templates=BG_QUESTIONS, with_clip=False, log=lambda m: None,
        **kwargs)


def test_cache_is_reused(tmp_path, fake_training):
    root = str(tmp_path / 'cache')
    models = _build(root)
    assert models['built'] is True and len(fake_training) == 1
    mtime = os.stat(models['manifest']).st_mtime_ns
    again = _build(root)
    assert len(fake_training) == 1 and again['built'] is False
    assert again['vqa'] == models['vqa'] == osp.join(
        root, f'world-v{GENERATOR_VERSION}-seed3', 'vqa')
    assert os.stat(models['manifest']).st_mtime_ns == mtime
    loaded = world_cache.load_world_models(root, seed=3)
    assert loaded['metrics'] == dict(vqa_fg_acc=0.9, vqa_bg_acc=0.8)
    assert loaded['vqa_image_size'] == 32
    # --force trains again; no partial folder is left behind
    assert _build(root, force=True)['built'] is True
    assert len(fake_training) == 2
    assert os.listdir(root) == [f'world-v{GENERATOR_VERSION}-seed3']


def test_corrupt_cache_is_refused_and_rebuilt(tmp_path, fake_training):
    root = str(tmp_path / 'cache')
    folder = _build(root)['root']
    weights = osp.join(folder, 'vqa', 'model.safetensors')
    with open(weights, 'w') as f:
        f.write('garbage')
    with pytest.raises(world_cache.WorldModelsError,
                       match='corrupt.*model.safetensors has another '
                       'checksum.*train_world_models.py --out .* --seed 3'):
        world_cache.load_world_models(root, seed=3)
    with pytest.warns(UserWarning, match='corrupt'):
        rebuilt = _build(root)
    assert len(fake_training) == 2 and rebuilt['built'] is True
    assert open(weights).read() == 'weights 2'
    assert world_cache.load_world_models(root, seed=3)['root'] == folder
    # a missing file is corrupt too, and rebuilt as well
    os.remove(weights)
    with pytest.raises(world_cache.WorldModelsError, match='missing'):
        world_cache.check_world_models(folder, 3)
    with pytest.warns(UserWarning, match='missing'):
        _build(root)
    assert len(fake_training) == 3


def test_missing_or_other_version_names_the_command(tmp_path,
                                                     fake_training):
    root = str(tmp_path / 'cache')
    command = f'python tools/synthetic/train_world_models.py --out {root} ' \
        '--seed 7'
    with pytest.raises(world_cache.WorldModelsError,
                       match=re.escape(command)):
        world_cache.load_world_models(root, seed=7)
    folder = _build(root, seed=7)['root']
    manifest_path = osp.join(folder, 'world.json')
    manifest = json.load(open(manifest_path))
    manifest.update(generator_version=GENERATOR_VERSION - 1)
    json.dump(manifest, open(manifest_path, 'w'))
    with pytest.raises(world_cache.WorldModelsError,
                       match=rf'generator version {GENERATOR_VERSION - 1}.*'
                       + re.escape(command)):
        world_cache.load_world_models(root, seed=7)
    # an incomplete folder (no world.json: a killed build)
    os.remove(manifest_path)
    with pytest.raises(world_cache.WorldModelsError,
                       match='incomplete.*' + re.escape(command)):
        world_cache.load_world_models(root, seed=7)
    # a cache of another version sits under another name: named in the error
    os.rename(folder, osp.join(root, 'world-v0-seed7'))
    with pytest.raises(world_cache.WorldModelsError,
                       match=r"world-v0-seed7.*" + re.escape(command)):
        world_cache.load_world_models(root, seed=7)


def test_world_models_stage(tmp_path, fake_training):
    """The stage reuses the cache and copies the models to its outputs."""
    from qaclims_mm.pipeline import PIPELINE_STAGES, StageContext
    from qaclims_mm.pipeline.stages.world import WorldModelsStage
    root = str(tmp_path / 'cache')
    models = _build(root)
    assert PIPELINE_STAGES.get('WorldModelsStage') is WorldModelsStage
    out = tmp_path / 'work'
    stage = WorldModelsStage(
        'world', outputs=dict(vqa=str(out / 'world' / 'vqa'),
                              clip=str(out / 'world' / 'clip')),
        cache_root=root, seed=3, with_clip=False)
    metrics = stage.run(StageContext(work_dir=str(out),
                                     stage_dir=str(out / 'world'),
                                     progress=False))
    assert len(fake_training) == 1 and metrics['built'] is False
    assert metrics['vqa_fg_acc'] == 0.9 and metrics['vqa_image_size'] == 32
    assert open(out / 'world' / 'vqa' / 'model.safetensors').read() == \
        open(osp.join(models['vqa'], 'model.safetensors')).read()
    assert stage.settings()['generator_version'] == GENERATOR_VERSION
    # outputs inside the cache would be wiped by the runner: refused
    with pytest.raises(ValueError, match='overlaps the world-model cache'):
        WorldModelsStage('world', outputs=dict(
            vqa=osp.join(models['root'], 'vqa'), clip=str(out / 'c')),
            cache_root=root, seed=3)


def test_tool_trains_then_reuses(tmp_path, capsys, fake_training):
    import importlib.util
    repo = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
    spec = importlib.util.spec_from_file_location(
        'train_world_models',
        osp.join(repo, 'tools', 'synthetic', 'train_world_models.py'))
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    assert tool.parse_args([]).out == 'data/pretrained/synthetic'
    root = str(tmp_path / 'cache')
    argv = ['--out', root, '--seed', '3', '--no-clip', '--no-progress']
    tool.main(argv)
    assert 'trained' in capsys.readouterr().out
    tool.main(argv)
    text = capsys.readouterr().out
    assert len(fake_training) == 1
    assert 'reused' in text and '"vqa_fg_acc": 0.9' in text
    assert '--image-size 32' in text
