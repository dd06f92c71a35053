"""Refinement: CAMs -> pseudo masks (spec §6.3-§6.6).

Building blocks (``crf``, ``ir_label``, ``path_index``, ``random_walk``: core
modules, no ``mmseg.models`` import), the registered refiners
(``refiners``) and the stage APIs over folders (``stages``).
"""
from .ir_label import crf_threshold_label, make_ir_label
from .random_walk import (propagate_cams, rw_pseudo_label, rw_to_label,
                          transition_operator)
from .refiners import (REFINERS, BaseRefiner, CRFRefiner, IRLabelRefiner,
                       RandomWalkRefiner, ThresholdRefiner, build_refiner)
from .stages import (CAMLabelJob, make_ir_labels, make_pseudo_labels,
                     make_rw_labels, write_pseudo_labels)

__all__ = [
    'make_ir_label', 'crf_threshold_label', 'propagate_cams',
    'rw_to_label', 'rw_pseudo_label', 'transition_operator', 'REFINERS',
    'BaseRefiner', 'ThresholdRefiner', 'CRFRefiner', 'IRLabelRefiner',
    'RandomWalkRefiner', 'build_refiner', 'CAMLabelJob', 'make_pseudo_labels',
    'write_pseudo_labels', 'make_ir_labels', 'make_rw_labels'
]
