"""RITC: the CAM head trained against a frozen CLIP (QA-CLIMS and CLIMS).

One training step (spec §3.5), vectorised over the K positive (image, class)
pairs of the batch (row-major ``(b, c)`` order):

1. ``A = sigmoid(class maps)`` ``[B, C, h, w]``;
2. ``A`` and the (ImageNet-normalised) images are resized bilinearly
   (``align_corners=True``) to the CLIP input size; the K positive maps and
   their images are gathered;
3. FAT masks ``M = A' >= alpha * max(A')`` (no gradient);
4. foreground ``A' * X'`` with mask ``M`` and background ``(1 - A') * X'``
   with mask ``1 - M`` go through the frozen mask-prompted CLIP in ONE batched
   call of ``2K`` images;
5. the losses (L_FRC, L_BRC, L_REG for QA-CLIMS; OTM, BTM, CBS, REG for
   CLIMS) are computed on tensors, without a Python loop over pairs.

The CLIP encoder is held *outside* the module tree: it is not in the
optimizer, not in DDP's gradient sync, not in checkpoints (~1.2 GB for
ViT-L/14), and follows the features' device lazily.
"""
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmseg.registry import MODELS
from torch import Tensor

from ...structures.normalization import (CLIP_MEAN, CLIP_STD,
                                         IMAGENET_MEAN_01, IMAGENET_STD_01)
from ..losses.region_contrastive import blend_fg_text
from ..utils.fat import fat_fg_bg_masks
from .cam_head import CAMHead

_QA_KEYS = ('class_feats', 'fg_feats', 'fg_mask', 'bg_feats', 'bg_mask')


def imagenet_to_clip(images: Tensor) -> Tensor:
    """Re-normalise ImageNet-normalised images with CLIP's mean/std."""
    in_mean = images.new_tensor(IMAGENET_MEAN_01)[:, None, None]
    in_std = images.new_tensor(IMAGENET_STD_01)[:, None, None]
    clip_mean = images.new_tensor(CLIP_MEAN)[:, None, None]
    clip_std = images.new_tensor(CLIP_STD)[:, None, None]
    return (images * in_std + in_mean - clip_mean) / clip_std


def gather_qa_feats(data_samples: Sequence, device: torch.device
                    ) -> Dict[str, Tensor]:
    """Concatenate the samples' ``qa_feats`` (from ``LoadQACorpus``).

    Each sample holds its K_b pairs in sorted class order, so concatenating
    over samples gives the row-major ``(b, c)`` order of the positive pairs.
    """
    missing = [s.metainfo.get('img_id', '?') for s in data_samples
               if 'qa_feats' not in s]
    if missing:
        raise KeyError(f'samples {missing[:3]} carry no qa_feats: add '
                       f"dict(type='LoadQACorpus', cache_prefix=...) to the "
                       f'training pipeline')
    return {
        key: torch.cat([torch.as_tensor(s.qa_feats[key])
                        for s in data_samples]).to(device)
        for key in _QA_KEYS
    }


class _FrozenCLIPMixin:
    """Holds a frozen CLIP encoder outside the module tree."""

    def _set_clip(self, clip: nn.Module) -> None:
        clip.eval()
        for p in clip.parameters():
            p.requires_grad_(False)
        # object.__setattr__ bypasses nn.Module registration on purpose
        object.__setattr__(self, '_clip', clip)

    def clip_on(self, device: torch.device) -> nn.Module:
        """The CLIP encoder, moved to ``device`` on first use there."""
        param = next(self._clip.parameters())
        if param.device != device:
            self._clip.to(device)
        return self._clip


