from .balanced_ce import BalancedCrossEntropyLoss, balanced_cross_entropy
from .clims_losses import (CLIMS_BACKGROUND_WORDS, CLIMS_CBS_THRESHOLDS,
                           CLIMS_CLASS_RENAMES, CLIMS_PROMPT_TEMPLATE,
                           CLIMSBackgroundLoss, CLIMSContextSuppressionLoss,
                           CLIMSObjectLoss, clims_background_prompts,
                           clims_class_prompts)
from .multilabel_loss import MultiLabelSoftMarginLoss
from .region_contrastive import (AreaRegularizationLoss,
                                 BGRegionContrastiveLoss,
                                 FGRegionContrastiveLoss, blend_fg_text)

__all__ = [
    'MultiLabelSoftMarginLoss', 'BalancedCrossEntropyLoss',
    'balanced_cross_entropy', 'FGRegionContrastiveLoss',
    'BGRegionContrastiveLoss', 'AreaRegularizationLoss', 'blend_fg_text',
    'CLIMSObjectLoss', 'CLIMSBackgroundLoss', 'CLIMSContextSuppressionLoss',
    'CLIMS_BACKGROUND_WORDS', 'CLIMS_CBS_THRESHOLDS', 'CLIMS_CLASS_RENAMES',
    'CLIMS_PROMPT_TEMPLATE', 'clims_background_prompts', 'clims_class_prompts'
]
