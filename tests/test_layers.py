"""The package's layers, enforced on every module's imports (issue 11).

A module may import from its own top-level subpackage and from the layers
below its own; siblings written ``a | b`` in one layer are independent (they
do not import each other; ``a : b`` would allow it). ``tools/`` and
``benchmarks/`` sit above all of it, and the package never imports them.

Every import statement counts, module-level or inside a function, so lazy
imports cannot hide a dependency. The violations that exist today are listed
in :data:`KNOWN_VIOLATIONS`: the test fails on any new one, and on a known
one that has disappeared, so that the list only shrinks as the refactor lands.
"""
import ast
import os
import os.path as osp
import subprocess
import sys
from typing import Dict, Iterator, List, Set, Tuple

import pytest

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
PACKAGE = 'qaclims_mm'

#: Bottom first. ``__root__`` is ``qaclims_mm/__init__.py`` (importing it
#: registers every component); ``testing`` may import anything.
LAYERS: Tuple[str, ...] = (
    'utils | structures | version',
    'datasets | models',
    'evaluation | engine',
    'refine | qape | synthetic',
    'pipeline',
    '__root__',
    'testing',
)

#: Top-level names the package must never import (they sit above it).
ABOVE_THE_PACKAGE = ('tools', 'benchmarks', 'tests', 'conftest')

#: Not loaded by ``import qaclims_mm`` (directly or through anything else).
NOT_LOADED_BY_IMPORT = ('qaclims_mm.testing', 'qaclims_mm.synthetic')

#: ``importer -> imported`` pairs that break the layers today. Remove an
#: entry when its import goes; never add one.
KNOWN_VIOLATIONS: Set[str] = set()


def layer_table(layers: Tuple[str, ...]) -> Dict[str, Tuple[int, bool]]:
    """``subpackage -> (layer index, independent of its siblings)``."""
    table = {}
    for index, layer in enumerate(layers):
        independent = ':' not in layer
        for name in layer.replace(':', '|').split('|'):
            table[name.strip()] = (index, independent)
    return table


def module_files(package_dir: str) -> Iterator[Tuple[str, str, bool]]:
    """``(module name, path, is a package __init__)`` of every module."""
    root = osp.dirname(package_dir)
    for folder, dirs, files in os.walk(package_dir):
        dirs[:] = sorted(d for d in dirs if d != '__pycache__')
        for file in sorted(files):
            if file.endswith('.py'):
                path = osp.join(folder, file)
                parts = osp.relpath(path, root)[:-3].split(os.sep)
                is_init = parts[-1] == '__init__'
                yield '.'.join(parts[:-1] if is_init else parts), path, is_init


def _is_module(root: str, name: str) -> bool:
    path = osp.join(root, *name.split('.'))
    return osp.isfile(path + '.py') or osp.isfile(
        osp.join(path, '__init__.py'))


def imports_of(module: str, source: str, is_init: bool,
               root: str) -> Set[str]:
    """Every module (of any package) that ``module``'s source imports.

    Relative imports are resolved against ``module``; ``from pkg import x``
    names ``pkg.x`` when that is a module under ``root`` and ``pkg``
    otherwise.
    """
    package = module if is_init else module.rpartition('.')[0]
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split('.')
                parts = parts[:len(parts) - node.level + 1]
                base = '.'.join(parts + ([node.module] if node.module else []))
            else:
                base = node.module
            for alias in node.names:
                full = f'{base}.{alias.name}'
                found.add(full if _is_module(root, full) else base)
    return found


def subpackage(module: str) -> str:
    """``qaclims_mm.models.heads.x`` -> ``models``; the root: ``__root__``."""
    parts = module.split('.')
    return parts[1] if len(parts) > 1 else '__root__'


def find_violations(package_dir: str,
                    layers: Tuple[str, ...]) -> Tuple[Set[str], List[str]]:
    """Layer violations (``'a -> b'``) and modules of no layer."""
    table = layer_table(layers)
    root = osp.dirname(package_dir)
    package = osp.basename(package_dir)
    violations, unplaced = set(), []
    for module, path, is_init in module_files(package_dir):
        src = subpackage(module)
        if src not in table:
            unplaced.append(module)
            continue
        with open(path, encoding='utf-8') as f:
            imported = imports_of(module, f.read(), is_init, root)
        for target in sorted(imported):
            top = target.split('.')[0]
            if top in ABOVE_THE_PACKAGE:
                violations.add(f'{module} -> {target}')
            if top != package:
                continue
            dst = subpackage(target)
            if dst == src:
                continue
            if dst not in table:
                unplaced.append(target)
                continue
            (src_layer, independent), (dst_layer, _) = table[src], table[dst]
            if dst_layer > src_layer or (dst_layer == src_layer
                                         and independent):
                violations.add(f'{module} -> {target}')
    return violations, sorted(set(unplaced))


def test_known_violations_are_well_formed():
    for entry in KNOWN_VIOLATIONS:
        importer, _, imported = entry.partition(' -> ')
        assert importer.startswith(PACKAGE) and imported, entry


def test_layers():
    violations, unplaced = find_violations(osp.join(REPO, PACKAGE), LAYERS)
    assert not unplaced, (
        f'subpackages in no layer: {unplaced}; add them to LAYERS in '
        f'{__file__}')
    new = sorted(violations - KNOWN_VIOLATIONS)
    gone = sorted(KNOWN_VIOLATIONS - violations)
    assert not new, ('imports that break the layers (a module may import '
                     'from its own subpackage and the layers below):\n  ' +
                     '\n  '.join(new))
    assert not gone, ('these known violations are gone; remove them from '
                      'KNOWN_VIOLATIONS:\n  ' + '\n  '.join(gone))


def test_checker_catches_upward_sibling_and_relative_imports(tmp_path):
    pkg = tmp_path / 'pkg'
    for folder in ('utils', 'low', 'low/sub', 'side', 'high'):
        (pkg / folder).mkdir(parents=True)
        (pkg / folder / '__init__.py').write_text('')
    (pkg / '__init__.py').write_text('from . import low, high\n')
    (pkg / 'utils' / 'io.py').write_text('import os\n')
    (pkg / 'high' / 'api.py').write_text('from ..low import sub\n')
    (pkg / 'low' / 'sub' / 'mod.py').write_text(
        'from ...utils.io import x\n'
        'def f():\n    from ...high.api import g\n'
        'import pkg.side\nimport tools.train\n')
    (pkg / 'side' / 'x.py').write_text('from .. import low\n')
    layers = ('utils', 'low | side', 'high', '__root__')
    violations, unplaced = find_violations(str(pkg), layers)
    assert violations == {
        'pkg.low.sub.mod -> pkg.high.api', 'pkg.low.sub.mod -> pkg.side',
        'pkg.low.sub.mod -> tools.train', 'pkg.side.x -> pkg.low'
    }
    assert unplaced == []
    allowed, _ = find_violations(str(pkg), ('utils', 'low : side', 'high',
                                            '__root__'))
    assert 'pkg.side.x -> pkg.low' not in allowed
    _, unplaced = find_violations(str(pkg), ('utils', 'low', 'high',
                                             '__root__'))
    assert unplaced == ['pkg.side', 'pkg.side.x']


@pytest.mark.parametrize('module', NOT_LOADED_BY_IMPORT)
def test_not_loaded_by_the_package(module):
    code = (f'import sys; import {PACKAGE}; '
            f'print(sorted(m for m in sys.modules '
            f'if m == {module!r} or m.startswith({module + "."!r})))')
    proc = subprocess.run([sys.executable, '-c', code], capture_output=True,
                          text=True, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip() == '[]', proc.stdout
