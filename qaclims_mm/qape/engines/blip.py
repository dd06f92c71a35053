"""BLIP VQA (transformers ``BlipForQuestionAnswering``): the QA-CLIMS engine.

The official tool (``third_party/BLIP/get_blip_vqa_results.py``, spec §2.2)
asks one question per call with batch size 1 and re-encodes the image with
the ViT for every question (spec §9.2 item 10). :class:`BlipVQAEngine` gives
the same answers much faster:

* each image goes through the vision tower **once**; all of its questions (all
  labelled classes, FG and BG) are answered from those features;
* questions of several images are batched (up to ``batch_size`` questions per
  text-encoder / decoder pass). A batch holds questions of one token length
  only, so there is no padding and a batched answer equals the batch-1 answer.
  (Masking the padding would not be enough: in transformers 5.x,
  ``BlipTextLayer`` hands the cross-attention mask to ``BlipTextSelfAttention``
  as ``attention_mask``, which that module ignores for cross-attention, so the
  decoder would attend to the padded question positions. The questions of a
  corpus run come in few distinct lengths, so the batches stay full.);
* fp16 / bf16 on GPUs.

:meth:`BlipVQAEngine.answer_naive` keeps the official one-question path
(``model.generate`` on one image and one question) as the reference.

**Resolution.** The official model is BLIP ViT-B CapFilt-L fine-tuned for VQA
at 480 px (``blip_vqa(image_size=480)``), i.e. a 30×30 patch grid. The
Hugging Face port ``Salesforce/blip-vqa-capfilt-large`` sets no vision
``image_size``, so transformers' default 384 applies: 24×24 + 1 position
embeddings (the 480-px ones resampled when the checkpoint was converted;
``vision_model.embeddings.position_embedding`` has 577 rows). We run at
``image_size=480`` by default, as the official tool does, and let transformers
interpolate the 24×24 grid back to 30×30 (bicubic,
``interpolate_pos_encoding=True``). That is the closest available to the
original 480-px embeddings, but not bit-equal to them; pass
``image_size=None`` to run at the checkpoint's native size instead. Both
settings are recorded in the corpus meta.

In fp32 the batched answers are identical to :meth:`answer_naive` (tested).
In fp16 / bf16 on a GPU, kernels picked for different batch shapes may round
differently and, rarely, flip a near-tied beam.
"""
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from PIL import Image

from ...structures.normalization import CLIP_MEAN, CLIP_STD
from .base import (VQA_ENGINES, LocalModelVQAEngine, check_model_dir,
                   check_question_lists, missing_model_message)

#: The Hugging Face port of the official checkpoint.
BLIP_VQA_HUB_ID = 'Salesforce/blip-vqa-capfilt-large'


def load_blip_vqa(model_path: str, device: torch.device,
                  dtype: torch.dtype) -> Tuple[Any, Any]:
    """Load ``BlipForQuestionAnswering`` + ``BlipProcessor`` without network.

    Args:
        model_path (str): A local folder (``save_pretrained`` layout) or a hub
            id already present in the local HF cache.
        device (torch.device): Target device.
        dtype (torch.dtype): Weight dtype.

    Returns:
        tuple: ``(model, processor)``, the model in eval mode on ``device``.

    Raises:
        FileNotFoundError: naming ``model_path`` and how to provide it.
    """
    from transformers import BlipForQuestionAnswering, BlipProcessor
    check_model_dir(model_path, 'BLIP VQA model', BLIP_VQA_HUB_ID)
    try:
        processor = BlipProcessor.from_pretrained(
            model_path, local_files_only=True)
        model = BlipForQuestionAnswering.from_pretrained(
            model_path, local_files_only=True, dtype=dtype)
    except OSError as e:
        raise FileNotFoundError(
            f'cannot load the BLIP VQA model from {model_path!r}: {e}. '
            + missing_model_message(model_path, BLIP_VQA_HUB_ID)) from e
    return model.to(device).eval(), processor


