"""Region contrastive losses of QA-CLIMS (spec §5), vectorised over pairs.

All losses work on a batch of ``K`` positive (image, class) pairs, stacked in
row-major ``(b, c)`` order by the caller (the RITC head):

* ``img_feats`` ``[K, D]``: CLIP image embeddings of the FG (or BG) region,
  *unnormalised*; the losses L2-normalise them.
* ``fg_text`` ``[K, D]``: the FG text vector ``t_f`` of every pair
  (:func:`blend_fg_text`), *not* normalised (spec §2.6).
* ``bg_texts`` ``[K, L, D]``: the pair's L2-normalised BG answer features,
  padded to the largest ``L`` of the batch; ``bg_mask`` ``[K, L]`` (bool)
  marks the real ones. Padded rows are ignored whatever they hold.

A pair without any BG answer (``bg_mask[k]`` all False) is skipped by both
contrastive losses, as in the official training loop. The losses are
**summed** over the remaining pairs (``reduction='sum'``, official, spec
§9.2 item 6); ``reduction='mean'`` averages them instead.
"""
from typing import Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmseg.registry import MODELS

_REDUCTIONS = ('sum', 'mean')


def blend_fg_text(class_feats: torch.Tensor,
                  fg_feats: torch.Tensor,
                  fg_mask: Optional[torch.Tensor] = None,
                  label_weight: float = 0.5) -> torch.Tensor:
    """The FG text vector ``t_f`` of every pair (spec §2.6).

    ``t_f = λ·e(class) + (1 − λ)·mean_q e(answer_q)`` over the pair's valid FG
    answers. With all six answers valid this is the official fixed weighting
    ``w_q = 1/6``. The result is **not** re-normalised (its norm is ≤ 1 for
    unit inputs).

    A pair with no valid FG answer gets ``t_f = e(class)`` (the whole weight
    on the class prompt). The official corpus never has this case, since
    every FG question has an answer.

    Args:
        class_feats (torch.Tensor): Class prompt features ``e(class)``,
            ``[K, D]``.
        fg_feats (torch.Tensor): FG answer features, ``[K, Q, D]``.
        fg_mask (torch.Tensor, optional): ``[K, Q]`` bool, True for the real
            answers. Defaults to None (all valid).
        label_weight (float): λ, the weight of the class prompt. Defaults to
            0.5 (``label_weight_init``).

    Returns:
        torch.Tensor: ``t_f``, ``[K, D]``.
    """
    if not 0.0 <= label_weight <= 1.0:
        raise ValueError(f'label_weight must be in [0, 1], got {label_weight}')
    if class_feats.dim() != 2 or fg_feats.dim() != 3 or \
            fg_feats.shape[0] != class_feats.shape[0] or \
            fg_feats.shape[2] != class_feats.shape[1]:
        raise ValueError(
            'blend_fg_text expects class_feats [K, D] and fg_feats [K, Q, D], '
            f'got {tuple(class_feats.shape)} and {tuple(fg_feats.shape)}')
    if fg_mask is None:
        fg_mask = fg_feats.new_ones(fg_feats.shape[:2], dtype=torch.bool)
    elif tuple(fg_mask.shape) != tuple(fg_feats.shape[:2]):
        raise ValueError(f'fg_mask must be {tuple(fg_feats.shape[:2])}, '
                         f'got {tuple(fg_mask.shape)}')
    fg_mask = fg_mask.bool()
    # masked_fill (not a product) so that padded rows cannot leak NaNs
    fg_feats = fg_feats.masked_fill(~fg_mask[..., None], 0)
    num_valid = fg_mask.sum(dim=1, keepdim=True)  # [K, 1]
    answer_mean = fg_feats.sum(dim=1) / num_valid.clamp(min=1).to(
        fg_feats.dtype)  # [K, D]
    blended = label_weight * class_feats + (1.0 - label_weight) * answer_mean
    return torch.where(num_valid > 0, blended, class_feats)


def _check_pair_inputs(img_feats: torch.Tensor, fg_text: torch.Tensor,
                       bg_texts: torch.Tensor, bg_mask: torch.Tensor,
                       name: str) -> None:
    if img_feats.dim() != 2:
        raise ValueError(f'{name}: img_feats must be [K, D], '
                         f'got {tuple(img_feats.shape)}')
    if tuple(fg_text.shape) != tuple(img_feats.shape):
        raise ValueError(f'{name}: fg_text must match img_feats '
                         f'{tuple(img_feats.shape)}, got '
                         f'{tuple(fg_text.shape)}')
    k, d = img_feats.shape
    if bg_texts.dim() != 3 or bg_texts.shape[0] != k or \
            bg_texts.shape[2] != d:
        raise ValueError(f'{name}: bg_texts must be [K={k}, L, D={d}], '
                         f'got {tuple(bg_texts.shape)}')
    if tuple(bg_mask.shape) != tuple(bg_texts.shape[:2]):
        raise ValueError(f'{name}: bg_mask must be {tuple(bg_texts.shape[:2])}'
                         f', got {tuple(bg_mask.shape)}')