@MODELS.register_module()
class RITCHead(_FrozenCLIPMixin, CAMHead):
    """QA-CLIMS region-text contrastive CAM head (spec §3–§5).

    Inference is the CAM head's (``ReLU`` of the class maps, §6.1).

    Args:
        in_channels (int): Feature channels. Defaults to 2048.
        num_classes (int): Object classes. Defaults to 20.
        in_index (int): Backbone output to use. Defaults to -1.
        clip (dict): Config of the frozen image encoder, e.g.
            ``dict(type='build_mask_clip', model_name='ViT-L-14',
            weights=..., ovseg_checkpoint=...)``.
        clip_input_size (int): CLIP input resolution. Defaults to 224.
        use_mask_clip (bool): Mask-prompted CLIP with the FAT masks (default).
            False is the ablation: plain CLIP on hard-masked pixels
            ``(A' * X') * M``.
        fat_alpha (float): FAT relative threshold. Defaults to 0.1.
        clip_renormalize (bool): Re-normalise images from ImageNet to CLIP
            statistics. Defaults to False: the official code feeds
            ImageNet-normalised images (parity).
        label_weight (float): Weight of the class prompt in the FG text.
            Defaults to 0.5.
        loss_frc, loss_brc, loss_reg (dict): The three losses; weights
            10 / 8 / 0.2 on VOC, 30 / 24 / 0.2 on COCO.
        init_cfg (dict, optional): Initialisation config.
    """

    def __init__(self,
                 in_channels: int = 2048,
                 num_classes: int = 20,
                 in_index: int = -1,
                 clip: dict = dict(type='build_mask_clip',
                                   model_name='ViT-L-14'),
                 clip_input_size: int = 224,
                 use_mask_clip: bool = True,
                 fat_alpha: float = 0.1,
                 clip_renormalize: bool = False,
                 label_weight: float = 0.5,
                 loss_frc: dict = dict(type='FGRegionContrastiveLoss',
                                       tau=0.7, loss_weight=10.),
                 loss_brc: dict = dict(type='BGRegionContrastiveLoss',
                                       tau=0.7, loss_weight=8.),
                 loss_reg: dict = dict(type='AreaRegularizationLoss',
                                       loss_weight=0.2),
                 init_cfg=None) -> None:
        super().__init__(in_channels=in_channels, num_classes=num_classes,
                         in_index=in_index, loss_cls=None, init_cfg=init_cfg)
        self.clip_input_size = clip_input_size
        self.use_mask_clip = use_mask_clip
        self.fat_alpha = fat_alpha
        self.clip_renormalize = clip_renormalize
        self.label_weight = label_weight
        self.loss_frc = MODELS.build(loss_frc)
        self.loss_brc = MODELS.build(loss_brc)
        self.loss_reg = MODELS.build(loss_reg)
        self._set_clip(MODELS.build(clip))

    # ------------------------------------------------------------ regions
    def region_images(self, cams: Tensor, images: Tensor, labels: Tensor
                      ) -> Tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
        """FG/BG region images and FAT masks of the positive pairs.

        Args:
            cams (Tensor): ``[B, C, h, w]`` sigmoid CAMs.
            images (Tensor): ``[B, 3, H, W]`` normalised images.
            labels (Tensor): ``[B, C]`` multi-hot labels.

        Returns:
            tuple: ``fg_img``, ``bg_img`` ``[K, 3, S, S]``; ``fg_mask``,
            ``bg_mask`` ``[K, 1, S, S]``; ``pair_class`` ``[K]``.
        """
        size = (self.clip_input_size, self.clip_input_size)
        cams = F.interpolate(cams, size, mode='bilinear', align_corners=True)
        images = F.interpolate(images, size, mode='bilinear',
                               align_corners=True)
        if self.clip_renormalize:
            images = imagenet_to_clip(images)
        b_idx, c_idx = labels.nonzero(as_tuple=True)  # row-major (b, c)
        maps = cams[b_idx, c_idx].unsqueeze(1)  # [K, 1, S, S]
        pixels = images[b_idx]  # [K, 3, S, S]
        fg_mask, bg_mask = fat_fg_bg_masks(maps, self.fat_alpha)
        return maps * pixels, (1 - maps) * pixels, fg_mask, bg_mask, c_idx

    def encode_regions(self, fg_img: Tensor, bg_img: Tensor, fg_mask: Tensor,
                       bg_mask: Tensor) -> Tuple[Tensor, Tensor]:
        """One CLIP call for the 2K regions; returns ``[K, D]`` FG, BG."""
        clip = self.clip_on(fg_img.device)
        images = torch.cat([fg_img, bg_img])
        masks = torch.cat([fg_mask, bg_mask]).to(images.dtype)
        if self.use_mask_clip:
            feats = clip(images, masks)
        else:  # ablation: plain CLIP on hard-masked pixels
            feats = clip(images * masks, None)
        return feats.split(fg_img.shape[0])

    # ------------------------------------------------------------ losses
    def loss(self, feats: Sequence[Tensor], images: Tensor, labels: Tensor,
             data_samples: Sequence) -> Dict[str, Tensor]:
        """RITC losses of a batch (spec §3.5).

        Args:
            feats (Sequence[Tensor]): Backbone features.
            images (Tensor): ``[B, 3, H, W]`` the network's input images.
            labels (Tensor): ``[B, C]`` multi-hot labels.
            data_samples (Sequence): Samples carrying ``qa_feats``.
        """
        cams = torch.sigmoid(self.forward(feats))
        return self.loss_by_feat(cams, images, labels, data_samples)

    def _no_pair_losses(self, cams: Tensor) -> Dict[str, Tensor]:
        """Losses of a batch without any labelled class (COCO).

        As the official COCO training loop (fix ``987265f``): when no image
        of the batch has a label, **all** losses, L_REG included, are zero
        (here zeros attached to the graph, so every rank still runs its
        backward). In a batch with at least one labelled image, L_REG is the
        mean over every image of the batch, label-less ones included (see
        :meth:`loss_by_feat`).
        """
        zero = cams.sum() * 0
        return {
            m.loss_name: zero
            for m in self.children() if hasattr(m, 'loss_name')
        }

    def loss_by_feat(self, cams: Tensor, images: Tensor, labels: Tensor,
                     data_samples: Sequence) -> Dict[str, Tensor]:
        if not labels.any():
            return self._no_pair_losses(cams)
        fg_img, bg_img, fg_mask, bg_mask, _ = self.region_images(
            cams, images, labels)
        v_fg, v_bg = self.encode_regions(fg_img, bg_img, fg_mask, bg_mask)
        qa = gather_qa_feats(data_samples, cams.device)
        if qa['class_feats'].shape[0] != v_fg.shape[0]:
            raise ValueError(
                f'{qa["class_feats"].shape[0]} QA pairs for {v_fg.shape[0]} '
                f'labelled classes: the QA cache and the image labels '
                f'disagree')
        fg_text = blend_fg_text(qa['class_feats'], qa['fg_feats'],
                                qa['fg_mask'], self.label_weight)
        return {
            self.loss_frc.loss_name: self.loss_frc(
                v_fg, fg_text, qa['bg_feats'], qa['bg_mask']),
            self.loss_brc.loss_name: self.loss_brc(
                v_bg, fg_text, qa['bg_feats'], qa['bg_mask']),
            self.loss_reg.loss_name: self.loss_reg(cams),
        }


