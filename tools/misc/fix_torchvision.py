"""Make ``import torchvision`` work next to a CPU-only torch, and only then.

The torchvision wheel on PyPI links its compiled ops (``_C.so``) against the CUDA
libraries of torch. Next to the CPU build of torch those ops cannot load, which
torchvision tolerates everywhere except in two ``torch.library.register_fake``
decorators of ``torchvision/_meta_registrations.py`` that, unlike all the others,
are not guarded by ``torchvision.extension._has_ops()``: the import then crashes
with ``RuntimeError: operator torchvision::nms does not exist``.

This script rewrites those two decorators into guarded ones. It does nothing when
``import torchvision`` already works (a GPU machine, a future fixed release), is
idempotent, and fails loudly if the file does not look as expected. After the fix
the models, transforms and the Python fallbacks work; compiled-only ops (and
``torchvision.io`` decoding) raise when called.
"""
import importlib.util
import os.path as osp
import subprocess
import sys

MARKER = '# qaclims-mm: guarded, see tools/misc/fix_torchvision.py'
UNGUARDED = ('torchvision::nms', 'torchvision::qnms')


def import_error() -> str:
    """Return the error text of ``import torchvision`` in a fresh interpreter."""
    proc = subprocess.run([sys.executable, '-c', 'import torchvision'],
                          capture_output=True, text=True)
    return '' if proc.returncode == 0 else proc.stderr.strip()


def patch(path: str) -> int:
    """Guard the unguarded fake registrations in ``path``; return the count."""
    with open(path, encoding='utf-8') as f:
        src = f.read()
    count = 0
    for op in UNGUARDED:
        old = f'@torch.library.register_fake("{op}")\n'
        new = (f'@(torch.library.register_fake("{op}") '
               f'if torchvision.extension._has_ops() else (lambda fn: fn))  '
               f'{MARKER}\n')
        if old in src:
            src = src.replace(old, new)
            count += 1
    if count:
        tmp = path + '.qaclims-tmp'
        with open(tmp, 'w', encoding='utf-8') as f:
            f.write(src)
        import os
        os.replace(tmp, path)
    return count


def main() -> int:
    err = import_error()
    if not err:
        print('[fix_torchvision] import torchvision works; nothing to do')
        return 0
    if 'does not exist' not in err:
        print(f'[fix_torchvision] import torchvision fails for another reason:\n{err}',
              file=sys.stderr)
        return 1
    spec = importlib.util.find_spec('torchvision')
    path = osp.join(osp.dirname(spec.origin), '_meta_registrations.py')
    n = patch(path)
    err = import_error()
    if err:
        print(f'[fix_torchvision] guarded {n} registration(s) in {path}, but the '
              f'import still fails:\n{err}', file=sys.stderr)
        return 1
    print(f'[fix_torchvision] compiled torchvision ops unavailable (CPU torch); '
          f'guarded {n} fake registration(s) in {path}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
