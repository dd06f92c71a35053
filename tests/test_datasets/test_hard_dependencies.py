"""Hard dependencies are imported, never skipped: a broken install fails."""
import glob
import os.path as osp
import re

TESTS = osp.dirname(osp.dirname(osp.abspath(__file__)))

#: Packages the project cannot work without (requirements/runtime.txt).
HARD = ('torch', 'numpy', 'mmengine', 'mmcv', 'mmseg', 'mmpretrain', 'cv2',
        'PIL')


def test_no_importorskip_of_a_hard_dependency():
    pattern = re.compile(r'importorskip\(\s*[\'"](%s)(\.[\w.]+)?[\'"]' %
                         '|'.join(re.escape(h) for h in HARD))
    offenders = []
    for path in glob.glob(osp.join(TESTS, '**', '*.py'), recursive=True):
        with open(path, encoding='utf-8') as f:
            for no, line in enumerate(f, 1):
                if pattern.search(line):
                    offenders.append(f'{osp.relpath(path, TESTS)}:{no}: '
                                     f'{line.strip()}')
    assert not offenders, 'import hard dependencies, do not skip:\n' + \
        '\n'.join(offenders)


def test_mmseg_is_importable():
    import mmseg.datasets  # noqa: F401
    import mmseg.evaluation  # noqa: F401
