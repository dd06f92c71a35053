"""The question-answer corpus: raw VQA answers, lemmas, post-processed texts.

Three on-disk forms exist:

1. **Shards** written by the VQA runner (``tools/qape.py``): JSON Lines, one
   (image, class) pair per line, raw answers in :class:`QuestionSet` order::

       {"img_id": "2007_000032", "class_name": "dining table",
        "fg": ["<6 raw answers>"], "bg": ["<10 raw answers>"]}

2. **The corpus file** (:func:`save_corpus` / :func:`load_corpus`), one
   versioned JSON document::

       {"format": "qaclims-mm/qa-corpus", "schema_version": 1,
        "meta": {"schema_version": 1, "created": "...", "questions": {...},
                 "model": "...", "generation": {...}, "versions": {...}, ...},
        "questions": {"fg": [templates], "bg": [templates]},
        "entries": {
          "2007_000032": {
            "aeroplane": {"fg_raw": [...], "bg_raw": [...],
                          "fg_answers": [...], "bg_answers": [...],
                          "fg_texts": [...], "bg_texts": [...]}}}}

   ``*_raw`` are the VQA answers, ``*_answers`` their lemmas (spec §2.2),
   ``fg_texts`` one post-processed string per FG question and ``bg_texts`` the
   de-duplicated BG strings, possibly empty (spec §2.4). One image per line,
   so the file diffs well.

3. **The official release** ``voc_vqa_{fg,bg}_blip.npy`` (spec §2.3): a
   pickled dict ``{img: {class: {'vqa': [(template, raw), ...],
   'answers': [lemma, ...]}}}``, read by :func:`import_official_npy` (only
   with ``trust_pickle=True``: unpickling can run code from the file) and
   written by :func:`export_official_npy`. Imports keep the authors' NLTK
   lemmas, so parity runs use their exact texts.
"""
import datetime
import json
import os.path as osp
import platform
from dataclasses import dataclass
from typing import (Dict, Iterable, Iterator, List, Optional, Sequence, Tuple)

import numpy as np

from ..utils.io import atomic_open, atomic_write_text
from ..utils.safe_load import load_pickled_npy
from .postprocess import lemmatize_answers, postprocess_bg, postprocess_fg
from .questions import QuestionSet

__all__ = [
    'CORPUS_SCHEMA_VERSION', 'CORPUS_FORMAT', 'QAEntry', 'QACorpus',
    'read_shard_records', 'build_corpus', 'save_corpus', 'load_corpus',
    'import_official_npy', 'export_official_npy'
]

CORPUS_SCHEMA_VERSION = 1
CORPUS_FORMAT = 'qaclims-mm/qa-corpus'
_RECORD_KEYS = ('img_id', 'class_name', 'fg', 'bg')
_ENTRY_KEYS = ('fg_raw', 'bg_raw', 'fg_answers', 'bg_answers', 'fg_texts',
               'bg_texts')


@dataclass(frozen=True)
class QAEntry:
    """The answers of one (image, class) pair.

    Args:
        fg_raw (tuple[str]): Raw FG answers, one per FG question.
        bg_raw (tuple[str]): Raw BG answers, one per BG question.
        fg_answers (tuple[str]): Lemmatised FG answers.
        bg_answers (tuple[str]): Lemmatised BG answers.
        fg_texts (tuple[str]): Post-processed FG strings, one per FG question.
        bg_texts (tuple[str]): Post-processed unique BG strings (may be
            empty: the losses then skip the pair).
    """
    fg_raw: Tuple[str, ...]
    bg_raw: Tuple[str, ...]
    fg_answers: Tuple[str, ...]
    bg_answers: Tuple[str, ...]
    fg_texts: Tuple[str, ...]
    bg_texts: Tuple[str, ...]

    def to_dict(self) -> Dict[str, List[str]]:
        return {k: list(getattr(self, k)) for k in _ENTRY_KEYS}


def make_entry(class_name: str,
               fg_raw: Sequence[str],
               bg_raw: Sequence[str],
               fg_answers: Optional[Sequence[str]] = None,
               bg_answers: Optional[Sequence[str]] = None) -> QAEntry:
    """Lemmatise (unless lemmas are given) and post-process one pair.

    Args:
        class_name (str): The class asked about.
        fg_raw (Sequence[str]): Raw FG answers.
        bg_raw (Sequence[str]): Raw BG answers.
        fg_answers (Sequence[str], optional): Lemmas to use instead of ours
            (e.g. the official NLTK ones). Defaults to None.
        bg_answers (Sequence[str], optional): Same for BG. Defaults to None.

    Returns:
        QAEntry: The complete entry.
    """
    fg_answers = (lemmatize_answers(fg_raw)
                  if fg_answers is None else list(fg_answers))
    bg_answers = (lemmatize_answers(bg_raw)
                  if bg_answers is None else list(bg_answers))
    return QAEntry(
        fg_raw=tuple(fg_raw),
        bg_raw=tuple(bg_raw),
        fg_answers=tuple(fg_answers),
        bg_answers=tuple(bg_answers),
        fg_texts=tuple(postprocess_fg(fg_answers, class_name)),
        bg_texts=tuple(postprocess_bg(bg_answers, class_name)))


