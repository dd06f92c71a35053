"""QAPE: the question-answer corpus (spec §2). Core: no mmseg.models import."""
from .corpus import (CORPUS_SCHEMA_VERSION, QACorpus, QAEntry, build_corpus,
                     export_official_npy, import_official_npy, load_corpus,
                     read_shard_records, save_corpus)
from .postprocess import (lemmatize_answer, lemmatize_answers, postprocess_bg,
                          postprocess_fg)
from .engines import VQA_ENGINES, VQAEngine, build_vqa_engine
from .questions import (BG_QUESTIONS, FG_QUESTIONS, TEXT_PROMPT, QuestionSet,
                        build_question_set)
from .runner import (ImageItem, ImageReadError, check_settings,
                     items_from_dataset_config, items_from_files, list_shards,
                     merge_shards, run_qape)
from .text_cache import (build_prompt_text_cache, build_text_cache,
                         encode_texts, load_text_encoder)

__all__ = [
    'FG_QUESTIONS', 'BG_QUESTIONS', 'TEXT_PROMPT', 'QuestionSet',
    'build_question_set', 'lemmatize_answer', 'lemmatize_answers',
    'postprocess_fg', 'postprocess_bg', 'CORPUS_SCHEMA_VERSION', 'QAEntry',
    'QACorpus', 'read_shard_records', 'build_corpus', 'save_corpus',
    'load_corpus', 'import_official_npy', 'export_official_npy',
    'build_text_cache', 'build_prompt_text_cache', 'load_text_encoder',
    'encode_texts', 'VQA_ENGINES', 'VQAEngine',
    'build_vqa_engine', 'run_qape', 'ImageItem', 'ImageReadError',
    'items_from_files', 'items_from_dataset_config', 'merge_shards',
    'check_settings', 'list_shards'
]
