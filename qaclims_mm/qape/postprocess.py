"""Answer lemmatisation and FG/BG post-processing (spec §2.2, §2.4).

Lemmatisation
-------------
The official VQA script passes every raw answer, *as a whole string*, to NLTK
``WordNetLemmatizer().lemmatize(answer)`` (noun POS). WordNet's index keys join
multi-word lemmas with underscores (``dining_table``), so a string containing a
space is never found and comes back unchanged: only single-word answers are
ever lemmatised. NLTK returns the *shortest* of the WordNet forms it finds
(``min(lemmas, key=len)``) and the word itself when it finds none.

We reproduce this offline with lemminflect's dictionary (no WordNet download):

* an answer containing whitespace (or empty) is returned unchanged, exactly as
  NLTK does;
* a single word is looked up with ``getLemma(word, upos='NOUN',
  lemmatize_oov=False)``; the shortest candidate wins (NLTK's tie rule); a word
  lemminflect does not know is returned unchanged (NLTK returns unknown words
  unchanged too; lemminflect's out-of-vocabulary rules would invent forms).

Expected agreement on our test cases (NLTK values from its documented
behaviour; NLTK cannot be run here):

==============  ===========  ================  =========
answer          NLTK         ours              agree
==============  ===========  ================  =========
trees           tree         tree              yes
buses           bus          bus               yes
children        child        child             yes
glasses         glass        glass             yes
leaves          leaf         leaf              yes
people          people       people            yes
grass           grass        grass             yes
passenger train (unchanged)  (unchanged)       yes
dining tables   (unchanged)  (unchanged)       yes
clothes         cloth        clothes           **no**
jeans           jean         jeans             **no**
tvs             tv           tvs               **no**
==============  ===========  ================  =========

The differences come from WordNet holding a shorter noun (``cloth``, ``jean``,
``tv``) that lemminflect does not relate to the plural. They are rare in BLIP
answers; for exact parity import the authors' released answers
(:func:`qaclims_mm.qape.corpus.import_official_npy`), which keep their NLTK
lemmas.

Post-processing
---------------
FG (official ``fg_qa_prompt``): each lemmatised answer that does not contain
any synonym of the class (:func:`class_synonyms`) as a *substring* gets
``' <class name>'`` appended: ``jet`` -> ``jet aeroplane``, ``passenger train``
is kept, ``coffee table`` is kept for ``dining table`` (synonym ``table``). No
de-duplication and no stop-word filtering, so there is one string per FG
question.

BG (official ``BG_VQA._process_vqa``): de-duplicate, then drop the answer equal
to the class name exactly; ``train station`` is kept for ``train``. The
official code de-duplicates with a Python ``set`` (arbitrary order); we keep
first-occurrence order so outputs are deterministic. This is harmless: the BG
loss is symmetric over the BG texts (spec §9.2 item 11). An empty result means
the pair has no BG text, and the losses skip it.
"""
import functools
from typing import List, Sequence

from ..datasets.class_names import class_synonyms

__all__ = [
    'lemmatize_answer', 'lemmatize_answers', 'postprocess_fg', 'postprocess_bg'
]


@functools.lru_cache(maxsize=None)
def _lemmatize_word(word: str) -> str:
    from lemminflect import getLemma
    lemmas = getLemma(word, upos='NOUN', lemmatize_oov=False)
    if not lemmas:
        return word
    # NLTK's rule: the shortest form; ties keep the first candidate
    return min(lemmas, key=len)


@functools.lru_cache(maxsize=None)
def lemmatize_answer(answer: str) -> str:
    """Lemmatise a whole answer as a noun, the way the official code does.

    Args:
        answer (str): A raw VQA answer (BLIP answers are lower-case).

    Returns:
        str: The lemma of a single-word answer (``'trees'`` -> ``'tree'``);
        an answer with whitespace, an empty one or an unknown word unchanged.
    """
    if not isinstance(answer, str):
        raise TypeError(f'an answer must be a string, got {answer!r}')
    if not answer or any(c.isspace() for c in answer):
        # WordNet has no entry with spaces: NLTK returns the string unchanged
        return answer
    return _lemmatize_word(answer)


def lemmatize_answers(answers: Sequence[str]) -> List[str]:
    """:func:`lemmatize_answer` applied to each answer, in order."""
    return [lemmatize_answer(a) for a in answers]


def postprocess_fg(lemmatized: Sequence[str], class_name: str) -> List[str]:
    """Make the FG text of each answer (spec §2.4).

    Args:
        lemmatized (Sequence[str]): The lemmatised FG answers, in question
            order.
        class_name (str): The class the questions were about.

    Returns:
        list[str]: One string per answer: the answer itself if it contains a
        synonym of the class, else ``f'{answer} {class_name}'``.
    """
    synonyms = class_synonyms(class_name)
    return [
        a if any(s in a for s in synonyms) else f'{a} {class_name}'
        for a in lemmatized
    ]


def postprocess_bg(lemmatized: Sequence[str], class_name: str) -> List[str]:
    """Make the BG text set of a pair (spec §2.4).

    Args:
        lemmatized (Sequence[str]): The lemmatised BG answers.
        class_name (str): The class the questions were about.

    Returns:
        list[str]: The unique answers in first-occurrence order (the official
        code uses an unordered set), without the one equal to ``class_name``.
        May be empty.
    """
    unique = dict.fromkeys(lemmatized)  # ordered de-duplication
    unique.pop(class_name, None)
    return list(unique)
