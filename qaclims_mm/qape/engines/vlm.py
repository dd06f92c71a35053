"""Instruction-following VLMs as VQA engines (transformers image-text-to-text).

Any model that ``AutoModelForImageTextToText`` + ``AutoProcessor`` load (LLaVA,
BLIP-2, InstructBLIP, Qwen-VL, ...) can answer the QAPE questions. Such models
write sentences unless told otherwise, so each question is wrapped in a
short-answer prompt (``'{question} Answer with a short phrase.'``) and the
reply is normalised (stripped, lower-cased, final period removed) to look like
a BLIP VQA answer.

Unlike :class:`~.blip.BlipVQAEngine`, the image tokens are part of each
prompt, so an image is encoded once per question; questions of several
images are still batched (``batch_size`` prompts per ``generate`` call).
"""
import re
from typing import Any, Dict, List, Optional, Sequence

import torch
from PIL import Image

from .base import (VQA_ENGINES, LocalModelVQAEngine, check_model_dir,
                   check_question_lists, missing_model_message)

#: An example instruction model (any image-text-to-text model works).
VLM_EXAMPLE_HUB_ID = 'llava-hf/llava-1.5-7b-hf'

_TRAILING_PUNCT = re.compile(r'[\s.!,;:]+$')


def normalize_answer(text: str) -> str:
    """``' A red car.\\n'`` -> ``'a red car'`` (BLIP-like answers)."""
    return _TRAILING_PUNCT.sub('', text.strip()).strip().lower()


