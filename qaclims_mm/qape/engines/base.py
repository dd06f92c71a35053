"""The VQA-engine interface of the QA corpus builder, and its registry.

An engine answers free-form questions about images. The corpus runner only
ever calls :meth:`VQAEngine.answer` (or the split form
:meth:`VQAEngine.preprocess` + :meth:`VQAEngine.answer_preprocessed`, which
lets data-loader workers decode and resize images while the model runs), so
any captioner or VLM fits behind it.

Engines are built from config dicts through :data:`VQA_ENGINES`::

    engine = build_vqa_engine(dict(
        type='BlipVQAEngine',
        model_path='checkpoints/blip-vqa-capfilt-large',
        device='cuda', dtype='fp16'))
"""
import os.path as osp
from abc import ABCMeta, abstractmethod
from typing import Any, Dict, List, Optional, Sequence

import torch
from mmengine.registry import Registry
from PIL import Image

#: Registry of VQA engines (``type`` = class name, or the short alias).
VQA_ENGINES = Registry('vqa engine', locations=['qaclims_mm.qape.engines'])

_DTYPES = {
    'fp32': torch.float32, 'float32': torch.float32,
    'fp16': torch.float16, 'float16': torch.float16, 'half': torch.float16,
    'bf16': torch.bfloat16, 'bfloat16': torch.bfloat16,
}


def resolve_dtype(dtype: Optional[str], device: torch.device) -> torch.dtype:
    """Parse a dtype option; ``None``/``'auto'`` = fp16 on CUDA, else fp32.

    Half precision on a CPU is refused: most CPU kernels lack it or are far
    slower than fp32.

    Args:
        dtype (str, optional): ``'fp32'``, ``'fp16'``, ``'bf16'`` (or the
            torch spellings), ``'auto'`` or None.
        device (torch.device): Where the model runs.

    Returns:
        torch.dtype: The weight/activation dtype.
    """
    if dtype is None or dtype == 'auto':
        return torch.float16 if device.type == 'cuda' else torch.float32
    if dtype not in _DTYPES:
        raise ValueError(f'unknown dtype {dtype!r}; use one of '
                         f'{sorted(set(_DTYPES))} or "auto"')
    resolved = _DTYPES[dtype]
    if device.type == 'cpu' and resolved != torch.float32:
        raise ValueError(f'dtype {dtype!r} is for GPUs; use fp32 on the CPU')
    return resolved


def dtype_name(dtype: torch.dtype) -> str:
    """``torch.float16`` -> ``'fp16'`` (the spelling stored in settings)."""
    return {torch.float32: 'fp32', torch.float16: 'fp16',
            torch.bfloat16: 'bf16'}[dtype]


def check_model_dir(model_path: str, what: str, hub_id: str) -> None:
    """Fail early, and helpfully, when a local model folder is missing.

    A path that does not exist locally may still be a hub id present in the
    local HF cache; that case is left to ``from_pretrained(...,
    local_files_only=True)``, whose failure the caller reports with
    :func:`missing_model_message`.
    """
    if not model_path:
        raise ValueError(f'no model path given for the {what}; '
                         + missing_model_message('', hub_id))
    looks_local = (osp.isabs(model_path) or model_path.startswith('.')
                   or model_path.count('/') != 1)
    if looks_local and not osp.isdir(model_path):
        raise FileNotFoundError(
            f'{what} not found: {model_path!r} is not a folder. '
            + missing_model_message(model_path, hub_id))


def model_reference(model_path: str) -> str:
    """How settings record a model: the absolute folder for a local model,
    the id otherwise (an existing HF cache entry)."""
    return osp.abspath(model_path) if osp.isdir(model_path) else model_path


def missing_model_message(model_path: str, hub_id: str) -> str:
    """How to provide a model when it is not on this machine."""
    return (f'Models are only loaded from a local folder or an existing '
            f'Hugging Face cache (no downloads). Download it on a machine '
            f'with internet access, e.g. `huggingface-cli download {hub_id} '
            f'--local-dir checkpoints/{hub_id.split("/")[-1]}`, copy the '
            f'folder here and pass it as the model path'
            + (f' (looked for {model_path!r}).' if model_path else '.'))


