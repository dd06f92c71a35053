"""qaclims-mm: QA-CLIMS weakly supervised semantic segmentation for OpenMMLab.

Install with ``bash tools/install.sh`` (it pins torch, builds mmcv with its ops and
handles the traps of this stack); ``pip install -e .`` alone only links the package.
"""
import os.path as osp

from setuptools import find_packages, setup


def read_version() -> str:
    scope: dict = {}
    with open(osp.join(osp.dirname(__file__), 'qaclims_mm', 'version.py')) as f:
        exec(f.read(), scope)
    return scope['__version__']


def read_requirements(name: str) -> list:
    path = osp.join(osp.dirname(__file__), 'requirements', name)
    with open(path) as f:
        return [line.split('#')[0].strip() for line in f
                if line.split('#')[0].strip()]


setup(
    name='qaclims-mm',
    version=read_version(),
    description='QA-CLIMS weakly supervised semantic segmentation as '
    'MMSegmentation / MMPretrain / MMEngine components',
    long_description=open(osp.join(osp.dirname(__file__), 'README.md')).read(),
    long_description_content_type='text/markdown',
    packages=find_packages(include=['qaclims_mm', 'qaclims_mm.*']),
    python_requires='>=3.9',
    install_requires=read_requirements('runtime.txt') + ['mmcv==2.1.0', 'torch'],
    extras_require={
        'tests': read_requirements('tests.txt'),
        'crf': read_requirements('crf.txt'),
    },
    license='Apache-2.0',
    zip_safe=False,
)
