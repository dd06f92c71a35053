"""The CLIMS losses (OTM, BTM, CBS), the baseline QA-CLIMS is compared with.

These follow the improved CLIMS repository version (spec §5, comparison
table). Every loss works on ``K`` positive (image, class) pairs stacked in
row-major ``(b, c)`` order and uses cosine similarity: image and text
features are both L2-normalised inside the loss. REG is shared with QA-CLIMS
(:class:`~qaclims_mm.models.losses.region_contrastive.AreaRegularizationLoss`,
``loss_weight=0.2``).

The CLIMS text prompts are ``'a photo of {}.'`` with a single class name;
CLIMS writes ``person`` as ``player`` (:func:`clims_class_prompts`). The
context-suppression loss uses a fixed list of background prompts per dataset
(:data:`CLIMS_BACKGROUND_WORDS`, :func:`clims_background_prompts`); encoding
them with the CLIP text tower is left to the caller.
"""
from typing import Dict, List, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmseg.registry import MODELS

#: The CLIMS text prompt template, for classes and background words alike.
CLIMS_PROMPT_TEMPLATE = 'a photo of {}.'

#: Class names that CLIMS replaces in its text prompts.
CLIMS_CLASS_RENAMES: Dict[str, str] = {'person': 'player'}

#: The fixed background words of the CBS loss (``'voc'``: 10, ``'coco'``: 88).
CLIMS_BACKGROUND_WORDS: Dict[str, Tuple[str, ...]] = {
    'voc': ('tree', 'river', 'sea', 'lake', 'water', 'railway', 'railroad',
            'track', 'stone', 'rocks'),
    'coco':
    ('street sign', 'mountain', 'video game', 'men', 'track', 'bus stop',
     'cabinet', 'tray', 'plate', 'shirt', 'city street', 'runway', 'tower',
     'ramp', 'grass', 'pillow', 'urinal', 'lake', 'brick', 'fence', 'shower',
     'airport', 'animal', 'shower curtain', 'road', 'mirror', 'jacket',
     'church', 'snow', 'fruit', 'hay', 'floor', 'field', 'street', 'mouth',
     'steam engine', 'cheese', 'river', 'tree branch', 'suit', 'child', 'soup',
     'desk', 'tub', 'tennis court', 'teeth', 'bridge', 'sky', 'officer',
     'sidewalk', 'dock', 'tree', 'court', 'rock', 'board', 'branch', 'pan',
     'box', 'body', 'salad', 'dirt', 'leaf', 'hand', 'highway', 'vegetable',
     'computer monitor', 'door', 'meat', 'pair', 'beach', 'harbor', 'ocean',
     'baseball player', 'girl', 'market', 'window', 'blanket', 'boy', 'woman',
     'bat', 'baby', 'flower', 'wall', 'bath tub', 'tarmac', 'tennis ball',
     'roll', 'park'),
}

#: The CBS similarity threshold per dataset (``--cbs_loss_thresh``).
CLIMS_CBS_THRESHOLDS: Dict[str, float] = {'voc': 0.26, 'coco': 0.285}


def clims_class_prompts(class_names: Sequence[str]) -> List[str]:
    """CLIMS class prompts, ``'a photo of {name}.'`` with ``person → player``.

    Args:
        class_names (Sequence[str]): Class names in label order.

    Returns:
        list[str]: One prompt per class.
    """
    return [
        CLIMS_PROMPT_TEMPLATE.format(CLIMS_CLASS_RENAMES.get(name, name))
        for name in class_names
    ]


def clims_background_prompts(dataset: str = 'voc') -> List[str]:
    """The fixed CBS background prompts of ``'voc'`` or ``'coco'``.

    Args:
        dataset (str): Dataset key. Defaults to 'voc'.

    Returns:
        list[str]: ``'a photo of {word}.'`` for every background word.
    """
    try:
        words = CLIMS_BACKGROUND_WORDS[dataset.lower()]
    except KeyError:
        raise ValueError(
            f'no CLIMS background prompts for {dataset!r}; '
            f'expected one of {sorted(CLIMS_BACKGROUND_WORDS)}') from None
    return [CLIMS_PROMPT_TEMPLATE.format(word) for word in words]


