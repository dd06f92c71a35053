"""The RITC losses computed the way the official training loop does.

A literal, loop-based reference of spec §3.5 / §4.1 / §5 — one FAT threshold
per map in a Python loop, one (image, class) pair at a time, separate FG and BG
CLIP calls of batch 1, each loss written out from its formula. It exists to
check the vectorised :class:`~qaclims_mm.models.heads.RegionTextHead` (tests)
and to measure it (``benchmarks/ritc_step.py``); never use it for training.
"""
from typing import Callable, Dict, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor


def reference_ritc_losses(cams: Tensor,
                          images: Tensor,
                          labels: Tensor,
                          qa_feats: Sequence[Dict[str, Tensor]],
                          clip: Callable[[Tensor, Tensor], Tensor],
                          clip_input_size: int = 224,
                          fat_alpha: float = 0.1,
                          tau: float = 0.7,
                          label_weight: float = 0.5,
                          loss_weights=(10., 8., 0.2)) -> Dict[str, Tensor]:
    """QA-CLIMS losses of one batch, pair by pair.

    Args:
        cams (Tensor): ``[B, C, h, w]`` sigmoid CAMs.
        images (Tensor): ``[B, 3, H, W]`` images.
        labels (Tensor): ``[B, C]`` multi-hot labels.
        qa_feats (Sequence[dict]): Per image, the ``LoadQACorpus`` tensors of
            its labelled classes (``class_feats``, ``fg_feats``, ``fg_mask``,
            ``bg_feats``, ``bg_mask``), in class order.
        clip (Callable): ``clip(images [1,3,S,S], masks [1,1,S,S]) -> [1, D]``.
        clip_input_size (int): CLIP input size. Defaults to 224.
        fat_alpha (float): FAT threshold. Defaults to 0.1.
        tau (float): Temperature. Defaults to 0.7.
        label_weight (float): Class-prompt weight of the FG text.
        loss_weights (tuple): FRC, BRC, REG weights. Defaults to VOC's.

    Returns:
        dict: ``loss_frc``, ``loss_brc``, ``loss_reg``.
    """
    size = (clip_input_size, clip_input_size)
    num_images, num_classes = labels.shape
    resized = F.interpolate(cams, size, mode='bilinear', align_corners=True)
    pixels = F.interpolate(images, size, mode='bilinear', align_corners=True)
    maps = resized.reshape(num_images * num_classes, 1, *size)
    masks = []
    for m in maps:  # the official MaskAdapter_DynamicThreshold loop
        masks.append((m >= fat_alpha * m.max()).to(m.dtype).detach())
    frc = cams.new_zeros(())
    brc = cams.new_zeros(())
    for b in range(num_images):
        classes = labels[b].nonzero()[:, 0].tolist()
        for k, c in enumerate(classes):
            a = maps[b * num_classes + c][None]
            x = pixels[b][None]
            m = masks[b * num_classes + c][None]
            v_f = F.normalize(clip(a * x, m)[0], dim=0)
            v_b = F.normalize(clip((1 - a) * x, 1 - m)[0], dim=0)
            qa = {key: value[k] for key, value in qa_feats[b].items()}
            answers = qa['fg_feats'][qa['fg_mask']]
            t_f = label_weight * qa['class_feats']
            if len(answers):
                t_f = t_f + (1 - label_weight) * answers.mean(0)
            else:
                t_f = qa['class_feats']
            t_b = qa['bg_feats'][qa['bg_mask']]
            if len(t_b) == 0:  # no BG answer left: skipped by both losses
                continue
            pos = torch.exp(v_f @ t_f / tau)
            neg = torch.exp(t_b @ v_f / tau).sum()
            frc = frc - torch.log(pos / (pos + neg))
            p = torch.exp(t_b @ v_b / tau).mean()
            brc = brc - torch.log(p / (p + torch.exp(v_b @ t_f / tau)))
    w_frc, w_brc, w_reg = loss_weights
    return dict(loss_frc=w_frc * frc, loss_brc=w_brc * brc,
                loss_reg=w_reg * cams.mean())
