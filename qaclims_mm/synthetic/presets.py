"""Named sizes of the synthetic dataset (``make_synthetic_voc.py --preset``).

* ``test``: 24 train + 12 val + 24 aug-only images, long side 96-128 px;
  about a second. For unit and smoke tests (the defaults of
  :func:`~qaclims_mm.synthetic.make_synthetic_voc`).
* ``demo``: 240 train + 60 val + 240 aug-only images, long side 160-224 px;
  enough to train a small CAM classifier on CPU in a few minutes (the data of
  ``configs/pipelines/qaclims_synthetic-voc.py``, the main job).
"""
from typing import Dict

#: Preset name -> keyword arguments of ``make_synthetic_voc``.
PRESETS: Dict[str, Dict[str, int]] = {
    'test':
    dict(num_train=24, num_val=12, num_aug=24, min_long=96, max_long=128),
    'demo':
    dict(num_train=240, num_val=60, num_aug=240, min_long=160, max_long=224),
}


def preset_args(name: str) -> Dict[str, int]:
    """The ``make_synthetic_voc`` arguments of preset ``name`` (a copy).

    Args:
        name (str): One of :data:`PRESETS`.

    Returns:
        dict: ``num_train``, ``num_val``, ``num_aug``, ``min_long``,
        ``max_long``.

    Raises:
        KeyError: For an unknown preset (the message lists the known ones).
    """
    try:
        return dict(PRESETS[name])
    except KeyError:
        raise KeyError(f'unknown synthetic dataset preset {name!r}; expected '
                       f'one of {sorted(PRESETS)}') from None
