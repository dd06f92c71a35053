"""Text-feature cache stages: a QA corpus (or the fixed CLIMS prompts) and a
local CLIP text tower -> ``<prefix>.safetensors`` + ``<prefix>.json``.

Thin wrappers over :func:`~qaclims_mm.qape.text_cache.build_text_cache` and
:func:`~qaclims_mm.qape.text_cache.build_prompt_text_cache` (what
``tools/build_text_cache.py`` runs). The ``cache`` output is the prefix
path; the index (``.json``) is written last, so its presence means the
cache is complete.
"""
import os.path as osp
from typing import Any, Dict, Optional

from ...datasets.class_names import get_classes
from ...qape.questions import TEXT_PROMPT
from ..base import PIPELINE_STAGES, StageContext, StageInputError
from .common import FunctionStage, default_device
from .qape import corpus_file

LOCAL_DIR_PREFIX = 'local-dir:'


def _clip_model(stage: str, clip: str,
                model_name: Optional[str]) -> Dict[str, Optional[str]]:
    """``model_name`` / ``pretrained`` of :func:`load_text_encoder` for the
    ``clip`` input: a folder is an open_clip ``local-dir:``, a file the
    weights of the architecture ``model_name``."""
    if osp.isdir(clip):
        return dict(model_name=LOCAL_DIR_PREFIX + clip, pretrained=None)
    if not model_name:
        raise ValueError(
            f'stage {stage!r}: input "clip" ({clip}) is a weights file; give '
            f'the open_clip architecture as model_name (e.g. '
            f'"ViT-L-14-quickgelu"), or point "clip" to a local-dir folder '
            f'with open_clip_config.json')
    return dict(model_name=model_name, pretrained=clip)


class _TextStage(FunctionStage):
    """Shared parts: the ``clip`` input, the ``cache`` prefix output."""

    run_on = 'rank0'
    required_outputs = ('cache', )
    runtime_params = ('device', )

    def num_classes(self) -> Optional[int]:
        return len(get_classes(self.params['classes']))

    def clip_model(self) -> Dict[str, Optional[str]]:
        """``model_name`` and ``pretrained`` for the text encoder."""
        return _clip_model(self.name, self.inputs['clip'],
                           self.params.get('model_name'))

    def check_inputs(self, ctx: StageContext) -> None:
        super().check_inputs(ctx)
        clip = self.inputs['clip']
        if osp.isdir(clip) and not osp.isfile(
                osp.join(clip, 'open_clip_config.json')):
            raise StageInputError(
                f'stage {self.name!r}: input "clip" ({clip}) is a folder '
                f'without open_clip_config.json (not an open_clip local-dir '
                f'model)')
        try:
            self.clip_model()
        except ValueError as e:
            raise StageInputError(str(e)) from e


@PIPELINE_STAGES.register_module()
class TextCacheStage(_TextStage):
    """Encode every unique text of a QA corpus once (spec §2.5).

    Inputs: ``corpus`` (the QAPE output folder or its ``corpus.json``),
    ``clip`` (an open_clip ``local-dir`` folder, or a weights file together
    with the param ``model_name``). Output: ``cache`` (prefix path).

    Metrics: ``num_texts`` (unique strings), ``num_pairs``, ``dim``.

    Args:
        model_name (str, optional): open_clip architecture when ``clip`` is
            a weights file (``'ViT-L-14-quickgelu'`` for OpenAI's ViT-L/14,
            the official text tower). Defaults to None.
        prompt (str): Defaults to ``'a photo of {}.'`` (official).
        classes (str): ``'voc'`` or ``'coco'``: rows of the class features.
            Defaults to ``'voc'``.
        batch_size (int): Texts per forward pass. Defaults to 256.
        device (str, optional): Defaults to the GPU, else the CPU.
    """
    required_inputs = ('corpus', 'clip')

    def __init__(self, name: str, inputs: Optional[Dict[str, str]] = None,
                 outputs: Optional[Dict[str, str]] = None,
                 model_name: Optional[str] = None, prompt: str = TEXT_PROMPT,
                 classes: str = 'voc', batch_size: int = 256,
                 device: Optional[str] = None, **params) -> None:
        super().__init__(name, inputs, outputs, model_name=model_name,
                         prompt=prompt, classes=classes,
                         batch_size=batch_size, device=device, **params)

    def check_inputs(self, ctx: StageContext) -> None:
        super().check_inputs(ctx)
        path = corpus_file(self.inputs['corpus'])
        if not osp.isfile(path):
            raise StageInputError(
                f'stage {self.name!r}: input "corpus" has no corpus file: '
                f'{path} (did the QAPE stage finish?)')

    def run(self, ctx: StageContext) -> Dict[str, Any]:
        from ...qape.corpus import load_corpus
        from ...qape.text_cache import build_text_cache
        p = self.params
        corpus = load_corpus(corpus_file(self.inputs['corpus']))
        index = build_text_cache(
            corpus, out_prefix=self.outputs['cache'], prompt=p['prompt'],
            batch_size=p['batch_size'], device=default_device(p['device']),
            progress=ctx.progress, class_names=get_classes(p['classes']),
            **self.clip_model())
        num_pairs = sum(len(v) for v in index['pairs'].values())
        return dict(num_texts=len(index['strings']), num_pairs=num_pairs,
                    dim=int(index['dim']))


@PIPELINE_STAGES.register_module()
class PromptCacheStage(_TextStage):
    """The fixed CLIMS prompts (``a photo of {class}.``, ``person`` ->
    ``player``, and the dataset's background prompts), encoded once for the
    CLIMS config's ``PromptTextSource`` (``tools/build_text_cache.py
    --clims-prompts``).

    Inputs: ``clip`` (as :class:`TextCacheStage`). Output: ``cache``
    (prefix path).

    Metrics: ``num_class_prompts``, ``num_background_prompts``, ``dim``.

    Args:
        model_name (str, optional): As :class:`TextCacheStage`.
        classes (str): ``'voc'`` or ``'coco'``. Defaults to ``'voc'``.
        device (str, optional): Defaults to the GPU, else the CPU.
    """
    required_inputs = ('clip', )

    def __init__(self, name: str, inputs: Optional[Dict[str, str]] = None,
                 outputs: Optional[Dict[str, str]] = None,
                 model_name: Optional[str] = None, classes: str = 'voc',
                 device: Optional[str] = None, **params) -> None:
        super().__init__(name, inputs, outputs, model_name=model_name,
                         classes=classes, device=device, **params)

    def run(self, ctx: StageContext) -> Dict[str, Any]:
        from ...models.losses.clims_losses import (clims_background_prompts,
                                                   clims_class_prompts)
        from ...qape.text_cache import build_prompt_text_cache
        classes = get_classes(self.params['classes'])
        index = build_prompt_text_cache(
            out_prefix=self.outputs['cache'], class_names=classes,
            class_prompts=clims_class_prompts(classes),
            background_prompts=clims_background_prompts(
                self.params['classes']),
            device=default_device(self.params['device']),
            **self.clip_model())
        return dict(num_class_prompts=len(index['class_names']),
                    num_background_prompts=len(index['strings']),
                    dim=int(index['dim']))