def _library_versions() -> Dict[str, str]:
    versions = {'python': platform.python_version(), 'numpy': np.__version__}
    try:
        from ..version import __version__
        versions['qaclims_mm'] = __version__
    except ImportError:  # pragma: no cover
        pass
    try:
        from importlib.metadata import version
        versions['lemminflect'] = version('lemminflect')
    except Exception:  # pragma: no cover - metadata missing
        pass
    return versions


def default_meta(question_set: QuestionSet,
                 meta: Optional[dict] = None) -> dict:
    """Provenance of a corpus: schema, questions, creation time, versions.

    Args:
        question_set (QuestionSet): The questions asked.
        meta (dict, optional): Caller's entries (``model``, ``generation``,
            ``source``, ...); they override the defaults except
            ``schema_version`` and ``questions``. Defaults to None.

    Returns:
        dict: The merged, JSON-serialisable meta.
    """
    out = dict(
        created=datetime.datetime.now(datetime.timezone.utc).isoformat(
            timespec='seconds'),
        versions=_library_versions(),
        lemmatizer='lemminflect (single-word answers, NLTK-WordNet-like)')
    out.update(meta or {})
    out['schema_version'] = CORPUS_SCHEMA_VERSION
    out['questions'] = question_set.to_dict()
    return out


class QACorpus:
    """All (image, class) answer entries plus the questions and provenance.

    Args:
        entries (dict[str, dict[str, QAEntry]]): ``entries[img_id][class]``.
        questions (QuestionSet): The questions the answers reply to.
        meta (dict, optional): Provenance (see :func:`default_meta`).
            Defaults to :func:`default_meta` of ``questions``.
    """

    def __init__(self,
                 entries: Dict[str, Dict[str, QAEntry]],
                 questions: QuestionSet,
                 meta: Optional[dict] = None) -> None:
        self.entries = entries
        self.questions = questions
        self.meta = meta if meta is not None else default_meta(questions)

    def __len__(self) -> int:
        """The number of (image, class) pairs."""
        return sum(len(v) for v in self.entries.values())

    def __contains__(self, key: Tuple[str, str]) -> bool:
        img_id, class_name = key
        return class_name in self.entries.get(img_id, {})

    def get(self, img_id: str, class_name: str) -> QAEntry:
        """The entry of a pair.

        Raises:
            KeyError: naming the image id and the class when absent.
        """
        try:
            return self.entries[img_id][class_name]
        except KeyError:
            raise KeyError(f'no QA entry for image {img_id!r}, class '
                           f'{class_name!r}') from None

    def pairs(self) -> Iterator[Tuple[str, str, QAEntry]]:
        """``(img_id, class_name, entry)`` sorted by image id then class."""
        for img_id in sorted(self.entries):
            per_img = self.entries[img_id]
            for class_name in sorted(per_img):
                yield img_id, class_name, per_img[class_name]

    @property
    def class_names(self) -> List[str]:
        """Sorted names of the classes that occur in the corpus."""
        return sorted({c for v in self.entries.values() for c in v})

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(images={len(self.entries)}, '
                f'pairs={len(self)}, fg_questions={len(self.questions.fg)}, '
                f'bg_questions={len(self.questions.bg)})')


def read_shard_records(paths: Sequence[str]) -> Iterator[dict]:
    """Yield the records of JSON-Lines shards, in file then line order.

    Blank lines are skipped. Shards are written atomically, so any malformed
    line is an error (not a tolerated truncation).

    Args:
        paths (Sequence[str]): Shard files.

    Yields:
        dict: One record with ``img_id``, ``class_name``, ``fg``, ``bg``.

    Raises:
        FileNotFoundError: naming a missing shard.
        ValueError: naming the file and line of a malformed record.
    """
    if isinstance(paths, str):
        paths = [paths]
    for path in paths:
        if not osp.isfile(path):
            raise FileNotFoundError(f'QA shard not found: {path}')
        with open(path, encoding='utf-8') as f:
            for lineno, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as e:
                    raise ValueError(f'{path}:{lineno}: malformed JSON record '
                                     f'({e.msg})') from None
                if not isinstance(record, dict):
                    raise ValueError(f'{path}:{lineno}: a record must be a '
                                     f'JSON object, got {line.strip()[:80]}')
                missing = [k for k in _RECORD_KEYS if k not in record]
                if missing:
                    raise ValueError(f'{path}:{lineno}: record lacks key(s) '
                                     f'{missing}')
                yield record


