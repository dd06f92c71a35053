"""Question templates, question sets, lemmatisation and post-processing."""
import pytest

from qaclims_mm.qape.postprocess import (lemmatize_answer, lemmatize_answers,
                                         postprocess_bg, postprocess_fg)
from qaclims_mm.qape.questions import (BG_QUESTIONS, FG_QUESTIONS,
                                       TEXT_PROMPT, QuestionSet,
                                       build_question_set)

SPEC_FG = [
    'What kind of {} is in the photo?',
    'What type of {} is in the photo?',
    'What is this {} also called?',
    'What is this {} usually called?',
    'What is another word for this {}?',
    'What is another name for this {}?',
]
SPEC_BG = [
    'what is above the {}?',
    'what is under the {}?',
    'what is behind the {}?',
    'what is around the {}?',
    'what is next to the {}?',
    'what is the left side of {}?',
    'what is the right side of {}?',
    'what scene is the {} in?',
    'what environment is the {} in?',
    'what place is the {} in?',
]


def test_official_templates_exact():
    assert list(FG_QUESTIONS) == SPEC_FG
    assert list(BG_QUESTIONS) == SPEC_BG
    assert TEXT_PROMPT == 'a photo of {}.'


def test_default_set_and_format():
    qs = build_question_set()
    assert qs.fg == tuple(SPEC_FG) and qs.bg == tuple(SPEC_BG)
    assert qs.is_official
    assert qs.format('fg', 'dining table')[0] == \
        'What kind of dining table is in the photo?'
    assert qs.format('bg', 'tv monitor')[5] == \
        'what is the left side of tv monitor?'
    assert len(qs.format('bg', 'cat')) == 10
    with pytest.raises(ValueError, match="'fg' or 'bg'"):
        qs.format('mid', 'cat')


def test_config_built_sets():
    qs = build_question_set(dict(bg=['what is behind the {}?'],
                                 extra_fg=['What brand is this {}?']))
    assert qs.fg == tuple(SPEC_FG) + ('What brand is this {}?', )
    assert qs.bg == ('what is behind the {}?', )
    assert not qs.is_official
    assert build_question_set(dict(fg='default')).fg == tuple(SPEC_FG)
    # round trip through a dict (how corpora record it)
    assert QuestionSet.from_dict(qs.to_dict()) == qs


@pytest.mark.parametrize('cfg, match', [
    (dict(fg=['What is this?']), r"fg\[0\].*'What is this\?'"),
    (dict(extra_bg=['what {} and {}?']), r"extra_bg\[0\].*and \{\}"),
    (dict(fg=['a {} {x}']), 'other braces'),
    (dict(bg=[]), 'bg: the question list is empty'),
    (dict(fg='official'), "'default'"),
    (dict(questions=['a {}']), r"unknown question-set config key\(s\) "
     r"\['questions'\]"),
    (dict(extra_fg=[SPEC_FG[0]]), 'duplicate template'),
])
def test_config_errors_name_key_and_template(cfg, match):
    with pytest.raises(ValueError, match=match):
        build_question_set(cfg)


@pytest.mark.parametrize('raw, lemma', [
    ('trees', 'tree'), ('buses', 'bus'), ('children', 'child'),
    ('glasses', 'glass'), ('leaves', 'leaf'), ('people', 'people'),
    ('grass', 'grass'), ('jet', 'jet'),
    # multi-word: WordNet has no entry with spaces -> unchanged
    ('passenger train', 'passenger train'), ('dining tables', 'dining tables'),
    ('', ''),
    # unknown words are left alone (no invented out-of-vocabulary lemmas)
    ('qwzxv', 'qwzxv'),
])
def test_lemmatize_answer(raw, lemma):
    assert lemmatize_answer(raw) == lemma


def test_lemmatize_answers_keeps_order():
    assert lemmatize_answers(['trees', 'big trees', 'cars']) == \
        ['tree', 'big trees', 'car']


def test_postprocess_fg_spec_examples():
    assert postprocess_fg(['jet', 'passenger train'], 'aeroplane') == \
        ['jet aeroplane', 'passenger train aeroplane']
    assert postprocess_fg(['passenger train', 'steam engine'], 'train') == \
        ['passenger train', 'steam engine train']
    # synonyms of the three special VOC classes are substrings too
    assert postprocess_fg(['coffee table', 'desk'], 'dining table') == \
        ['coffee table', 'desk dining table']
    assert postprocess_fg(['computer monitor', 'tv'], 'tv monitor') == \
        ['computer monitor', 'tv tv monitor']
    assert postprocess_fg(['plant', 'fern'], 'potted plant') == \
        ['plant', 'fern potted plant']
    # substring, not word: 'trains' contains 'train'
    assert postprocess_fg(['trains'], 'train') == ['trains']


def test_postprocess_fg_no_dedupe():
    out = postprocess_fg(['jet'] * 6, 'aeroplane')
    assert out == ['jet aeroplane'] * 6


def test_postprocess_bg():
    answers = ['sky', 'track', 'sky', 'train', 'train station', 'track']
    assert postprocess_bg(answers, 'train') == \
        ['sky', 'track', 'train station']
    # another class name is kept; only the exact class is dropped
    assert postprocess_bg(['person', 'horse', 'field'], 'horse') == \
        ['person', 'field']
    assert postprocess_bg(['cat', 'cat'], 'cat') == []
