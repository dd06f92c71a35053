"""Models. Segmentors need ``mmseg.models`` (mmcv with its compiled ops); the
other modules (losses, heads, CAM arithmetic) import without it, so the method's
core stays usable on machines with only the light OpenMMLab packages."""
import warnings

from .data_preprocessor import WSSSDataPreProcessor
from .heads import CAMHead
from .losses import MultiLabelSoftMarginLoss

__all__ = ['WSSSDataPreProcessor', 'CAMHead', 'MultiLabelSoftMarginLoss']

try:
    import mmseg.models  # noqa: F401
except ImportError as e:  # e.g. mmcv-lite: mmseg.models imports mmcv.ops
    warnings.warn(
        f'qaclims_mm: mmseg.models cannot be imported ({e}); segmentors such '
        f'as CAMClassifier are not registered. Install the full stack with '
        f'tools/install.sh.')
else:
    from .segmentors import CAMClassifier  # noqa: F401
    __all__ += ['CAMClassifier']