@MODELS.register_module()
class CLIMSHead(RITCHead):
    """CLIMS (the baseline of QA-CLIMS) in the same framework (spec §5).

    Plain CLIP (ViT-B/32 in the paper) on the soft regions ``A' * X'`` and
    ``(1 - A') * X'`` (no FAT, no mask prompts); class prompts
    ``a photo of {class}.`` (``person`` → ``player``) and a fixed set of
    background prompts are encoded once at construction by the text tower.

    Args:
        text_encoder (dict): ``model_name`` and ``pretrained`` (local path) for
            :func:`qaclims_mm.qape.text_cache.load_text_encoder`.
        class_names (Sequence[str] | str): Class names, or ``'voc'`` /
            ``'coco'``.
        bg_prompts (str): Background prompt set, ``'voc'`` or ``'coco'``.
        loss_otm, loss_btm, loss_cbs, loss_reg (dict): The losses (CLIMS VOC
            weights 10 / 24 / 1 / 0.2).
        **kwargs: :class:`RITCHead` arguments (``clip``, ...).
    """

    def __init__(self,
                 text_encoder: dict,
                 class_names='voc',
                 bg_prompts: str = 'voc',
                 loss_otm: dict = dict(type='CLIMSObjectLoss',
                                       loss_weight=10.),
                 loss_btm: dict = dict(type='CLIMSBackgroundLoss',
                                       loss_weight=24.),
                 loss_cbs: dict = dict(type='CLIMSContextSuppressionLoss',
                                       threshold=0.26, loss_weight=1.),
                 loss_reg: dict = dict(type='AreaRegularizationLoss',
                                       loss_weight=0.2),
                 **kwargs) -> None:
        kwargs.setdefault('use_mask_clip', False)
        super().__init__(loss_reg=loss_reg, **kwargs)
        del self.loss_frc, self.loss_brc
        self.loss_otm = MODELS.build(loss_otm)
        self.loss_btm = MODELS.build(loss_btm)
        self.loss_cbs = MODELS.build(loss_cbs)
        class_feats, bg_feats = self._encode_prompts(text_encoder,
                                                     class_names, bg_prompts)
        if class_feats.shape[0] != self.num_classes:
            raise ValueError(f'{class_feats.shape[0]} class names for '
                             f'num_classes={self.num_classes}')
        # buffers: they follow the model's device and stay out of the
        # optimizer; persistent=False keeps them out of checkpoints
        self.register_buffer('class_text_feats', class_feats, persistent=False)
        self.register_buffer('bg_text_feats', bg_feats, persistent=False)

    @staticmethod
    def _encode_prompts(text_encoder: dict, class_names, bg_prompts: str
                        ) -> Tuple[Tensor, Tensor]:
        from ...datasets.class_names import get_classes
        from ...qape.text_cache import encode_texts, load_text_encoder
        from ..losses.clims_losses import (clims_background_prompts,
                                           clims_class_prompts)
        if isinstance(class_names, str):
            class_names = get_classes(class_names)
        model, tokenizer = load_text_encoder(**text_encoder)
        encode = lambda texts: encode_texts(  # noqa: E731
            model, tokenizer, texts, prompt='{}')
        with torch.no_grad():
            return (encode(clims_class_prompts(class_names)),
                    encode(clims_background_prompts(bg_prompts)))

    def encode_regions(self, fg_img: Tensor, bg_img: Tensor, fg_mask: Tensor,
                       bg_mask: Tensor) -> Tuple[Tensor, Tensor]:
        """Plain CLIP on the soft regions (CLIMS uses no hard masks)."""
        clip = self.clip_on(fg_img.device)
        return clip(torch.cat([fg_img, bg_img]), None).split(fg_img.shape[0])

    def loss_by_feat(self, cams: Tensor, images: Tensor, labels: Tensor,
                     data_samples: Sequence) -> Dict[str, Tensor]:
        if not labels.any():
            return self._no_pair_losses(cams)
        fg_img, bg_img, fg_mask, bg_mask, pair_class = self.region_images(
            cams, images, labels)
        v_fg, v_bg = self.encode_regions(fg_img, bg_img, fg_mask, bg_mask)
        text = self.class_text_feats[pair_class]
        return {
            self.loss_otm.loss_name: self.loss_otm(v_fg, text),
            self.loss_btm.loss_name: self.loss_btm(v_bg, text),
            self.loss_cbs.loss_name: self.loss_cbs(v_fg, self.bg_text_feats),
            self.loss_reg.loss_name: self.loss_reg(cams),
        }
