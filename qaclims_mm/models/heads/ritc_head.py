"""RegionTextHead: CAM head trained against a frozen CLIP (QA-CLIMS, CLIMS).

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
5. the text source gives the texts of the K pairs, and every loss of the
   head's loss dict (L_FRC, L_BRC, L_REG for QA-CLIMS; OTM, BTM, CBS, REG for
   CLIMS) is computed on tensors, without a Python loop over pairs.

QA-CLIMS and CLIMS are two configs of this one head: a text source
(:mod:`.text_sources`), a region mode and a dict of losses.

The CLIP encoder is held *outside* the module tree: it is not in the
optimizer, not in DDP's gradient sync, not in checkpoints (~1.2 GB for
ViT-L/14), and follows the features' device lazily.
"""
from typing import Dict, Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmseg.registry import MODELS
from torch import Tensor

from ...structures.normalization import (CLIP_MEAN, CLIP_STD,
                                         IMAGENET_MEAN_01, IMAGENET_STD_01)
from ..utils.fat import fat_fg_bg_masks
from .cam_head import CAMHead, multi_hot_labels

_REGION_MASKS = ('prompt', 'pixels', 'none')
_REGION_INPUTS = ('cams', 'fg_regions', 'bg_regions')


def imagenet_to_clip(images: Tensor) -> Tensor:
    """Re-normalise ImageNet-normalised images with CLIP's mean/std."""
    in_mean = images.new_tensor(IMAGENET_MEAN_01)[:, None, None]
    in_std = images.new_tensor(IMAGENET_STD_01)[:, None, None]
    clip_mean = images.new_tensor(CLIP_MEAN)[:, None, None]
    clip_std = images.new_tensor(CLIP_STD)[:, None, None]
    return (images * in_std + in_mean - clip_mean) / clip_std


