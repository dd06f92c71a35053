"""The QAPE stage API that tools/qape.py fronts."""
import pytest

from qaclims_mm.qape.stage import load_question_cfg, make_qa_corpus


def test_sources_are_exclusive_and_engine_checked(tmp_path):
    with pytest.raises(ValueError, match='either a config or img_dir'):
        make_qa_corpus(str(tmp_path), 'model', config='c.py', img_dir='x')
    with pytest.raises(ValueError, match='either a config or img_dir'):
        make_qa_corpus(str(tmp_path), 'model')
    with pytest.raises(ValueError, match="engine must be one of"):
        make_qa_corpus(str(tmp_path), 'model', engine='gpt', config='c.py')


def test_question_configs(tmp_path):
    assert load_question_cfg(None) is None
    py = tmp_path / 'q.py'
    py.write_text("questions = dict(fg=['what {} is this?'], bg=[])\n")
    assert load_question_cfg(str(py))['fg'] == ['what {} is this?']
    with pytest.raises(FileNotFoundError, match='nowhere.json'):
        load_question_cfg(str(tmp_path / 'nowhere.json'))