def _similarity_logits(
        img_feats: torch.Tensor, fg_text: torch.Tensor, bg_texts: torch.Tensor,
        bg_mask: torch.Tensor,
        tau: float) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Logits of the kept pairs.

    Returns:
        tuple: ``fg_logit`` ``[K', 1]`` (``v·t_f/τ``), ``bg_logits``
        ``[K', L]`` (``v·t_b/τ``, ``-inf`` at padded entries) and the kept
        ``bg_mask`` ``[K', L]``, for the ``K'`` pairs with a BG answer.
    """
    bg_mask = bg_mask.bool()
    keep = bg_mask.any(dim=1).nonzero(as_tuple=True)[0]  # [K']
    # Skipped pairs are dropped before any arithmetic, so they contribute
    # neither a value nor a (NaN) gradient; an empty selection still keeps
    # the graph connected to img_feats.
    img = img_feats[keep]
    if img.dtype in (torch.float16, torch.bfloat16):
        img = img.float()
    img = F.normalize(img, dim=-1)  # [K', D]
    fg = fg_text[keep].to(img.dtype)  # [K', D]
    mask = bg_mask[keep]  # [K', L]
    bg = bg_texts[keep].to(img.dtype).masked_fill(~mask[..., None], 0)
    fg_logit = (img * fg).sum(dim=-1, keepdim=True) / tau  # [K', 1]
    bg_logits = torch.einsum('kd,kld->kl', img, bg) / tau  # [K', L]
    bg_logits = bg_logits.masked_fill(~mask, float('-inf'))
    return fg_logit, bg_logits, mask


class _RegionContrastiveLoss(nn.Module):
    """Shared arguments, checks, logits and reduction of
    :class:`FGRegionContrastiveLoss` and :class:`BGRegionContrastiveLoss`;
    a subclass supplies only its per-pair loss (``_per_pair``)."""

    def __init__(self, tau: float, loss_weight: float, reduction: str,
                 loss_name: str) -> None:
        super().__init__()
        if tau <= 0:
            raise ValueError(f'tau must be positive, got {tau}')
        if reduction not in _REDUCTIONS:
            raise ValueError(f'reduction must be one of {_REDUCTIONS}, '
                             f'got {reduction!r}')
        self.tau = tau
        self.loss_weight = loss_weight
        self.reduction = reduction
        self._loss_name = loss_name

    def forward(self, img_feats: torch.Tensor, fg_text: torch.Tensor,
                bg_texts: torch.Tensor, bg_mask: torch.Tensor) -> torch.Tensor:
        """Weighted loss of the batch.

        Args:
            img_feats (torch.Tensor): Region embeddings, ``[K, D]`` (FG
                ``v_if`` for L_FRC, BG ``v_ib`` for L_BRC; normalised here).
            fg_text (torch.Tensor): FG text vectors ``t_f``, ``[K, D]`` (used
                as given, not normalised).
            bg_texts (torch.Tensor): Normalised BG answer features, padded,
                ``[K, L, D]``.
            bg_mask (torch.Tensor): ``[K, L]`` bool, True for real answers.

        Returns:
            torch.Tensor: A scalar; a zero attached to ``img_feats``' graph
            when every pair is skipped.
        """
        _check_pair_inputs(img_feats, fg_text, bg_texts, bg_mask,
                           type(self).__name__)
        fg_logit, bg_logits, mask = _similarity_logits(img_feats, fg_text,
                                                       bg_texts, bg_mask,
                                                       self.tau)
        return self._reduce(self._per_pair(fg_logit, bg_logits, mask))

    def _per_pair(self, fg_logit: torch.Tensor, bg_logits: torch.Tensor,
                  mask: torch.Tensor) -> torch.Tensor:
        """Unweighted loss of each kept pair, ``[K']``, from the FG logit
        ``[K', 1]``, the masked BG logits ``[K', L]`` and the mask."""
        raise NotImplementedError

    def _reduce(self, per_pair: torch.Tensor) -> torch.Tensor:
        loss = per_pair.sum()
        if self.reduction == 'mean':
            loss = loss / max(per_pair.numel(), 1)
        return self.loss_weight * loss

    @property
    def loss_name(self) -> str:
        return self._loss_name

    def extra_repr(self) -> str:
        return (f'tau={self.tau}, loss_weight={self.loss_weight}, '
                f'reduction={self.reduction!r}')


@MODELS.register_module()
class FGRegionContrastiveLoss(_RegionContrastiveLoss):
    """Foreground Region Contrastive loss, L_FRC (spec §5).

    For each kept pair, an InfoNCE with the FG text as the only positive and
    the pair's own BG answers as negatives::

        L_FRC = −log(exp(v_f·t_f/τ) / (exp(v_f·t_f/τ) + Σ_n exp(v_f·t_b,n/τ)))

    computed as ``logsumexp − positive logit``.

    Args:
        tau (float): Temperature τ. Defaults to 0.7 (``--nce_t``).
        loss_weight (float): Multiplier h1. Defaults to 10.0 (VOC; 30 on
            COCO).
        reduction (str): ``'sum'`` over kept pairs (official) or ``'mean'``.
            Defaults to 'sum'.
        loss_name (str): Key in the loss dict. Defaults to 'loss_frc'.
    """

    # what RegionTextHead passes to forward, in order
    region_text_inputs = ('fg_regions', 'fg_text', 'bg_texts', 'bg_mask')

    def __init__(self,
                 tau: float = 0.7,
                 loss_weight: float = 10.0,
                 reduction: str = 'sum',
                 loss_name: str = 'loss_frc') -> None:
        super().__init__(tau, loss_weight, reduction, loss_name)

    def _per_pair(self, fg_logit: torch.Tensor, bg_logits: torch.Tensor,
                  mask: torch.Tensor) -> torch.Tensor:
        logits = torch.cat([fg_logit, bg_logits], dim=1)  # [K', 1 + L]
        return torch.logsumexp(logits, dim=1) - fg_logit[:, 0]  # [K']


@MODELS.register_module()
class BGRegionContrastiveLoss(_RegionContrastiveLoss):
    """Background Region Contrastive loss, L_BRC (spec §5).

    For each kept pair, the "positive" is the mean over its BG answers of the
    exponentiated similarities and the negative is the FG text::

        P = (1/L) Σ_n exp(v_b·t_b,n/τ)
        L_BRC = −log( P / (P + exp(v_b·t_f/τ)) )

    computed stably as ``softplus(v_b·t_f/τ − log P)`` with
    ``log P = logsumexp − log L``.

    Args:
        tau (float): Temperature τ. Defaults to 0.7 (``--nce_t``).
        loss_weight (float): Multiplier h2. Defaults to 8.0 (VOC; 24 on
            COCO).
        reduction (str): ``'sum'`` over kept pairs (official) or ``'mean'``.
            Defaults to 'sum'.
        loss_name (str): Key in the loss dict. Defaults to 'loss_brc'.
    """

    # what RegionTextHead passes to forward, in order
    region_text_inputs = ('bg_regions', 'fg_text', 'bg_texts', 'bg_mask')

    def __init__(self,
                 tau: float = 0.7,
                 loss_weight: float = 8.0,
                 reduction: str = 'sum',
                 loss_name: str = 'loss_brc') -> None:
        super().__init__(tau, loss_weight, reduction, loss_name)

    def _per_pair(self, fg_logit: torch.Tensor, bg_logits: torch.Tensor,
                  mask: torch.Tensor) -> torch.Tensor:
        num_valid = mask.sum(dim=1).to(bg_logits.dtype)  # [K'], all >= 1
        log_pos = torch.logsumexp(bg_logits, dim=1) - num_valid.log()
        return F.softplus(fg_logit[:, 0] - log_pos)  # [K']


@MODELS.register_module()
class AreaRegularizationLoss(nn.Module):
    """Area regularisation, L_REG = mean of the CAMs (spec §3.5 step 7).

    The mean runs over every entry of ``[B, C, h, w]``, absent classes
    included, so it both shrinks the activated area and suppresses the
    classes that are not in the image.

    Args:
        loss_weight (float): Multiplier h3. Defaults to 0.2.
        loss_name (str): Key in the loss dict. Defaults to 'loss_reg'.
    """

    # what RegionTextHead passes to forward
    region_text_inputs = ('cams', )

    def __init__(self,
                 loss_weight: float = 0.2,
                 loss_name: str = 'loss_reg') -> None:
        super().__init__()
        self.loss_weight = loss_weight
        self._loss_name = loss_name

    def forward(self, cams: torch.Tensor) -> torch.Tensor:
        """Weighted mean of ``cams`` (sigmoid maps ``[B, C, h, w]``)."""
        if cams.numel() == 0:
            raise ValueError('AreaRegularizationLoss got an empty CAM tensor '
                             f'of shape {tuple(cams.shape)}')
        return self.loss_weight * cams.mean()

    @property
    def loss_name(self) -> str:
        return self._loss_name

    def extra_repr(self) -> str:
        return f'loss_weight={self.loss_weight}'
