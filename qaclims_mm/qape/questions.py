"""The QAPE question templates and configurable question sets (spec §2.1).

Every (image, ground-truth class) pair is asked the foreground (FG) questions,
whose answers name the object more precisely ("jet" for aeroplane), and the
background (BG) questions, whose answers name what surrounds it ("sky",
"runway"). Templates hold one ``{}`` that the class name (with spaces, e.g.
``dining table``) replaces. The official strings are reproduced character for
character, including the lower-case BG questions and ``of {}`` without an
article in BG questions 6 and 7.

A :class:`QuestionSet` is what the VQA runner asks and what a corpus records;
question ablations are built from configs with :func:`build_question_set`::

    build_question_set(dict(fg='default', bg=['what is behind the {}?']))
    build_question_set(dict(extra_fg=['What brand is this {}?']))
"""
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple, Union

#: The 6 foreground templates, in the official order.
FG_QUESTIONS: Tuple[str, ...] = (
    'What kind of {} is in the photo?',
    'What type of {} is in the photo?',
    'What is this {} also called?',
    'What is this {} usually called?',
    'What is another word for this {}?',
    'What is another name for this {}?',
)

#: The 10 background templates (all lower-case), in the official order.
BG_QUESTIONS: Tuple[str, ...] = (
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
)

#: The CLIP prompt wrapped around every answer and class name (note the
#: period).
TEXT_PROMPT = 'a photo of {}.'

_KINDS = ('fg', 'bg')
_CFG_KEYS = ('fg', 'bg', 'extra_fg', 'extra_bg')


def check_template(template: str, where: str = 'template') -> str:
    """Check that ``template`` is a string with exactly one ``{}``.

    Args:
        template (str): A question template (or prompt).
        where (str): What to call it in the error (e.g. a config key).
            Defaults to 'template'.

    Returns:
        str: ``template`` unchanged.

    Raises:
        ValueError: if it is not a string, has no or several ``{}``, or has
            any other brace (which ``str.format`` would misread).
    """
    if not isinstance(template, str):
        raise ValueError(f'{where}: a question template must be a string, '
                         f'got {type(template).__name__} {template!r}')
    if template.count('{}') != 1 or '{' in template.replace('{}', '', 1) \
            or '}' in template.replace('{}', '', 1):
        raise ValueError(f'{where}: template {template!r} must contain '
                         'exactly one "{}" (the class-name slot) and no '
                         'other braces')
    return template


def _check_templates(templates: Sequence[str], where: str) -> Tuple[str, ...]:
    if isinstance(templates, str) or not isinstance(templates, Sequence):
        raise ValueError(f'{where}: expected a list of templates, got '
                         f'{templates!r}')
    out = tuple(check_template(t, f'{where}[{i}]')
                for i, t in enumerate(templates))
    if not out:
        raise ValueError(f'{where}: the question list is empty')
    seen = set()
    for t in out:
        if t in seen:
            # consumers locate answers by matching templates: keep them unique
            raise ValueError(f'{where}: duplicate template {t!r}')
        seen.add(t)
    return out


@dataclass(frozen=True)
class QuestionSet:
    """The FG and BG question templates asked for every (image, class) pair.

    Args:
        fg (tuple[str]): Foreground templates, in answer order.
        bg (tuple[str]): Background templates, in answer order.
    """
    fg: Tuple[str, ...] = FG_QUESTIONS
    bg: Tuple[str, ...] = BG_QUESTIONS

    def __post_init__(self) -> None:
        # normalise lists to tuples (hashable, immutable) and validate
        object.__setattr__(self, 'fg', _check_templates(self.fg, 'fg'))
        object.__setattr__(self, 'bg', _check_templates(self.bg, 'bg'))

    def templates(self, kind: str) -> Tuple[str, ...]:
        """The templates of ``kind`` (``'fg'`` or ``'bg'``)."""
        if kind not in _KINDS:
            raise ValueError(f"kind must be 'fg' or 'bg', got {kind!r}")
        return self.fg if kind == 'fg' else self.bg

    def format(self, kind: str, class_name: str) -> List[str]:
        """The questions of ``kind`` asked about ``class_name``.

        Args:
            kind (str): ``'fg'`` or ``'bg'``.
            class_name (str): The class name, e.g. ``'dining table'``.

        Returns:
            list[str]: One question per template, in order.
        """
        return [t.replace('{}', class_name) for t in self.templates(kind)]

    def to_dict(self) -> Dict[str, List[str]]:
        """``{'fg': [...], 'bg': [...]}`` (JSON-serialisable)."""
        return dict(fg=list(self.fg), bg=list(self.bg))

    @classmethod
    def from_dict(cls, d: Dict[str, Sequence[str]]) -> 'QuestionSet':
        """Inverse of :meth:`to_dict`.

        Raises:
            ValueError: if ``d`` lacks ``fg`` or ``bg`` or a template is bad.
        """
        if not isinstance(d, dict) or 'fg' not in d or 'bg' not in d:
            raise ValueError(f"a question set needs 'fg' and 'bg' lists, got "
                             f'{d!r}')
        return cls(fg=tuple(d['fg']), bg=tuple(d['bg']))

    @property
    def is_official(self) -> bool:
        """Whether this is the official 6 FG + 10 BG set, in order."""
        return self.fg == FG_QUESTIONS and self.bg == BG_QUESTIONS


def build_question_set(
        cfg: Optional[Union[dict, QuestionSet]] = None) -> QuestionSet:
    """Build a question set from a config dict.

    Args:
        cfg (dict | QuestionSet, optional): ``None`` gives the official set.
            Keys (all optional):

            - ``fg`` / ``bg``: a list of templates, or ``'default'`` for the
              official list;
            - ``extra_fg`` / ``extra_bg``: templates appended to the above.

            Each template must contain exactly one ``{}``. Defaults to None.

    Returns:
        QuestionSet: The validated set.

    Raises:
        ValueError: naming the config key and template that is invalid, or an
            unknown key.
    """
    if cfg is None:
        return QuestionSet()
    if isinstance(cfg, QuestionSet):
        return cfg
    if not isinstance(cfg, dict):
        raise ValueError(f'question-set config must be a dict, got {cfg!r}')
    unknown = sorted(set(cfg) - set(_CFG_KEYS))
    if unknown:
        raise ValueError(f'unknown question-set config key(s) {unknown}; '
                         f'expected some of {list(_CFG_KEYS)}')
    defaults = dict(fg=FG_QUESTIONS, bg=BG_QUESTIONS)
    lists = {}
    for kind in _KINDS:
        base = cfg.get(kind, 'default')
        if isinstance(base, str):
            if base != 'default':
                raise ValueError(f"{kind}: expected a list of templates or "
                                 f"'default', got {base!r}")
            base = defaults[kind]
        base = _check_templates(base, kind)
        extra = cfg.get(f'extra_{kind}', ())
        if extra:
            extra = _check_templates(extra, f'extra_{kind}')
        lists[kind] = tuple(base) + tuple(extra)
    return QuestionSet(fg=lists['fg'], bg=lists['bg'])
