"""QA corpus: shards, building, JSON round trip, official npy import/export."""
import json
import os.path as osp
import sys

import numpy as np
import pytest

from qaclims_mm.qape.corpus import (CORPUS_SCHEMA_VERSION, build_corpus,
                                    export_official_npy, import_official_npy,
                                    load_corpus, read_shard_records,
                                    save_corpus)
from qaclims_mm.qape.questions import (BG_QUESTIONS, FG_QUESTIONS,
                                       QuestionSet, build_question_set)

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
FG6 = ['jet', 'airliners', 'plane', 'jet', 'airplane', 'jets']
FG_OFFICIAL = FG6[:5] + ['jeans']
BG10 = ['sky', 'clouds', 'sky', 'runway', 'aeroplane', 'grass', 'trees',
        'airport', 'sky', 'aeroplane']


def _records():
    return [
        dict(img_id='2007_000032', class_name='aeroplane', fg=FG6, bg=BG10),
        dict(img_id='2007_000032', class_name='person', fg=['man'] * 6,
             bg=['person'] * 10),
        dict(img_id='2007_000039', class_name='tv monitor',
             fg=['computer monitor', 'screen', 'tvs', 'monitor', 'tv',
                 'television'],
             bg=['desk', 'wall', 'wall', 'desks', 'desk', 'office', 'room',
                 'office', 'office', 'office']),
    ]


def _write_shard(path, records, extra_lines=()):
    with open(path, 'w', encoding='utf-8') as f:
        for r in records:
            f.write(json.dumps(r) + '\n')
        for line in extra_lines:
            f.write(line + '\n')


def test_read_shards_in_order_and_errors(tmp_path):
    recs = _records()
    a, b = str(tmp_path / 'a.jsonl'), str(tmp_path / 'b.jsonl')
    _write_shard(a, recs[:2], extra_lines=[''])
    _write_shard(b, recs[2:])
    got = list(read_shard_records([a, b]))
    assert [(r['img_id'], r['class_name']) for r in got] == \
        [('2007_000032', 'aeroplane'), ('2007_000032', 'person'),
         ('2007_000039', 'tv monitor')]
    bad = str(tmp_path / 'bad.jsonl')
    _write_shard(bad, recs[:1], extra_lines=['{"img_id": "x", "class_'])
    with pytest.raises(ValueError, match=r'bad\.jsonl:2: malformed JSON'):
        list(read_shard_records([bad]))
    _write_shard(bad, [dict(img_id='x', class_name='cat', fg=[])])
    with pytest.raises(ValueError, match=r"bad\.jsonl:1: .*\['bg'\]"):
        list(read_shard_records([bad]))
    with pytest.raises(FileNotFoundError, match='nope.jsonl'):
        list(read_shard_records([str(tmp_path / 'nope.jsonl')]))


def test_build_corpus_values():
    corpus = build_corpus(_records(), build_question_set(),
                          meta=dict(model='tiny-blip'))
    assert len(corpus) == 3 and len(corpus.entries) == 2
    e = corpus.get('2007_000032', 'aeroplane')
    assert e.fg_raw == tuple(FG6)
    assert e.fg_answers == ('jet', 'airliner', 'plane', 'jet', 'airplane',
                            'jet')
    # 'airplane' contains no 'aeroplane' -> suffixed; no dedupe for FG
    assert e.fg_texts == ('jet aeroplane', 'airliner aeroplane',
                          'plane aeroplane', 'jet aeroplane',
                          'airplane aeroplane', 'jet aeroplane')
    assert e.bg_answers[1] == 'cloud'
    assert e.bg_texts == ('sky', 'cloud', 'runway', 'grass', 'tree',
                          'airport')
    assert corpus.get('2007_000032', 'person').bg_texts == ()
    tv = corpus.get('2007_000039', 'tv monitor')
    assert tv.fg_texts == ('computer monitor', 'screen tv monitor',
                           'tvs tv monitor', 'monitor', 'tv tv monitor',
                           'television tv monitor')
    assert tv.bg_texts == ('desk', 'wall', 'office', 'room')
    assert corpus.meta['model'] == 'tiny-blip'
    assert corpus.meta['schema_version'] == CORPUS_SCHEMA_VERSION
    assert corpus.meta['questions']['fg'] == list(FG_QUESTIONS)
    with pytest.raises(KeyError, match="'2007_000039'.*'cat'"):
        corpus.get('2007_000039', 'cat')