def decode_answers(tokenizer: Any,
                   sequences: Union[torch.Tensor, Sequence[Sequence[int]]],
                   clean_up_tokenization_spaces: bool = True) -> List[str]:
    """Token ids -> answer strings, as the original BLIP VQA decodes them.

    The original ``BLIP_VQA`` calls ``tokenizer.decode(output,
    skip_special_tokens=True)`` under the transformers of its time, whose
    default cleaned the spaces that WordPiece decoding puts around
    punctuation and contractions (``"man ' s"`` -> ``"man's"``, ``"don ' t"``
    -> ``"don't"``). Newer transformers default to no clean-up, or take it
    from the saved tokenizer config, so the flag is always passed explicitly.

    Args:
        tokenizer: A transformers tokenizer (BERT WordPiece for BLIP).
        sequences (torch.Tensor | Sequence[Sequence[int]]): Generated ids,
            one row per answer.
        clean_up_tokenization_spaces (bool): Clean the spaces as the
            original did. Defaults to True (parity).

    Returns:
        list[str]: One stripped answer per row.
    """
    return [
        s.strip() for s in tokenizer.batch_decode(
            sequences,
            skip_special_tokens=True,
            clean_up_tokenization_spaces=clean_up_tokenization_spaces)
    ]


def pil_to_blip_tensor(image: Image.Image, image_size: int,
                       mean: Sequence[float] = CLIP_MEAN,
                       std: Sequence[float] = CLIP_STD) -> torch.Tensor:
    """Official BLIP VQA preprocessing of one image (spec §2.2).

    RGB, resize to ``image_size``×``image_size`` with PIL bicubic (aspect not
    kept, no crop), scale to [0, 1], normalise.

    Returns:
        torch.Tensor: ``[3, image_size, image_size]`` float32.
    """
    image = image.convert('RGB').resize((image_size, image_size),
                                        Image.BICUBIC)
    arr = np.asarray(image, dtype=np.float32) / 255.0  # [H, W, 3]
    arr = (arr - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)
    return torch.from_numpy(np.ascontiguousarray(arr.transpose(2, 0, 1)))