def _check_answers(answers, expected: int, kind: str, img_id: str,
                   class_name: str) -> List[str]:
    if not isinstance(answers, (list, tuple)) or not all(
            isinstance(a, str) for a in answers):
        raise ValueError(f'image {img_id!r}, class {class_name!r}: {kind} '
                         f'answers must be a list of strings, got {answers!r}')
    if len(answers) != expected:
        raise ValueError(f'image {img_id!r}, class {class_name!r}: '
                         f'{len(answers)} {kind} answers, expected {expected} '
                         f'(one per {kind.upper()} question)')
    return list(answers)


def build_corpus(records: Iterable[dict],
                 question_set: QuestionSet,
                 meta: Optional[dict] = None,
                 progress: bool = False) -> QACorpus:
    """Lemmatise and post-process shard records into a corpus.

    Args:
        records (Iterable[dict]): Records as in the shards (``img_id``,
            ``class_name``, ``fg``, ``bg``: raw answers in question order).
        question_set (QuestionSet): The questions the answers reply to.
        meta (dict, optional): Provenance to record (``model``,
            ``generation``, ...). Defaults to None.
        progress (bool): Show a progress bar. Defaults to False.

    Returns:
        QACorpus: The corpus.

    Raises:
        ValueError: on a duplicate (image, class) pair or a wrong answer
            count, naming the pair.
    """
    n_fg, n_bg = len(question_set.fg), len(question_set.bg)
    entries: Dict[str, Dict[str, QAEntry]] = {}
    if progress:
        from tqdm import tqdm
        records = tqdm(records, desc='building QA corpus', unit='pair')
    for i, rec in enumerate(records):
        missing = [k for k in _RECORD_KEYS if k not in rec]
        if missing:
            raise ValueError(f'record #{i} lacks key(s) {missing}: {rec!r}')
        img_id, class_name = str(rec['img_id']), str(rec['class_name'])
        per_img = entries.setdefault(img_id, {})
        if class_name in per_img:
            raise ValueError(f'duplicate record for image {img_id!r}, class '
                             f'{class_name!r}')
        fg = _check_answers(rec['fg'], n_fg, 'fg', img_id, class_name)
        bg = _check_answers(rec['bg'], n_bg, 'bg', img_id, class_name)
        per_img[class_name] = make_entry(class_name, fg, bg)
    return QACorpus(entries, question_set, default_meta(question_set, meta))


def save_corpus(path: str, corpus: QACorpus) -> None:
    """Write ``corpus`` as the versioned JSON document (atomically).

    Args:
        path (str): Output ``.json`` path.
        corpus (QACorpus): The corpus.
    """
    meta = dict(corpus.meta)
    meta['schema_version'] = CORPUS_SCHEMA_VERSION
    meta['questions'] = corpus.questions.to_dict()
    head = (f'{{"format": {json.dumps(CORPUS_FORMAT)}, '
            f'"schema_version": {CORPUS_SCHEMA_VERSION},\n'
            f'"meta": {json.dumps(meta, ensure_ascii=False, sort_keys=True)}'
            ',\n'
            f'"questions": {json.dumps(corpus.questions.to_dict())},\n'
            '"entries": {\n')
    lines = []
    for img_id in sorted(corpus.entries):
        per_img = corpus.entries[img_id]
        body = {c: per_img[c].to_dict() for c in sorted(per_img)}
        lines.append(f'{json.dumps(img_id)}: '
                     f'{json.dumps(body, ensure_ascii=False)}')
    atomic_write_text(path, head + ',\n'.join(lines) + '\n}}\n')


