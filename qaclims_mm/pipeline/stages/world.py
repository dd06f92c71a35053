"""The world-models stage: the tiny VQA and CLIP of the synthetic world.

:func:`~qaclims_mm.synthetic.world.cache.build_world_models` trains them (a few
minutes on CPU) or reuses the cache ``<cache_root>/world-v<generator
version>-seed<seed>/``, with the **official** QAPE question templates of
:mod:`qaclims_mm.qape.questions`. The stage then copies the cached model
folders to its declared outputs: the runner wipes the outputs of a stage it
re-runs, so the outputs must not be the cache itself (that would throw the
cache away on every fresh work dir).
"""
import os
import os.path as osp
import shutil
from typing import Any, Dict, Optional

from ..base import PIPELINE_STAGES, BaseStage, StageContext


def _copy_tree(src: str, dst: str) -> None:
    """Copy folder ``src`` to ``dst`` through a temporary sibling."""
    tmp = f'{dst}.tmp-{os.getpid()}'
    if osp.isdir(tmp):
        shutil.rmtree(tmp)
    shutil.copytree(src, tmp)
    if osp.isdir(dst):
        shutil.rmtree(dst)
    os.rename(tmp, dst)


@PIPELINE_STAGES.register_module()
class WorldModelsStage(BaseStage):
    """Train or reuse the synthetic world's VQA and CLIP.

    No inputs. Outputs: ``vqa`` (a Hugging Face BLIP VQA folder for
    ``QAPEStage``; run it with ``image_size`` = the metric
    ``vqa_image_size``, the model's native size) and ``clip`` (the world
    CLIP folder: open_clip ``local-dir`` files, ``weights.pth``,
    ``ovseg.pth``). Both are copies of the cache; put them in the work dir.

    Metrics: the held-out accuracies recorded in the cache's ``world.json``
    (``vqa_fg_acc``, ``vqa_bg_acc``, chance and image-blind baselines,
    ``clip_*``), ``vqa_image_size`` and ``built`` (trained now or reused).

    Args:
        cache_root (str): The cache folder (relative paths are relative to
            the working directory, like ``files``). Defaults to
            ``'data/pretrained/synthetic'``.
        seed (int): World seed. Defaults to 0.
        with_clip (bool): Also train the CLIP. Defaults to True.
        preset (str): ``'full'`` (the tool's models) or ``'test'`` (a small
            world and short schedules, for the pipeline's tests; cached in
            ``<cache_root>/test-preset``). Defaults to ``'full'``.
    """

    run_on = 'rank0'
    required_outputs = ('vqa', 'clip')

    def __init__(self, name: str, inputs: Optional[Dict[str, str]] = None,
                 outputs: Optional[Dict[str, str]] = None,
                 cache_root: str = 'data/pretrained/synthetic', seed: int = 0,
                 with_clip: bool = True, preset: str = 'full',
                 **params) -> None:
        from ...synthetic.world.cache import (WORLD_PRESETS, preset_kwargs,
                                              world_dir_name)
        if preset not in WORLD_PRESETS:
            raise KeyError(f'stage {name!r}: preset must be one of '
                           f'{list(WORLD_PRESETS)}, got {preset!r}')
        if preset != 'full':
            cache_root = osp.join(cache_root, f'{preset}-preset')
        super().__init__(name, inputs, outputs, cache_root=cache_root,
                         seed=seed, with_clip=with_clip, preset=preset,
                         **params)
        self._preset_kwargs = preset_kwargs(preset)
        cache_dir = osp.abspath(osp.join(cache_root, world_dir_name(seed)))
        for key, path in self.outputs.items():
            path = osp.abspath(path)
            if path == cache_dir or path.startswith(cache_dir + os.sep) \
                    or cache_dir.startswith(path + os.sep):
                raise ValueError(
                    f'stage {name!r}: output {key!r} ({path}) overlaps the '
                    f'world-model cache {cache_dir}; the runner wipes the '
                    f'outputs of a stage it re-runs, so declare work-dir '
                    f'paths (the stage copies the cached models there)')

    def settings(self) -> Dict[str, Any]:
        from ...synthetic import GENERATOR_VERSION
        return dict(super().settings(), generator_version=GENERATOR_VERSION)

    def run(self, ctx: StageContext) -> Dict[str, Any]:
        from ...qape.questions import BG_QUESTIONS, FG_QUESTIONS
        from ...synthetic.world.cache import build_world_models
        p = self.params
        log = ctx.logger.info if ctx.logger is not None else print
        models = build_world_models(
            p['cache_root'], p['seed'], progress=ctx.progress,
            fg_templates=FG_QUESTIONS, bg_templates=BG_QUESTIONS,
            with_clip=p['with_clip'], log=log, **self._preset_kwargs)
        _copy_tree(models['vqa'], self.outputs['vqa'])
        if models['clip'] is not None:
            _copy_tree(models['clip'], self.outputs['clip'])
        else:
            os.makedirs(self.outputs['clip'], exist_ok=True)
        metrics = {k: v for k, v in models['metrics'].items()
                   if isinstance(v, (int, float)) or v is None}
        metrics.update(vqa_image_size=models['vqa_image_size'],
                       built=bool(models['built']))
        return metrics

    def headline(self, metrics: Dict[str, Any]) -> Dict[str, Any]:
        keys = ('vqa_fg_acc', 'vqa_bg_acc', 'clip_object_acc',
                'clip_scene_acc')
        return {k: metrics[k] for k in keys if k in metrics}