def test_build_corpus_errors():
    recs = _records()
    with pytest.raises(ValueError, match="duplicate .*'2007_000032'.*"
                       "'aeroplane'"):
        build_corpus(recs + recs[:1], build_question_set())
    short = dict(recs[2], bg=['wall'] * 9)
    with pytest.raises(ValueError, match="'2007_000039'.*'tv monitor'.*9 bg "
                       'answers, expected 10'):
        build_corpus([short], build_question_set())
    # a custom question set changes the expected count
    qs = build_question_set(dict(bg=['what is behind the {}?']))
    c = build_corpus([dict(recs[0], bg=['hangar'])], qs)
    assert c.get('2007_000032', 'aeroplane').bg_texts == ('hangar', )


def test_save_load_round_trip_and_schema_errors(tmp_path):
    corpus = build_corpus(_records(), build_question_set(),
                          meta=dict(model='tiny-blip',
                                    generation=dict(num_beams=3)))
    path = str(tmp_path / 'corpus.json')
    save_corpus(path, corpus)
    loaded = load_corpus(path)
    assert loaded.entries == corpus.entries
    assert loaded.questions == corpus.questions
    assert loaded.meta['generation'] == {'num_beams': 3}
    doc = json.load(open(path))
    assert doc['schema_version'] == CORPUS_SCHEMA_VERSION
    assert doc['entries']['2007_000032']['person']['bg_texts'] == []

    doc['schema_version'] = 99
    bad = str(tmp_path / 'v99.json')
    json.dump(doc, open(bad, 'w'))
    with pytest.raises(ValueError, match=r'v99\.json: unsupported corpus '
                       'schema_version 99'):
        load_corpus(bad)
    doc['schema_version'] = CORPUS_SCHEMA_VERSION
    del doc['entries']['2007_000039']['tv monitor']['fg_texts'][0]
    json.dump(doc, open(bad, 'w'))
    with pytest.raises(ValueError, match="'2007_000039'.*'tv monitor'.*"
                       'fg_texts has 5 items, expected 6'):
        load_corpus(bad)
    with pytest.raises(FileNotFoundError, match='missing.json'):
        load_corpus(str(tmp_path / 'missing.json'))


def _official_dicts():
    """An official-format pair of dicts, with NLTK-style lemmas."""
    fg = {
        '2007_000032': {
            'aeroplane': {
                'vqa': [(q, a) for q, a in zip(FG_QUESTIONS, FG_OFFICIAL)],
                # the released lemmas are used as given (here: 'jeans' ->
                # 'jean' as NLTK would, where our lemmatiser keeps 'jeans')
                'answers': ['jet', 'airliner', 'plane', 'jet', 'airplane',
                            'jean'],
            }
        },
        '2007_000039': {
            'tv monitor': {
                'vqa': [(q, 'monitor') for q in FG_QUESTIONS],
                'answers': ['monitor'] * 6,
            }
        },
    }
    # the BG file's questions in a different order: found by template
    bg_q = list(reversed(BG_QUESTIONS))
    bg_a = ['sky', 'clouds', 'sky', 'runway', 'aeroplane', 'grass', 'trees',
            'airport', 'sky', 'aeroplane']
    bg = {
        '2007_000032': {
            'aeroplane': {
                'vqa': [(q, a) for q, a in zip(bg_q, bg_a)],
                'answers': ['sky', 'cloud', 'sky', 'runway', 'aeroplane',
                            'grass', 'tree', 'airport', 'sky', 'aeroplane'],
            }
        },
        '2007_000039': {
            'tv monitor': {
                'vqa': [(q, 'desk') for q in bg_q],
                'answers': ['desk'] * 10,
            }
        },
    }
    return fg, bg


def test_official_npy_import_export_round_trip(tmp_path):
    fg, bg = _official_dicts()
    fg_path, bg_path = str(tmp_path / 'fg.npy'), str(tmp_path / 'bg.npy')
    np.save(fg_path, fg)
    np.save(bg_path, bg)
    corpus = import_official_npy(fg_path, bg_path, trust_pickle=True)
    # the official templates in the official order, whatever the file order
    assert corpus.questions.fg == FG_QUESTIONS
    assert corpus.questions.bg == BG_QUESTIONS
    e = corpus.get('2007_000032', 'aeroplane')
    assert e.fg_answers[-1] == 'jean'  # official lemma kept
    assert e.fg_texts[-1] == 'jean aeroplane'
    # BG answers taken in the official question order (the file's reversed)
    assert e.bg_texts == ('sky', 'airport', 'tree', 'grass', 'runway',
                          'cloud')
    assert corpus.get('2007_000039', 'tv monitor').fg_texts == \
        ('monitor', ) * 6
    assert corpus.meta['source']['fg'] == osp.abspath(fg_path)

    out_fg, out_bg = str(tmp_path / 'o_fg.npy'), str(tmp_path / 'o_bg.npy')
    export_official_npy(corpus, out_fg, out_bg)
    assert np.load(out_fg, allow_pickle=True).item() == fg
    # exported in the official order: the file's BG records reversed
    assert np.load(out_bg, allow_pickle=True).item() == {
        i: {c: {k: v[::-1] for k, v in r.items()} for c, r in per.items()}
        for i, per in bg.items()}

    # import with a chosen question set: answers picked by template
    qs = QuestionSet(fg=FG_QUESTIONS[::-1], bg=BG_QUESTIONS)
    c2 = import_official_npy(fg_path, bg_path, question_set=qs,
                             trust_pickle=True)
    assert c2.get('2007_000032', 'aeroplane').fg_raw == \
        tuple(FG_OFFICIAL[::-1])
    assert c2.get('2007_000032', 'aeroplane').bg_raw[0] == 'aeroplane'