def load_corpus(path: str) -> QACorpus:
    """Read a corpus written by :func:`save_corpus`.

    Args:
        path (str): The corpus ``.json`` file.

    Returns:
        QACorpus: The corpus.

    Raises:
        FileNotFoundError: naming ``path`` when missing.
        ValueError: naming ``path`` (and the pair) on a wrong format, an
            unsupported schema version or inconsistent entries.
    """
    if not osp.isfile(path):
        raise FileNotFoundError(
            f'QA corpus not found: {path} (build it with tools/qape.py, or '
            'import the official npy files with '
            'tools/convert_official_vqa.py)')
    with open(path, encoding='utf-8') as f:
        try:
            doc = json.load(f)
        except json.JSONDecodeError as e:
            raise ValueError(f'{path}: not valid JSON ({e})') from None
    if not isinstance(doc, dict) or doc.get('format') != CORPUS_FORMAT:
        raise ValueError(f'{path}: not a QA corpus file (expected "format": '
                         f'"{CORPUS_FORMAT}")')
    version = doc.get('schema_version')
    if version != CORPUS_SCHEMA_VERSION:
        raise ValueError(f'{path}: unsupported corpus schema_version '
                         f'{version!r}; this code reads version '
                         f'{CORPUS_SCHEMA_VERSION}')
    try:
        questions = QuestionSet.from_dict(doc['questions'])
    except (KeyError, ValueError) as e:
        raise ValueError(f'{path}: bad "questions": {e}') from None
    n_fg, n_bg = len(questions.fg), len(questions.bg)
    entries: Dict[str, Dict[str, QAEntry]] = {}
    for img_id, per_img in doc.get('entries', {}).items():
        entries[img_id] = {}
        for class_name, e in per_img.items():
            where = f'{path}: image {img_id!r}, class {class_name!r}'
            missing = [k for k in _ENTRY_KEYS if k not in e]
            if missing:
                raise ValueError(f'{where}: entry lacks key(s) {missing}')
            for key, n in (('fg_raw', n_fg), ('fg_answers', n_fg),
                           ('fg_texts', n_fg), ('bg_raw', n_bg),
                           ('bg_answers', n_bg)):
                if len(e[key]) != n:
                    raise ValueError(f'{where}: {key} has {len(e[key])} '
                                     f'items, expected {n}')
            if len(e['bg_texts']) > n_bg:
                raise ValueError(f'{where}: bg_texts has more items than '
                                 f'BG questions ({n_bg})')
            entries[img_id][class_name] = QAEntry(
                **{k: tuple(e[k]) for k in _ENTRY_KEYS})
    return QACorpus(entries, questions, dict(doc.get('meta', {})))


# --------------------------------------------------------------------------
# The official release format (spec §2.3)
# --------------------------------------------------------------------------


def _load_official(path: str, trust_pickle: bool) -> dict:
    """Unpickle an official VQA npy (opt-in) and check its nesting."""
    if not osp.isfile(path):
        raise FileNotFoundError(
            f'official VQA file not found: {path} (the released '
            'vqa/voc_vqa_fg_blip.npy / voc_vqa_bg_blip.npy of QA-CLIMS)')
    converter = ('python tools/convert_official_vqa.py import --fg FG.npy '
                 '--bg BG.npy --corpus CORPUS.json --trust-pickle')
    # the official format is a pickled dict inside an npy file
    data = load_pickled_npy(path, trust_pickle, converter,
                            what='an official VQA npy')
    if not isinstance(data, dict) or not data:
        raise ValueError(f'{path}: expected a non-empty dict '
                         '{img: {class: {"vqa": ..., "answers": ...}}}, got '
                         f'{type(data).__name__}')
    for img_id, per_img in data.items():
        if not isinstance(per_img, dict):
            raise ValueError(
                f'{path}: image {img_id!r} maps to a '
                f'{type(per_img).__name__}, expected a dict '
                '{class: {"vqa": ..., "answers": ...}}')
    return data


def _official_answers(rec: dict, templates: Sequence[str], path: str,
                      img_id: str, class_name: str
                      ) -> Tuple[List[str], List[str]]:
    """Raw answers and lemmas of one record, in ``templates`` order.

    Every template is looked up wherever it sits in the record's ``vqa``
    list; other questions in the record are ignored.
    """
    where = f'{path}: image {img_id!r}, class {class_name!r}'
    try:
        vqa, lemmas = rec['vqa'], rec['answers']
    except (KeyError, TypeError, IndexError):
        raise ValueError(f'{where}: record needs "vqa" and "answers"') \
            from None
    shape_error = (f'{where}: "vqa" must be a list of (template, answer) '
                   'pairs and "answers" a list of strings')
    if not isinstance(vqa, (list, tuple)) or \
            not isinstance(lemmas, (list, tuple)):
        raise ValueError(f'{shape_error}; got {type(vqa).__name__} and '
                         f'{type(lemmas).__name__}')
    if len(vqa) != len(lemmas):
        raise ValueError(f'{where}: {len(vqa)} "vqa" items but '
                         f'{len(lemmas)} "answers"')
    try:
        position = {q: i for i, (q, _) in enumerate(vqa)}
    except (TypeError, ValueError) as e:
        raise ValueError(f'{shape_error} ({e})') from None
    raw, lem = [], []
    for t in templates:
        if t not in position:
            raise ValueError(f'{where}: question template {t!r} not found')
        raw.append(str(vqa[position[t]][1]))
        lem.append(str(lemmas[position[t]]))
    return raw, lem