def _normalize(feats: torch.Tensor) -> torch.Tensor:
    if feats.dtype in (torch.float16, torch.bfloat16):
        feats = feats.float()
    return F.normalize(feats, dim=-1)


def _pair_cosine(img_feats: torch.Tensor, text_feats: torch.Tensor,
                 name: str) -> torch.Tensor:
    """Cosine similarity of matching rows, ``[K]``."""
    if img_feats.dim() != 2 or tuple(text_feats.shape) != tuple(
            img_feats.shape):
        raise ValueError(f'{name}: img_feats and text_feats must both be '
                         f'[K, D], got {tuple(img_feats.shape)} and '
                         f'{tuple(text_feats.shape)}')
    img = _normalize(img_feats)
    text = _normalize(text_feats).to(img.dtype)
    return (img * text).sum(dim=-1)


class _CLIMSLoss(nn.Module):

    def __init__(self, loss_weight: float, loss_name: str) -> None:
        super().__init__()
        self.loss_weight = loss_weight
        self._loss_name = loss_name

    @property
    def loss_name(self) -> str:
        return self._loss_name


class _CLIMSMatchingLoss(_CLIMSLoss):
    """A clamped cosine, averaged over pairs (OTM and BTM)."""

    def __init__(self, loss_weight: float, clamp_min: float, clamp_max: float,
                 loss_name: str) -> None:
        super().__init__(loss_weight, loss_name)
        if not 0.0 < clamp_min < clamp_max < 1.0:
            raise ValueError('need 0 < clamp_min < clamp_max < 1, got '
                             f'{clamp_min}, {clamp_max}')
        self.clamp_min = clamp_min
        self.clamp_max = clamp_max

    def _per_pair(self, cos: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, img_feats: torch.Tensor,
                text_feats: torch.Tensor) -> torch.Tensor:
        """Weighted loss of ``K`` pairs.

        Args:
            img_feats (torch.Tensor): Region embeddings, ``[K, D]``.
            text_feats (torch.Tensor): The pair's class prompt features,
                ``[K, D]``.

        Returns:
            torch.Tensor: A scalar; a zero attached to the graph when
            ``K = 0``.
        """
        cos = _pair_cosine(img_feats, text_feats, type(self).__name__)
        cos = cos.clamp(self.clamp_min, self.clamp_max)
        per_pair = self._per_pair(cos)  # [K]
        loss = per_pair.sum() / max(per_pair.numel(), 1)
        return self.loss_weight * loss

    def extra_repr(self) -> str:
        return (f'loss_weight={self.loss_weight}, '
                f'clamp=({self.clamp_min}, {self.clamp_max})')


@MODELS.register_module()
class CLIMSObjectLoss(_CLIMSMatchingLoss):
    """Object-to-text matching, OTM (CLIMS ``SimMaxLoss``).

    ``mean_k −log(clamp(cos(v_fg,k, t_class,k), 1e-4, 0.9999))``: pulls the
    FG region towards its class prompt.

    Args:
        loss_weight (float): Multiplier. Defaults to 10.0 (CLIMS VOC hyper).
        clamp_min (float): Lower clamp of the cosine. Defaults to 1e-4.
        clamp_max (float): Upper clamp of the cosine. Defaults to 0.9999.
        loss_name (str): Key in the loss dict. Defaults to 'loss_otm'.
    """

    # what RegionTextHead passes to forward, in order
    region_text_inputs = ('fg_regions', 'fg_text')

    def __init__(self,
                 loss_weight: float = 10.0,
                 clamp_min: float = 1e-4,
                 clamp_max: float = 0.9999,
                 loss_name: str = 'loss_otm') -> None:
        super().__init__(loss_weight, clamp_min, clamp_max, loss_name)

    def _per_pair(self, cos: torch.Tensor) -> torch.Tensor:
        return -torch.log(cos)


