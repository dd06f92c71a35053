"""The CAM network of QA-CLIMS / CLIMS stage 2 (RITC training)."""
from typing import Dict, Sequence

import torch
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample

from .cam_classifier import CAMClassifier, multi_hot_labels


@MODELS.register_module()
class RITCClassifier(CAMClassifier):
    """:class:`CAMClassifier` trained with a region-text head (RITC, CLIMS).

    Training hands the head the features, the input images and the samples
    (their ``qa_feats``), since the losses look at CAM-weighted image regions
    through CLIP. Inference is the CAM stage's, unchanged (ReLU of the class
    maps, multi-scale + flip, spec §6.1).
    """

    def loss(self, inputs: torch.Tensor,
             data_samples: Sequence[SegDataSample]) -> Dict[str, torch.Tensor]:
        labels = multi_hot_labels(data_samples, self.num_classes,
                                  inputs.device)
        return self.cam_head.loss(self.extract_feat(inputs), inputs, labels,
                                  data_samples)
