"""Refinement: CAMs -> pseudo masks (spec §6.3-§6.6). Core modules: no
``mmseg.models`` import."""
from .ir_label import (crf_threshold_label, label_palette, make_ir_label,
                       make_ir_labels)
from .pseudo_label import write_pseudo_labels
from .random_walk import (propagate_cams, rw_pseudo_label, rw_to_label,
                          transition_operator)

__all__ = [
    'make_ir_label', 'make_ir_labels', 'label_palette', 'crf_threshold_label',
    'write_pseudo_labels',
    'propagate_cams', 'rw_to_label',
    'rw_pseudo_label', 'transition_operator'
]
