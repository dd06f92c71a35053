"""Hard dependencies are imported, never skipped: a broken install fails.

Every test file is parsed and its syntax tree searched, so a call split over
several lines, an aliased ``pytest`` or a ``from pytest import importorskip``
is caught as well as the one-line form.
"""
import ast
import glob
import os.path as osp
from typing import Iterator, List, Optional

TESTS = osp.dirname(osp.dirname(osp.abspath(__file__)))

#: Packages the project cannot work without (requirements/runtime.txt).
HARD = ('torch', 'numpy', 'mmengine', 'mmcv', 'mmseg', 'mmpretrain', 'cv2',
        'PIL')

#: Exceptions whose handler skipping a hard import hides a broken install.
IMPORT_ERRORS = ('ImportError', 'ModuleNotFoundError')


#: The pytest functions that skip, by the names a file may import them as.
SKIPPERS = ('skip', 'skipif', 'importorskip')


def pytest_aliases(tree: ast.AST) -> dict:
    """``{local name: pytest name}`` of ``from pytest import x as y``."""
    aliases = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module in (
                'pytest', '_pytest.outcomes'):
            for alias in node.names:
                aliases[alias.asname or alias.name] = alias.name
    return aliases


def call_name(node: ast.Call, aliases: Optional[dict] = None) -> str:
    """``importorskip`` for ``pytest.importorskip(...)``,
    ``importorskip(...)`` or an imported alias of it; '' for calls of
    anything but a name/attribute."""
    func = node.func
    if isinstance(func, ast.Attribute):
        return func.attr
    if isinstance(func, ast.Name):
        return (aliases or {}).get(func.id, func.id)
    return ''


def first_arg(node: ast.Call, keyword: str) -> Optional[ast.AST]:
    """The first positional argument, or the ``keyword`` one."""
    if node.args:
        return node.args[0]
    return next((k.value for k in node.keywords if k.arg == keyword), None)


def hard_module(node: Optional[ast.AST]) -> Optional[str]:
    """The module named by a string constant, if it is a hard dependency."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        if node.value.split('.')[0] in HARD:
            return node.value
    return None


def skipping_calls(tree: ast.AST, aliases: dict) -> Iterator[ast.Call]:
    """Calls that skip a test: ``skip``, ``skipif``, ``importorskip``."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and call_name(node,
                                                    aliases) in SKIPPERS:
            yield node


def offences(tree: ast.AST) -> Iterator[tuple]:
    """``(line, what)`` for every skip of a hard dependency in ``tree``."""
    aliases = pytest_aliases(tree)
    for call in skipping_calls(tree, aliases):
        name = call_name(call, aliases)
        if name == 'importorskip':
            module = hard_module(first_arg(call, 'modname'))
            if module:
                yield call.lineno, f'importorskip({module!r})'
        elif name == 'skipif':
            # skipif(find_spec('mmseg') is None, ...) and the like
            for sub in ast.walk(call):
                if isinstance(sub, ast.Call) and call_name(sub) in (
                        'find_spec', 'find_loader', 'import_module'):
                    module = hard_module(first_arg(sub, 'name'))
                    if module:
                        yield call.lineno, f'skipif({call_name(sub)}(' \
                            f'{module!r}))'
    # try: import mmseg / except ImportError: pytest.skip(...)
    for node in ast.walk(tree):
        if not isinstance(node, ast.Try):
            continue
        imported = [
            alias.name if isinstance(stmt, ast.Import) else stmt.module
            for stmt in node.body
            if isinstance(stmt, (ast.Import, ast.ImportFrom))
            for alias in getattr(stmt, 'names', [])
        ]
        hard = [m for m in imported if m and m.split('.')[0] in HARD]
        for handler in node.handlers:
            caught = ast.unparse(handler.type) if handler.type else ''
            skips = [c for stmt in handler.body
                     for c in skipping_calls(stmt, aliases)
                     if call_name(c, aliases) == 'skip']
            if hard and skips and (not caught or any(
                    e in caught for e in IMPORT_ERRORS)):
                yield handler.lineno, f'skip on a failed import of {hard[0]}'


def find_offenders(paths: List[str]) -> List[str]:
    """``path:line: what`` for every offending skip in the given files."""
    found = []
    for path in sorted(paths):
        with open(path, encoding='utf-8') as f:
            tree = ast.parse(f.read(), filename=path)
        found += [f'{osp.relpath(path, TESTS)}:{line}: {what}'
                  for line, what in sorted(offences(tree))]
    return found


def test_no_skip_of_a_hard_dependency():
    paths = glob.glob(osp.join(TESTS, '**', '*.py'), recursive=True)
    assert len(paths) > 20
    offenders = find_offenders(paths)
    assert not offenders, 'import hard dependencies, do not skip:\n' + \
        '\n'.join(offenders)


def test_the_check_sees_every_form(tmp_path):
    """Planted offences, the multi-line ones included, are all found; skips
    of optional packages are not."""
    planted = tmp_path / 'test_planted.py'
    planted.write_text('''
import importlib.util
import pytest
from pytest import importorskip as skip_unless  # noqa

mmseg = pytest.importorskip(
    'mmseg.models'
)
cv2 = importorskip(modname='cv2')
open_clip = pytest.importorskip('open_clip')  # optional: fine
np = skip_unless('numpy', minversion='1.0')


@pytest.mark.skipif(
    importlib.util.find_spec(
        'mmpretrain') is None, reason='no mmpretrain')
def test_a():
    pass


@pytest.mark.skipif(importlib.util.find_spec('pydensecrf') is None,
                    reason='optional')
def test_b():
    pass


def test_c():
    try:
        from mmcv.ops import nms  # noqa
    except (ImportError, OSError):
        pytest.skip('no mmcv ops')
''')
    found = find_offenders([str(planted)])
    names = [f.split(': ', 1)[1] for f in found]
    assert names == [
        "importorskip('mmseg.models')", "importorskip('cv2')",
        "importorskip('numpy')", "skipif(find_spec('mmpretrain'))",
        'skip on a failed import of mmcv.ops'
    ], found
    lines = [int(f.split(':')[1]) for f in found]
    assert lines == [6, 9, 11, 14, 30], found


def test_mmseg_is_importable():
    import mmseg.datasets  # noqa: F401
    import mmseg.evaluation  # noqa: F401
