"""The synthetic-data stage: generate the synthetic VOC world and convert it
like the real VOC 2012 + SBD.

:func:`~qaclims_mm.synthetic.make_synthetic_voc` writes ``VOC2012/`` and
``SBD/`` into the parent of the ``data_root`` output, then
:func:`~qaclims_mm.datasets.converters.voc12.convert_voc12` (the
``voc12_wsss.py`` converter) adds ``cls_labels.json``, ``train_aug.txt`` and
``SegmentationClassAug/`` to ``data_root``. A record
``<data_root>/synthetic.json`` (preset, seed, counts) is written last: a
folder with that record for the same preset and seed is kept as it is; a
folder without it (a killed generation) is regenerated from scratch, so the
result is always byte-identical to an uninterrupted run.
"""
import json
import os.path as osp
from typing import Any, Dict, Optional

from ..base import PIPELINE_STAGES, StageContext
from .common import FunctionStage, write_json

#: The completion record inside ``data_root``.
RECORD_FILE = 'synthetic.json'


@PIPELINE_STAGES.register_module()
class SyntheticDataStage(FunctionStage):
    """Generate and convert the synthetic VOC dataset.

    No inputs. Output: ``data_root``, which must be a folder named
    ``VOC2012`` (its parent receives ``VOC2012/`` and ``SBD/``, nothing
    else there is touched).

    Metrics: ``num_images`` (all generated), ``num_train``, ``num_val``,
    ``num_train_aug``.

    Args:
        preset (str): ``'test'`` (24 train / 12 val / 24 aug-only images,
            seconds) or ``'demo'`` (240 / 60 / 240). Defaults to ``'demo'``.
        seed (int): Dataset seed. Defaults to 0.
    """

    run_on = 'rank0'
    required_outputs = ('data_root', )

    def __init__(self, name: str, inputs: Optional[Dict[str, str]] = None,
                 outputs: Optional[Dict[str, str]] = None,
                 preset: str = 'demo', seed: int = 0, **params) -> None:
        super().__init__(name, inputs, outputs, preset=preset, seed=seed,
                         **params)
        root = self.outputs['data_root'].rstrip('/\\')
        if osp.basename(root) != 'VOC2012':
            raise ValueError(
                f'stage {name!r}: output data_root must be a folder named '
                f'VOC2012 (the generator writes VOC2012/ and SBD/ into its '
                f'parent), got {self.outputs["data_root"]}')
        self.data_root = root

    def num_classes(self) -> Optional[int]:
        return 20  # the VOC classes

    def _record(self) -> Optional[Dict[str, Any]]:
        path = osp.join(self.data_root, RECORD_FILE)
        try:
            with open(path, encoding='utf-8') as f:
                return json.load(f)
        except (OSError, ValueError):
            return None

    def run(self, ctx: StageContext) -> Dict[str, Any]:
        from ...datasets.converters.voc12 import convert_voc12
        from ...synthetic import make_synthetic_voc, preset_args
        wanted = dict(preset=self.params['preset'], seed=self.params['seed'])
        record = self._record()
        if record is not None and record.get('settings') == wanted:
            return record['metrics']
        parent = osp.dirname(self.data_root)
        summary = make_synthetic_voc(parent, seed=self.params['seed'],
                                     progress=ctx.progress, overwrite=True,
                                     **preset_args(self.params['preset']))
        converted = convert_voc12(self.data_root,
                                  sbd_root=osp.join(parent, 'SBD'),
                                  progress=ctx.progress)
        metrics = dict(num_images=int(summary['num_images']),
                       num_train=converted['num_train'],
                       num_val=converted['num_val'],
                       num_train_aug=converted['num_train_aug'])
        write_json(osp.join(self.data_root, RECORD_FILE),
                   dict(settings=wanted, metrics=metrics))
        return metrics