@MODELS.register_module()
class CLIMSBackgroundLoss(_CLIMSMatchingLoss):
    """Background-to-text matching, BTM (CLIMS ``SimMinLoss``).

    ``mean_k −log(1 − clamp(cos(v_bg,k, t_class,k), 1e-4, 0.9999))``: pushes
    the BG region away from the class prompt.

    Args:
        loss_weight (float): Multiplier. Defaults to 24.0 (CLIMS VOC hyper).
        clamp_min (float): Lower clamp of the cosine. Defaults to 1e-4.
        clamp_max (float): Upper clamp of the cosine. Defaults to 0.9999.
        loss_name (str): Key in the loss dict. Defaults to 'loss_btm'.
    """

    # what RegionTextHead passes to forward, in order
    region_text_inputs = ('bg_regions', 'fg_text')

    def __init__(self,
                 loss_weight: float = 24.0,
                 clamp_min: float = 1e-4,
                 clamp_max: float = 0.9999,
                 loss_name: str = 'loss_btm') -> None:
        super().__init__(loss_weight, clamp_min, clamp_max, loss_name)

    def _per_pair(self, cos: torch.Tensor) -> torch.Tensor:
        return -torch.log1p(-cos)


@MODELS.register_module()
class CLIMSContextSuppressionLoss(_CLIMSLoss):
    """Co-occurring background suppression, CBS (CLIMS
    ``BackgroundSuppressionLoss``).

    ``Σ_k Σ_p [cos(v_fg,k, t_p) > threshold] · −log(1 − cos(v_fg,k, t_p))``
    over the pairs and a fixed set of background prompt features: a **sum**,
    not a mean, with only the prompts above the threshold (strictly)
    counting. CLIMS applies no clamp; here the cosine is clamped at
    ``clamp_max`` (0.9999) so that a degenerate ``cos = 1`` cannot give
    ``inf``; below that the two agree.

    Args:
        threshold (float): Similarity threshold. Defaults to 0.26 (VOC; 0.285
            on COCO, see :data:`CLIMS_CBS_THRESHOLDS`).
        loss_weight (float): Multiplier. Defaults to 1.0 (CLIMS VOC hyper).
        clamp_max (float): Upper clamp of the cosine. Defaults to 0.9999.
        loss_name (str): Key in the loss dict. Defaults to 'loss_cbs'.
    """

    # what RegionTextHead passes to forward, in order
    region_text_inputs = ('fg_regions', 'bg_prompts')

    def __init__(self,
                 threshold: float = 0.26,
                 loss_weight: float = 1.0,
                 clamp_max: float = 0.9999,
                 loss_name: str = 'loss_cbs') -> None:
        super().__init__(loss_weight, loss_name)
        if not threshold < clamp_max < 1.0:
            raise ValueError('need threshold < clamp_max < 1, got '
                             f'{threshold}, {clamp_max}')
        self.threshold = threshold
        self.clamp_max = clamp_max

    def forward(self, img_feats: torch.Tensor,
                bg_prompt_feats: torch.Tensor) -> torch.Tensor:
        """Weighted CBS of ``K`` FG regions.

        Args:
            img_feats (torch.Tensor): FG region embeddings, ``[K, D]``.
            bg_prompt_feats (torch.Tensor): Background prompt features,
                ``[P, D]``.

        Returns:
            torch.Tensor: A scalar; a zero attached to the graph when no
            similarity exceeds the threshold or ``K = 0``.
        """
        if img_feats.dim() != 2 or bg_prompt_feats.dim() != 2 or \
                img_feats.shape[1] != bg_prompt_feats.shape[1]:
            raise ValueError(
                f'{type(self).__name__}: expected img_feats [K, D] and '
                f'bg_prompt_feats [P, D], got {tuple(img_feats.shape)} and '
                f'{tuple(bg_prompt_feats.shape)}')
        img = _normalize(img_feats)
        prompts = _normalize(bg_prompt_feats).to(img.dtype)
        cos = img @ prompts.t()  # [K, P]
        active = cos > self.threshold
        # Inactive entries are ≤ threshold < 1, so log1p stays finite there
        # and where() passes them a zero gradient.
        per_entry = -torch.log1p(-cos.clamp(max=self.clamp_max))
        loss = torch.where(active, per_entry, torch.zeros_like(per_entry))
        return self.loss_weight * loss.sum()

    def extra_repr(self) -> str:
        return (f'threshold={self.threshold}, '
                f'loss_weight={self.loss_weight}, clamp_max={self.clamp_max}')
