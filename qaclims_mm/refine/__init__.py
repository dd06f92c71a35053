"""Refinement: CAMs -> pseudo masks (spec §6.3-§6.6). Core modules: no
``mmseg.models`` import."""
from .crf import crf_from_labels, crf_from_probs, require_pydensecrf
from .ir_label import (crf_threshold_label, label_palette, make_ir_label,
                       make_ir_labels)
from .path_index import PathIndex, direction_paths, search_directions
from .pseudo_label import write_pseudo_labels
from .random_walk import (propagate_cams, rw_pseudo_label, rw_to_label,
                          transition_operator)

__all__ = [
    'crf_from_labels', 'crf_from_probs', 'require_pydensecrf',
    'make_ir_label', 'make_ir_labels', 'label_palette', 'crf_threshold_label',
    'write_pseudo_labels', 'PathIndex', 'search_directions', 'direction_paths',
    'propagate_cams', 'rw_to_label',
    'rw_pseudo_label', 'transition_operator'
]