def import_official_npy(fg_path: str,
                        bg_path: str,
                        question_set: Optional[QuestionSet] = None,
                        trust_pickle: bool = False) -> QACorpus:
    """Read the released ``voc_vqa_fg_blip.npy`` + ``voc_vqa_bg_blip.npy``.

    The authors' lemmatised answers are kept (not recomputed), so texts are
    identical to the official ones (BG order aside, see
    :func:`~qaclims_mm.qape.postprocess.postprocess_bg`).

    Args:
        fg_path (str): The FG npy (6 questions per pair).
        bg_path (str): The BG npy (10 questions per pair).
        question_set (QuestionSet, optional): Questions to take, located by
            template wherever they sit in every record; other questions in
            the files are ignored. Defaults to the official 6 FG + 10 BG
            templates in the official order (spec §2.1), as the official
            consumers look them up.
        trust_pickle (bool): The files are pickles, and unpickling can run
            code from them: pass True only for files you trust. Defaults to
            False (an error names the file and the converter).

    Returns:
        QACorpus: The corpus, with the source files in its meta.

    Raises:
        FileNotFoundError: naming a missing file.
        ValueError: naming the file (and pair) of a malformed file or record,
            a pair present in only one of the two files, or a file read
            without ``trust_pickle``.
    """
    fg_data = _load_official(fg_path, trust_pickle)
    bg_data = _load_official(bg_path, trust_pickle)
    if question_set is None:
        question_set = QuestionSet()  # the official templates and order
    fg_pairs = {(str(i), c) for i, v in fg_data.items() for c in v}
    bg_pairs = {(str(i), c) for i, v in bg_data.items() for c in v}
    if fg_pairs != bg_pairs:
        only = sorted(fg_pairs ^ bg_pairs)[0]
        side = fg_path if only in fg_pairs else bg_path
        raise ValueError(f'image {only[0]!r}, class {only[1]!r} is only in '
                         f'{side} ({len(fg_pairs ^ bg_pairs)} pairs differ '
                         f'between {fg_path} and {bg_path})')
    bg_by_id = {str(i): v for i, v in bg_data.items()}
    entries: Dict[str, Dict[str, QAEntry]] = {}
    for img_key, per_img in fg_data.items():
        img_id = str(img_key)
        entries[img_id] = {}
        for class_name, fg_rec in per_img.items():
            fg_raw, fg_lem = _official_answers(fg_rec, question_set.fg,
                                               fg_path, img_id, class_name)
            bg_raw, bg_lem = _official_answers(bg_by_id[img_id][class_name],
                                               question_set.bg, bg_path,
                                               img_id, class_name)
            entries[img_id][class_name] = make_entry(
                class_name, fg_raw, bg_raw, fg_answers=fg_lem,
                bg_answers=bg_lem)
    meta = default_meta(
        question_set,
        dict(model='BLIP ViT-B CapFilt-L VQA (official QA-CLIMS release)',
             source=dict(fg=osp.abspath(fg_path), bg=osp.abspath(bg_path)),
             lemmatizer='NLTK WordNet (official lemmas, imported)'))
    return QACorpus(entries, question_set, meta)


def _to_official(corpus: QACorpus, kind: str) -> dict:
    templates = corpus.questions.templates(kind)
    out: dict = {}
    for img_id, class_name, e in corpus.pairs():
        raw = e.fg_raw if kind == 'fg' else e.bg_raw
        lem = e.fg_answers if kind == 'fg' else e.bg_answers
        out.setdefault(img_id, {})[class_name] = {
            'vqa': [(t, a) for t, a in zip(templates, raw)],
            'answers': list(lem),
        }
    return out


def export_official_npy(corpus: QACorpus, fg_path: str,
                        bg_path: str) -> None:
    """Write ``corpus`` in the official npy format (atomically).

    The files load with ``np.load(path, allow_pickle=True).item()`` and feed
    the official ``gen_text_feats_cache.py`` / training code unchanged.

    Args:
        corpus (QACorpus): The corpus.
        fg_path (str): Output FG npy path (written as given, no suffix added).
        bg_path (str): Output BG npy path.
    """
    for kind, path in (('fg', fg_path), ('bg', bg_path)):
        with atomic_open(path, 'wb') as f:
            np.save(f, _to_official(corpus, kind), allow_pickle=True)
