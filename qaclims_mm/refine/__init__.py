"""Refinement: CAMs -> pseudo masks (spec §6.3-§6.6)."""
from .crf import crf_from_labels, crf_from_probs, require_pydensecrf
from .ir_label import (crf_threshold_label, label_palette, make_ir_label,
                       make_ir_labels)
from .pseudo_label import write_pseudo_labels

__all__ = [
    'crf_from_labels', 'crf_from_probs', 'require_pydensecrf',
    'make_ir_label', 'make_ir_labels', 'label_palette', 'crf_threshold_label',
    'write_pseudo_labels'
]