def test_official_import_takes_official_questions_by_template(tmp_path):
    """FG templates shuffled and two unrelated questions interleaved: the
    official 6 FG + 10 BG questions are found wherever they sit, in the
    official order, and the unrelated ones are ignored (issue 10, item 2)."""
    order = [3, 0, 5, 1, 4, 2]
    extra = ['What colour is the {}?', 'How many {} are there?']
    fg_vqa = [(FG_QUESTIONS[i], f'fg{i}') for i in order]
    fg_vqa.insert(2, (extra[0], 'red'))
    fg_vqa.insert(5, (extra[1], 'two'))
    bg_vqa = [(q, f'bg{i}') for i, q in enumerate(BG_QUESTIONS)]
    bg_vqa.insert(0, (extra[1], 'three'))
    bg_vqa.insert(7, (extra[0], 'blue'))
    fg = {'2007_000032': {'aeroplane': {
        'vqa': fg_vqa, 'answers': [a for _, a in fg_vqa]}}}
    bg = {'2007_000032': {'aeroplane': {
        'vqa': bg_vqa, 'answers': [a for _, a in bg_vqa]}}}
    fg_path, bg_path = str(tmp_path / 'fg.npy'), str(tmp_path / 'bg.npy')
    np.save(fg_path, fg)
    np.save(bg_path, bg)
    corpus = import_official_npy(fg_path, bg_path, trust_pickle=True)
    assert corpus.questions.is_official
    e = corpus.get('2007_000032', 'aeroplane')
    assert e.fg_raw == tuple(f'fg{i}' for i in range(6))
    assert e.bg_raw == tuple(f'bg{i}' for i in range(10))
    assert e.fg_texts == tuple(f'fg{i} aeroplane' for i in range(6))
    assert e.bg_texts == tuple(f'bg{i}' for i in range(10))


def test_official_import_errors(tmp_path):
    fg, bg = _official_dicts()
    fg_path, bg_path = str(tmp_path / 'fg.npy'), str(tmp_path / 'bg.npy')
    np.save(fg_path, fg)
    del bg['2007_000039']
    np.save(bg_path, bg)
    with pytest.raises(ValueError, match=r"'2007_000039', class 'tv monitor' "
                       r'is only in .*fg\.npy'):
        import_official_npy(fg_path, bg_path, trust_pickle=True)
    fg2, bg2 = _official_dicts()
    fg2['2007_000039']['tv monitor']['vqa'][2] = ('What is it?', 'monitor')
    np.save(fg_path, fg2)
    np.save(bg_path, bg2)
    with pytest.raises(ValueError, match=r"fg\.npy: image '2007_000039', "
                       "class 'tv monitor': question template 'What is this "
                       r"\{\} also called\?' not found"):
        import_official_npy(fg_path, bg_path, trust_pickle=True)
    with pytest.raises(FileNotFoundError, match='absent.npy'):
        import_official_npy(str(tmp_path / 'absent.npy'), bg_path,
                            trust_pickle=True)


def test_convert_tool_both_directions(tmp_path):
    fg, bg = _official_dicts()
    fg_path, bg_path = str(tmp_path / 'fg.npy'), str(tmp_path / 'bg.npy')
    np.save(fg_path, fg)
    np.save(bg_path, bg)
    corpus_path = str(tmp_path / 'c.json')
    tool = osp.join(REPO, 'tools', 'convert_official_vqa.py')
    sys.path.insert(0, osp.dirname(tool))
    try:
        import convert_official_vqa
    finally:
        sys.path.pop(0)
    assert convert_official_vqa.main(['import', '--fg', fg_path, '--bg',
                                      bg_path, '--corpus', corpus_path,
                                      '--trust-pickle']) == 0
    assert len(load_corpus(corpus_path)) == 2
    out_fg, out_bg = str(tmp_path / 'x_fg.npy'), str(tmp_path / 'x_bg.npy')
    assert convert_official_vqa.main(['export', '--fg', out_fg, '--bg',
                                      out_bg, '--corpus', corpus_path]) == 0
    assert np.load(out_fg, allow_pickle=True).item() == fg