def check_question_lists(inputs: Sequence[Any],
                         questions: Sequence[Sequence[str]]) -> None:
    """Refuse a batch whose images and question lists differ in number.

    Args:
        inputs (Sequence): Images (or their preprocessed form).
        questions (Sequence[Sequence[str]]): One question list per image.

    Raises:
        ValueError: naming both counts.
    """
    if len(inputs) != len(questions):
        raise ValueError(f'{len(inputs)} images but {len(questions)} '
                         f'question lists')

class VQAEngine(metaclass=ABCMeta):
    """Answers a list of questions for each image of a batch.

    Subclasses implement :meth:`answer_preprocessed`, and usually
    :meth:`preprocess` (the default passes the PIL image through) and
    :meth:`answer_settings`.
    """

    def preprocess(self, image: Image.Image) -> Any:
        """Turn one RGB PIL image into the engine's input (picklable).

        Called in data-loader workers by the runner; the default keeps the
        PIL image.
        """
        return image

    @abstractmethod
    def answer_preprocessed(
            self, inputs: Sequence[Any],
            questions: Sequence[Sequence[str]]) -> List[List[str]]:
        """Answer ``questions[i]`` about the image behind ``inputs[i]``.

        Args:
            inputs (Sequence): Outputs of :meth:`preprocess`, one per image.
            questions (Sequence[Sequence[str]]): For each image, its questions
                (formatted, i.e. with the class name filled in).

        Returns:
            list[list[str]]: For each image, one raw answer per question.
        """

    def answer(self, images: Sequence[Image.Image],
               questions: Sequence[Sequence[str]]) -> List[List[str]]:
        """Answer ``questions[i]`` about ``images[i]`` (RGB PIL images).

        Returns:
            list[list[str]]: For each image, one raw answer per question, in
            the order of its questions.
        """
        check_question_lists(images, questions)
        return self.answer_preprocessed(
            [self.preprocess(img.convert('RGB')) for img in images], questions)

    def answer_settings(self) -> Dict[str, Any]:
        """Everything that changes the answers (model, resolution, decoding).

        The runner stores it and refuses to resume a run whose settings
        differ. Runtime-only options (device, batch size) are not included.
        """
        return dict(type=type(self).__name__)

    def runtime_settings(self) -> Dict[str, Any]:
        """Options that change speed but not answers (device, batch size)."""
        return {}



class LocalModelVQAEngine(VQAEngine):
    """An engine over a local model folder, on a device, in a dtype.

    Holds what the local-model engines share: the device / dtype choice
    (:meth:`_set_model_device`), the model part of :meth:`answer_settings`
    (type, model reference, dtype) and the device and question batch size of
    :meth:`runtime_settings`. Subclasses set ``batch_size`` and extend both
    settings dicts with their own entries.
    """

    model_path: str
    device: torch.device
    dtype: torch.dtype
    batch_size: int

    def _set_model_device(self, model_path: str, device: Optional[str],
                          dtype: Optional[str]) -> None:
        """Set ``model_path``, ``device`` (CUDA when available) and
        ``dtype`` (:func:`resolve_dtype`)."""
        self.model_path = model_path
        self.device = torch.device(
            device or ('cuda' if torch.cuda.is_available() else 'cpu'))
        self.dtype = resolve_dtype(dtype, self.device)

    def answer_settings(self) -> Dict[str, Any]:
        """Type, model reference and dtype; subclasses add theirs."""
        return dict(
            super().answer_settings(),
            model_path=model_reference(self.model_path),
            dtype=dtype_name(self.dtype))

    def runtime_settings(self) -> Dict[str, Any]:
        """Device and question batch size; subclasses add theirs."""
        return dict(device=str(self.device), batch_size=self.batch_size)

def build_vqa_engine(cfg: dict) -> VQAEngine:
    """Build an engine from a config dict (``type`` + constructor args).

    ``type`` may be a registered class name (``'BlipVQAEngine'``,
    ``'ImageTextToTextVQAEngine'``) or an alias (``'blip'``, ``'vlm'``).
    """
    if not isinstance(cfg, dict) or 'type' not in cfg:
        raise TypeError(f'a VQA engine config must be a dict with a "type" '
                        f'key, got {cfg!r}')
    # importing the modules registers the engines
    from . import blip, vlm  # noqa: F401
    engine = VQA_ENGINES.build(dict(cfg))
    return engine
