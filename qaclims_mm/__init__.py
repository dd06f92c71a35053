"""qaclims-mm: QA-CLIMS weakly supervised semantic segmentation for OpenMMLab.

Importing the package registers every component in the ``mmseg`` scope, so a
config only needs::

    custom_imports = dict(imports=['qaclims_mm'], allow_failed_imports=False)
"""
from .utils.env import setup_env

setup_env()

from . import (datasets, engine, evaluation, models,  # noqa: E402,F401
               pipeline, qape)
from .version import __version__  # noqa: E402

__all__ = ['__version__', 'setup_env']