@VQA_ENGINES.register_module(name=['ImageTextToTextVQAEngine', 'vlm'])
class ImageTextToTextVQAEngine(LocalModelVQAEngine):
    """VQA with a generative vision-language model.

    Args:
        model_path (str): Local folder of the model and its processor
            (``save_pretrained`` layout), or a hub id already in the local HF
            cache.
        device (str, optional): Defaults to ``'cuda'`` if available, else
            ``'cpu'``.
        dtype (str, optional): ``'fp32'``, ``'fp16'``, ``'bf16'`` or
            ``'auto'`` (fp16 on GPU, fp32 on CPU). Defaults to ``'auto'``.
        batch_size (int): Prompts (image, question) per ``generate`` call.
            Defaults to 16.
        prompt (str): Instruction template; ``{question}`` is replaced by the
            question. Defaults to ``'{question} Answer with a short phrase.'``.
        use_chat_template (bool, optional): Wrap the prompt in the processor's
            chat template (a user turn holding the image and the text, plus the
            generation prompt). ``None`` (default) = when the processor has a
            chat template. Without it, ``prompt`` is used verbatim and must
            contain the image placeholder if the model needs one (e.g.
            ``'USER: <image>\\n{question} ASSISTANT:'`` for LLaVA).
        max_new_tokens (int): Answer length limit. Defaults to 10.
        num_beams (int): 1 = greedy (default); > 1 = beam search.
        normalize (bool): Normalise answers with :func:`normalize_answer`.
            Defaults to True.
        generate_kwargs (dict, optional): Further ``generate`` arguments
            (``length_penalty``, ``repetition_penalty``, ...). Sampling is
            not allowed (answers must be reproducible).
    """

    def __init__(self,
                 model_path: str,
                 device: Optional[str] = None,
                 dtype: Optional[str] = 'auto',
                 batch_size: int = 16,
                 prompt: str = '{question} Answer with a short phrase.',
                 use_chat_template: Optional[bool] = None,
                 max_new_tokens: int = 10,
                 num_beams: int = 1,
                 normalize: bool = True,
                 generate_kwargs: Optional[dict] = None) -> None:
        from transformers import AutoModelForImageTextToText, AutoProcessor
        if '{question}' not in prompt:
            raise ValueError(f'prompt must contain "{{question}}", got '
                             f'{prompt!r}')
        if batch_size < 1:
            raise ValueError('batch_size must be >= 1')
        generate_kwargs = dict(generate_kwargs or {})
        if generate_kwargs.get('do_sample'):
            raise ValueError('do_sample=True makes the corpus irreproducible; '
                             'use greedy or beam search')
        self._set_model_device(model_path, device, dtype)
        check_model_dir(model_path, 'image-text-to-text model',
                        VLM_EXAMPLE_HUB_ID)
        try:
            self.processor = AutoProcessor.from_pretrained(
                model_path, local_files_only=True)
            self.model = AutoModelForImageTextToText.from_pretrained(
                model_path, local_files_only=True, dtype=self.dtype)
        except OSError as e:
            raise FileNotFoundError(
                f'cannot load the image-text-to-text model from '
                f'{model_path!r}: {e}. '
                + missing_model_message(model_path, VLM_EXAMPLE_HUB_ID)) from e
        self.model.to(self.device).eval()
        tokenizer = getattr(self.processor, 'tokenizer', None)
        if tokenizer is not None:
            # decoder-only models continue the prompt: pad on the left
            tokenizer.padding_side = 'left'
        if use_chat_template is None:
            use_chat_template = bool(
                getattr(self.processor, 'chat_template', None))
        self.use_chat_template = use_chat_template
        self.prompt = prompt
        self.batch_size = int(batch_size)
        self.normalize = normalize
        self.generate_kwargs = dict(
            max_new_tokens=int(max_new_tokens),
            num_beams=int(num_beams),
            do_sample=False,
            **generate_kwargs)

    def answer_settings(self) -> Dict[str, Any]:
        """Model, prompt, decoding and dtype."""
        return dict(
            super().answer_settings(),
            prompt=self.prompt,
            use_chat_template=self.use_chat_template,
            normalize=self.normalize,
            **self.generate_kwargs)

    def build_prompt(self, question: str) -> str:
        """The full text input for one question."""
        text = self.prompt.replace('{question}', question)
        if not self.use_chat_template:
            return text
        messages = [dict(role='user', content=[
            dict(type='image'), dict(type='text', text=text)])]
        return self.processor.apply_chat_template(
            messages, add_generation_prompt=True, tokenize=False)

    @torch.inference_mode()
    def _generate(self, images: List[Image.Image],
                  texts: List[str]) -> List[str]:
        inputs = self.processor(
            images=images, text=texts, padding=True, return_tensors='pt')
        inputs = {
            k: (v.to(self.device, self.dtype)
                if torch.is_floating_point(v) else v.to(self.device))
            for k, v in inputs.items() if isinstance(v, torch.Tensor)
        }
        sequences = self.model.generate(**inputs, **self.generate_kwargs)
        prompt_ids = inputs.get('input_ids')
        if (prompt_ids is not None
                and not self.model.config.is_encoder_decoder
                and sequences.shape[1] >= prompt_ids.shape[1]
                and torch.equal(sequences[:, :prompt_ids.shape[1]],
                                prompt_ids)):
            sequences = sequences[:, prompt_ids.shape[1]:]
        answers = self.processor.batch_decode(
            sequences, skip_special_tokens=True)
        return [normalize_answer(a) if self.normalize else a.strip()
                for a in answers]

    def answer_preprocessed(
            self, inputs: Sequence[Image.Image],
            questions: Sequence[Sequence[str]]) -> List[List[str]]:
        """Answer every (image, question) prompt, ``batch_size`` at a time.

        Args:
            inputs (Sequence[PIL.Image.Image]): RGB images.
            questions (Sequence[Sequence[str]]): Questions per image.

        Returns:
            list[list[str]]: Answers per image, in question order.
        """
        check_question_lists(inputs, questions)
        flat_images = [img for img, qs in zip(inputs, questions) for _ in qs]
        flat_texts = [self.build_prompt(q) for qs in questions for q in qs]
        answers: List[str] = []
        for start in range(0, len(flat_texts), self.batch_size):
            answers += self._generate(
                flat_images[start:start + self.batch_size],
                flat_texts[start:start + self.batch_size])
        out, pos = [], 0
        for qs in questions:
            out.append(answers[pos:pos + len(qs)])
            pos += len(qs)
        return out
