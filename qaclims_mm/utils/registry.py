"""Registries of qaclims_mm's own component kinds (bottom layer).

A registry lives below every module that builds from it, so that a hook can
build a refiner from its config without importing the stage layer that
implements it: the refiners register themselves when
:mod:`qaclims_mm.refine.refiners` is imported (``import qaclims_mm`` does;
``locations`` imports it on the first lookup otherwise).
"""
from mmengine.registry import Registry

#: Pseudo-label refiners (``REFINERS.build(dict(type='ThresholdRefiner'))``):
#: CAM file entries -> label map. See :mod:`qaclims_mm.refine.refiners`.
REFINERS = Registry('pseudo-label refiner', scope='mmseg',
                    locations=['qaclims_mm.refine.refiners'])

__all__ = ['REFINERS']