@MODELS.register_module()
class RegionTextHead(CAMHead):
    """CAM head trained by matching CAM-weighted image regions to texts
    through a frozen CLIP (QA-CLIMS spec §3–§5; CLIMS, spec §5 table).

    Inference is the CAM head's (``ReLU`` of the class maps, §6.1).

    **Regions.** For the K positive pairs, the FG region ``A' * X'`` and the
    BG region ``(1 - A') * X'`` go through CLIP in one call. ``region_mask``
    says how the FAT masks ``M`` (``A' >= fat_alpha * max A'``) enter:
    ``'prompt'``: OV-Seg mask prompts with ``M`` / ``1 - M`` (QA-CLIMS);
    ``'pixels'``: plain CLIP on ``region * M`` (the QA-CLIMS
    ``use_mask_clip=False`` ablation); ``'none'``: plain CLIP on the soft
    regions, no FAT (CLIMS).

    **Texts.** ``text_source`` (:mod:`.text_sources`) gives the texts of the
    pairs: the samples' QA corpus features (``QACorpusTextSource``) or fixed
    prompt features from a text cache file (``PromptTextSource``).

    **Losses.** ``losses`` maps each output name to a loss config. A loss
    reads the inputs named by its class attribute ``region_text_inputs``:
    ``'cams'`` (the sigmoid CAMs ``[B, C, h, w]``), ``'fg_regions'`` /
    ``'bg_regions'`` (the region embeddings ``[K, D]``), or a name the text
    source ``provides``; a loss asking for an input nobody provides fails at
    build time. A batch without any labelled class gives every loss as a
    zero attached to the graph (official COCO loop, fix ``987265f``).

    The images: :meth:`loss` takes the network's input batch as the
    ``images`` argument of the CAM-head contract (the classifier passes it to
    every CAM head); the regions are cut from it.

    The CLIP encoder is held *outside* the module tree: it is not in the
    optimizer, not in DDP's gradient sync, not in checkpoints (~1.2 GB for
    ViT-L/14), and follows the features' device lazily.

    Args:
        clip (dict): Config of the frozen image encoder, e.g.
            ``dict(type='build_mask_clip', model_name='ViT-L-14',
            weights=..., ovseg_checkpoint=...)``.
        text_source (dict): Config of the text source.
        losses (dict): ``{output name: loss config}``, in summation order;
            each name must start with ``loss_``.
        in_channels (int): Feature channels. Defaults to 2048.
        num_classes (int): Object classes. Defaults to 20.
        in_index (int): Backbone output to use. Defaults to -1.
        region_mask (str): ``'prompt'`` (default), ``'pixels'`` or
            ``'none'``, see above.
        clip_input_size (int): CLIP input resolution. Defaults to 224.
        fat_alpha (float): FAT relative threshold. Defaults to 0.1.
        clip_renormalize (bool): Re-normalise images from ImageNet to CLIP
            statistics. Defaults to False: the official code feeds
            ImageNet-normalised images (parity).
        init_cfg (dict, optional): Initialisation config.
    """

    def __init__(self,
                 clip: dict,
                 text_source: dict,
                 losses: Dict[str, dict],
                 in_channels: int = 2048,
                 num_classes: int = 20,
                 in_index: int = -1,
                 region_mask: str = 'prompt',
                 clip_input_size: int = 224,
                 fat_alpha: float = 0.1,
                 clip_renormalize: bool = False,
                 init_cfg=None) -> None:
        super().__init__(in_channels=in_channels, num_classes=num_classes,
                         in_index=in_index, loss_cls=None, init_cfg=init_cfg)
        if region_mask not in _REGION_MASKS:
            raise ValueError(f'region_mask must be one of {_REGION_MASKS}, '
                             f'got {region_mask!r}')
        self.region_mask = region_mask
        self.clip_input_size = clip_input_size
        self.fat_alpha = fat_alpha
        self.clip_renormalize = clip_renormalize
        self.text_source = MODELS.build(text_source)
        source_classes = getattr(self.text_source, 'num_classes', None)
        if source_classes is not None and source_classes != num_classes:
            raise ValueError(
                f'cam_head.text_source ({type(self.text_source).__name__}) '
                f'holds {source_classes} classes for num_classes='
                f'{num_classes}')
        self.losses = nn.ModuleDict({
            name: self._build_loss(name, cfg)
            for name, cfg in losses.items()
        })
        if not self.losses:
            raise ValueError('cam_head.losses is empty')
        self._set_clip(MODELS.build(clip))

    def _build_loss(self, name: str, cfg: dict) -> nn.Module:
        if not name.startswith('loss_'):
            raise ValueError(f'cam_head.losses key {name!r} must start with '
                             '"loss_" so that MMEngine backpropagates it')
        loss = MODELS.build(cfg, default_args=dict(loss_name=name))
        if loss.loss_name != name:
            raise ValueError(f'cam_head.losses.{name}: loss_name '
                             f'{loss.loss_name!r} differs from its key')
        wanted = getattr(loss, 'region_text_inputs', None)
        if wanted is None:
            raise TypeError(f'cam_head.losses.{name}: {type(loss).__name__} '
                            'declares no region_text_inputs')
        available = _REGION_INPUTS + tuple(self.text_source.provides)
        unknown = [k for k in wanted if k not in available]
        if unknown:
            raise ValueError(
                f'cam_head.losses.{name} ({type(loss).__name__}) reads '
                f'{unknown}, which the text source '
                f'{type(self.text_source).__name__} does not provide '
                f'(available: {list(available)})')
        return loss

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

    # ------------------------------------------------------------ regions
    def region_images(self, cams: Tensor, images: Tensor, labels: Tensor
                      ) -> Tuple[Tensor, Tensor, Optional[Tensor],
                                 Optional[Tensor], Tensor]:
        """FG/BG region images and FAT masks of the positive pairs.

        Args:
            cams (Tensor): ``[B, C, h, w]`` sigmoid CAMs.
            images (Tensor): ``[B, 3, H, W]`` normalised images.
            labels (Tensor): ``[B, C]`` multi-hot labels.

        Returns:
            tuple: ``fg_img``, ``bg_img`` ``[K, 3, S, S]``; ``fg_mask``,
            ``bg_mask`` ``[K, 1, S, S]`` (None when ``region_mask='none'``);
            ``pair_class`` ``[K]``.
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
        fg_mask = bg_mask = None
        if self.region_mask != 'none':
            fg_mask, bg_mask = fat_fg_bg_masks(maps, self.fat_alpha)
        return maps * pixels, (1 - maps) * pixels, fg_mask, bg_mask, c_idx

    def encode_regions(self, fg_img: Tensor, bg_img: Tensor,
                       fg_mask: Optional[Tensor], bg_mask: Optional[Tensor]
                       ) -> Tuple[Tensor, Tensor]:
        """One CLIP call for the 2K regions; returns ``[K, D]`` FG, BG."""
        clip = self.clip_on(fg_img.device)
        images = torch.cat([fg_img, bg_img])
        if self.region_mask == 'none':
            feats = clip(images, None)
        else:
            masks = torch.cat([fg_mask, bg_mask]).to(images.dtype)
            if self.region_mask == 'prompt':
                feats = clip(images, masks)
            else:  # 'pixels': plain CLIP on hard-masked pixels
                feats = clip(images * masks, None)
        return feats.split(fg_img.shape[0])

    # ------------------------------------------------------------ losses
    def loss(self,
             inputs: Sequence[Tensor],
             data_samples: Sequence,
             train_cfg: Optional[dict] = None,
             images: Optional[Tensor] = None) -> Dict[str, Tensor]:
        """Region-text losses of a batch (spec §3.5).

        Args:
            inputs (Sequence[Tensor]): Backbone features.
            data_samples (Sequence): Samples with ``img_labels`` (and what
                the text source reads, e.g. ``qa_feats``).
            train_cfg (dict, optional): Unused.
            images (Tensor): ``[B, 3, H, W]`` the network's input images.
        """
        cams = torch.sigmoid(self.forward(inputs))
        return self.loss_by_feat(cams, data_samples, images)

    def loss_by_feat(self, cams: Tensor, data_samples: Sequence,
                     images: Optional[Tensor] = None) -> Dict[str, Tensor]:
        """Losses of sigmoid CAMs ``[B, C, h, w]``.

        Args:
            cams (Tensor): ``[B, C, h, w]`` sigmoid CAMs.
            data_samples (Sequence): Samples with ``img_labels``.
            images (Tensor): ``[B, 3, H, W]`` the network's input images.
        """
        if images is None:
            raise ValueError(
                f'{type(self).__name__}.loss needs the input images: call '
                'loss(feats, data_samples, train_cfg, images=inputs)')
        labels = multi_hot_labels(data_samples, self.num_classes, cams.device)
        if not labels.any():
            # all losses, L_REG included, are zero (official COCO loop,
            # fix 987265f): zeros attached to the graph, so every rank still
            # runs its backward through every parameter that produced
            # ``cams`` (DDP). Exact even when ``cams`` holds NaN or inf
            # (``x * 0`` would give NaN): non-finite entries are replaced
            # first, so the value and the gradient to ``cams`` are 0.
            zero = cams.nan_to_num(nan=0., posinf=0., neginf=0.).mul(0).sum()
            return {name: zero for name in self.losses}
        fg_img, bg_img, fg_mask, bg_mask, pair_class = self.region_images(
            cams, images, labels)
        v_fg, v_bg = self.encode_regions(fg_img, bg_img, fg_mask, bg_mask)
        values = dict(cams=cams, fg_regions=v_fg, bg_regions=v_bg)
        values.update(self.text_source(pair_class, data_samples))
        return {
            name: loss(*(values[k] for k in loss.region_text_inputs))
            for name, loss in self.losses.items()
        }