@VQA_ENGINES.register_module(name=['BlipVQAEngine', 'blip'])
class BlipVQAEngine(LocalModelVQAEngine):
    """Batched BLIP VQA with one vision pass per image.

    Args:
        model_path (str): Local folder with the transformers BLIP VQA model and
            processor (e.g. ``huggingface-cli download
            Salesforce/blip-vqa-capfilt-large --local-dir ...``), or a hub id
            already in the local cache.
        device (str): ``'cuda'``, ``'cuda:1'``, ``'cpu'``. Defaults to
            ``'cuda'`` when available, else ``'cpu'``.
        dtype (str, optional): ``'fp32'``, ``'fp16'``, ``'bf16'`` or
            ``'auto'`` (fp16 on GPU, fp32 on CPU). Defaults to ``'auto'``.
        image_size (int, optional): Input resolution. Defaults to 480, the
            official one; None = the checkpoint's ``vision_config.image_size``.
            Position embeddings are interpolated when the two differ.
        batch_size (int): Questions per text-encoder / decoder pass.
            Defaults to 64.
        image_batch_size (int): Images per vision-tower pass. Defaults to 16.
        max_question_tokens (int): Question truncation, in tokens including
            ``[CLS]``/``[SEP]``. Defaults to 35 (official).
        num_beams (int): Beam width. Defaults to 3 (official).
        max_length (int): Maximum answer length in tokens, the start token
            included (the ``generate`` convention). Defaults to 10 (official).
        min_length (int): Defaults to 1 (official).
        enc_token_first (bool): Put BLIP's ``[ENC]`` token in place of
            ``[CLS]`` at the start of every question, as the original
            ``BLIP_VQA`` does (``input_ids[:, 0] = enc_token_id``) and the
            transformers port does not. Defaults to True (parity).
        clean_up_tokenization_spaces (bool): Decode answers with the
            clean-up of the transformers the original BLIP ran on
            (``"man ' s"`` -> ``"man's"``), whatever the installed
            transformers or the tokenizer config default to. Defaults to True
            (parity).
    """

    def __init__(self,
                 model_path: str,
                 device: Optional[str] = None,
                 dtype: Optional[str] = 'auto',
                 image_size: Optional[int] = 480,
                 batch_size: int = 64,
                 image_batch_size: int = 16,
                 max_question_tokens: int = 35,
                 num_beams: int = 3,
                 max_length: int = 10,
                 min_length: int = 1,
                 enc_token_first: bool = True,
                 clean_up_tokenization_spaces: bool = True) -> None:
        if batch_size < 1 or image_batch_size < 1:
            raise ValueError('batch_size and image_batch_size must be >= 1')
        self._set_model_device(model_path, device, dtype)
        self.model, self.processor = load_blip_vqa(model_path, self.device,
                                                   self.dtype)
        native = self.model.config.vision_config.image_size
        self.image_size = int(image_size or native)
        patch = self.model.config.vision_config.patch_size
        if self.image_size % patch:
            raise ValueError(f'image_size {self.image_size} is not a multiple '
                             f'of the patch size {patch} of {model_path}')
        self.interpolate_pos_encoding = self.image_size != native
        image_processor = self.processor.image_processor
        self.mean = tuple(getattr(image_processor, 'image_mean', CLIP_MEAN))
        self.std = tuple(getattr(image_processor, 'image_std', CLIP_STD))
        self.batch_size = int(batch_size)
        self.image_batch_size = int(image_batch_size)
        self.max_question_tokens = int(max_question_tokens)
        self.enc_token_id = (self._enc_token_id()
                             if enc_token_first else None)
        self.clean_up_tokenization_spaces = bool(
            clean_up_tokenization_spaces)
        self.generate_kwargs = dict(
            num_beams=int(num_beams),
            max_length=int(max_length),
            min_length=int(min_length))

    # ------------------------------------------------------------------ info
    def answer_settings(self) -> Dict[str, Any]:
        """Model, resolution, normalisation, truncation, decoding, dtype."""
        return dict(
            super().answer_settings(),
            image_size=self.image_size,
            interpolate_pos_encoding=self.interpolate_pos_encoding,
            mean=list(self.mean),
            std=list(self.std),
            max_question_tokens=self.max_question_tokens,
            enc_token_id=self.enc_token_id,
            clean_up_tokenization_spaces=self.clean_up_tokenization_spaces,
            **self.generate_kwargs)

    def runtime_settings(self) -> Dict[str, Any]:
        return dict(super().runtime_settings(),
                    image_batch_size=self.image_batch_size)

    # --------------------------------------------------------------- helpers
    def preprocess(self, image: Image.Image) -> torch.Tensor:
        """PIL image -> ``[3, S, S]`` float32 (resize, normalise)."""
        return pil_to_blip_tensor(image, self.image_size, self.mean, self.std)

    def _enc_token_id(self) -> int:
        """BLIP's ``[ENC]`` id: the tokenizer's, else the last text-vocab id
        (BLIP appends ``[DEC]`` then ``[ENC]`` to BERT's 30,522 tokens)."""
        tokenizer = self.processor.tokenizer
        token_id = tokenizer.convert_tokens_to_ids('[ENC]')
        if token_id is not None and token_id != tokenizer.unk_token_id:
            return int(token_id)
        return int(self.model.config.text_config.vocab_size) - 1

    def _tokenize(self, questions: Sequence[str]) -> List[List[int]]:
        """Question token ids, truncated like the official tool (35 tokens),
        unpadded; ``[ENC]`` replaces ``[CLS]`` (original BLIP VQA)."""
        ids = self.processor.tokenizer(
            list(questions),
            truncation=True,
            max_length=self.max_question_tokens)['input_ids']
        if self.enc_token_id is not None:
            ids = [[self.enc_token_id] + q[1:] for q in ids]
        return ids

    def _decode(self, sequences: torch.Tensor) -> List[str]:
        return decode_answers(self.processor.tokenizer, sequences,
                              self.clean_up_tokenization_spaces)

    @torch.inference_mode()
    def encode_images(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """Vision tower: ``[B, 3, S, S]`` -> image tokens ``[B, N, D]``."""
        embeds = []
        for start in range(0, pixel_values.shape[0], self.image_batch_size):
            chunk = pixel_values[start:start + self.image_batch_size]
            out = self.model.vision_model(
                pixel_values=chunk.to(self.device, self.dtype),
                interpolate_pos_encoding=self.interpolate_pos_encoding)
            embeds.append(out.last_hidden_state)
        return torch.cat(embeds)

    @torch.inference_mode()
    def answer_from_image_embeds(self, image_embeds: torch.Tensor,
                                 input_ids: torch.Tensor) -> List[str]:
        """Answer a batch of equal-length questions.

        Args:
            image_embeds (torch.Tensor): ``[Q, N, D]`` image tokens, one row
                per question (rows of the same image may repeat).
            input_ids (torch.Tensor): ``[Q, T]`` question ids, no padding.

        Returns:
            list[str]: One answer per question.
        """
        image_mask = torch.ones(image_embeds.shape[:2], dtype=torch.long,
                                device=self.device)
        question_states = self.model.text_encoder(
            input_ids=input_ids,
            encoder_hidden_states=image_embeds,
            encoder_attention_mask=image_mask,
            return_dict=False)[0]  # [Q, T, D]
        text_cfg = self.model.config.text_config
        bos = torch.full((input_ids.shape[0], 1),
                         self.model.decoder_start_token_id,
                         dtype=torch.long, device=self.device)
        # the decoder attends to every question position, as in
        # ``BlipForQuestionAnswering.generate``
        sequences = self.model.text_decoder.generate(
            input_ids=bos,
            eos_token_id=text_cfg.sep_token_id,
            pad_token_id=text_cfg.pad_token_id,
            encoder_hidden_states=question_states,
            encoder_attention_mask=torch.ones_like(input_ids),
            do_sample=False,
            **self.generate_kwargs)
        return self._decode(sequences)

    # ------------------------------------------------------------ interface
    @torch.inference_mode()
    def answer_preprocessed(
            self, inputs: Sequence[torch.Tensor],
            questions: Sequence[Sequence[str]]) -> List[List[str]]:
        """Answer all questions of all images; one vision pass per image.

        Args:
            inputs (Sequence[torch.Tensor]): ``[3, S, S]`` tensors from
                :meth:`preprocess`.
            questions (Sequence[Sequence[str]]): Questions per image.

        Returns:
            list[list[str]]: Answers per image, in question order.
        """
        check_question_lists(inputs, questions)
        if not inputs:
            return []
        image_embeds = self.encode_images(torch.stack(list(inputs)))
        flat = [q for qs in questions for q in qs]
        owner = [i for i, qs in enumerate(questions) for _ in qs]
        token_ids = self._tokenize(flat)
        # Batch only questions of the same token length: no padding at all,
        # so every answer equals its batch-1 answer (see the module note).
        by_length: Dict[int, List[int]] = {}
        for idx, ids in enumerate(token_ids):
            by_length.setdefault(len(ids), []).append(idx)
        answers: List[str] = [''] * len(flat)
        for length in sorted(by_length):
            members = by_length[length]
            for start in range(0, len(members), self.batch_size):
                chunk = members[start:start + self.batch_size]
                rows = torch.tensor([owner[i] for i in chunk],
                                    device=self.device)
                input_ids = torch.tensor([token_ids[i] for i in chunk],
                                         device=self.device)
                for i, ans in zip(
                        chunk,
                        self.answer_from_image_embeds(
                            image_embeds.index_select(0, rows), input_ids)):
                    answers[i] = ans
        out, pos = [], 0
        for qs in questions:
            out.append(answers[pos:pos + len(qs)])
            pos += len(qs)
        return out

    @torch.inference_mode()
    def answer_naive(self, image: Image.Image, question: str) -> str:
        """The official path: one question, batch 1, image re-encoded.

        Uses ``BlipForQuestionAnswering.generate`` unchanged (the reference
        for :meth:`answer`).
        """
        pixel_values = self.preprocess(image)[None].to(self.device,
                                                        self.dtype)
        input_ids = torch.tensor(self._tokenize([question]),
                                 device=self.device)
        sequences = self.model.generate(
            input_ids=input_ids,
            pixel_values=pixel_values,
            attention_mask=torch.ones_like(input_ids),
            interpolate_pos_encoding=self.interpolate_pos_encoding,
            do_sample=False,
            **self.generate_kwargs)
        return self._decode(sequences)[0]
