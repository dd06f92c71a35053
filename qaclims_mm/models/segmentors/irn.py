"""IRNet: class boundaries from inter-pixel relations (spec §6.4, §6.5)."""
from typing import Dict, List, Optional, Sequence

import torch
import torch.nn.functional as F
from mmengine.structures import PixelData
from mmseg.models.segmentors import BaseSegmentor
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample

from ...structures.path_index import PathIndex
from ..heads.irn_heads import irn_affinity_displacement_loss
from .checkpoint_guard import StrictCheckpointMixin, segmentor_base_kwargs


@MODELS.register_module()
class IRNet(StrictCheckpointMixin, BaseSegmentor):
    """IRNet over a frozen ResNet: edge and displacement branches.

    * Features: the stem output (after max-pooling) and the four stages of
      an mmseg/mmpretrain-style ``ResNet`` (``conv1/norm1/relu/maxpool`` or
      ``stem``, then ``res_layers``), computed without gradients: the
      backbone is frozen (parameters ``requires_grad=False``, eval mode kept
      by :meth:`train`), as IRN's detached features.
    * ``loss``: boundary probabilities become pair affinities
      (``1 - max edge`` on the path, radius ``train_cfg.radius`` = 10); with
      the displacement differences they enter
      :func:`irn_affinity_displacement_loss`. The pair labels come from the
      ``aff_labels`` field of every data sample (:class:`AffinityLabels`).
    * ``predict``: the boundary map ``sigmoid((e(x) + flip(e(flip(x)))) / 2)``
      at stride 4 (``test_cfg.flip``, default True), cropped to
      ``ceil(H / 4) x ceil(W / 4)`` of the image, as ``pred_edge``
      (``PixelData``, ``[1, h, w]``). The image is not padded by default,
      as QA-CLIMS / CLIMS ``EdgeDisplacement`` (whose ``F.pad`` is commented
      out); ``test_cfg.pad_size`` switches on the original IRN padding.

    Args:
        backbone (dict): A ResNet config (e.g. mmseg ``ResNet``, strides
            (1, 2, 2, 1), ``out_indices=(0, 1, 2, 3)``).
        edge_head (dict): Defaults to ``IRNEdgeHead``.
        displacement_head (dict): Defaults to ``IRNDisplacementHead``.
        train_cfg (dict, optional): ``radius`` of the training pairs
            (default 10).
        test_cfg (dict, optional): ``flip`` (default True), ``stride``
            (default 4) and ``pad_size`` (default None: no padding, as
            QA-CLIMS and CLIMS; an int such as 512 zero-pads the image on the
            right and bottom to at least that size, a multiple of 16, as the
            original IRN repository).
        freeze_backbone (bool): Freeze the backbone. Defaults to True.
        data_preprocessor (dict, optional): Defaults to
            ``WSSSDataPreProcessor``.
        pretrained (str, optional): Accepted for mmseg's ``init_model``
            (which sets it to None); backbone weights come from
            ``backbone.init_cfg``. Defaults to None.
        init_cfg (dict, optional): Initialisation config.
        allow_missing_keys (Sequence[str]): ``fnmatch`` patterns of model
            keys a loaded checkpoint may lack; any other missing or
            size-mismatched key fails the load
            (:class:`StrictCheckpointMixin`). Defaults to ().
        allow_mismatched_keys (Sequence[str]): ``fnmatch`` patterns of
            model keys a loaded checkpoint may hold with another shape (e.g.
            a head of another class count): those tensors are not loaded,
            keep their initialisation, and a warning names them. Defaults to
            ().
    """

    def __init__(self,
                 backbone: dict,
                 edge_head: dict = dict(type='IRNEdgeHead'),
                 displacement_head: dict = dict(type='IRNDisplacementHead'),
                 train_cfg: Optional[dict] = None,
                 test_cfg: Optional[dict] = None,
                 freeze_backbone: bool = True,
                 data_preprocessor: Optional[dict] = None,
                 pretrained: Optional[str] = None,
                 init_cfg: Optional[dict] = None,
                 allow_missing_keys: Sequence[str] = (),
                 allow_mismatched_keys: Sequence[str] = ()) -> None:
        super().__init__(**segmentor_base_kwargs(
            'IRNet', pretrained, data_preprocessor, init_cfg))
        self.set_checkpoint_allowances(allow_missing_keys,
                                       allow_mismatched_keys)
        self.backbone = MODELS.build(backbone)
        if not hasattr(self.backbone, 'res_layers'):
            raise TypeError(f'IRNet needs a ResNet-style backbone with '
                            f'res_layers (and a stem); got '
                            f'{type(self.backbone).__name__}')
        self.edge_head = MODELS.build(edge_head)
        self.displacement_head = MODELS.build(displacement_head)
        self.train_cfg = dict(radius=10)
        self.train_cfg.update(train_cfg or {})
        self.test_cfg = dict(flip=True, stride=4, pad_size=None)
        self.test_cfg.update(test_cfg or {})
        self.path_index = PathIndex(self.train_cfg['radius'])
        self.freeze_backbone = freeze_backbone
        if freeze_backbone:
            for param in self.backbone.parameters():
                param.requires_grad = False

    def train(self, mode: bool = True) -> 'IRNet':
        super().train(mode)
        if self.freeze_backbone:
            self.backbone.eval()
        return self

    # ------------------------------------------------------------------ core
    def _backbone_feats(self, inputs: torch.Tensor) -> List[torch.Tensor]:
        bb = self.backbone
        if getattr(bb, 'deep_stem', False):
            x = bb.stem(inputs)
        else:
            x = bb.relu(bb.norm1(bb.conv1(inputs)))
        x = bb.maxpool(x)
        feats = [x]
        for name in bb.res_layers:
            x = getattr(bb, name)(x)
            feats.append(x)
        return feats

    def extract_feat(self, inputs: torch.Tensor) -> List[torch.Tensor]:
        """The stem and the four stage outputs (detached when frozen)."""
        if self.freeze_backbone:
            with torch.no_grad():
                return self._backbone_feats(inputs)
        return self._backbone_feats(inputs)

    def _forward(self, inputs: torch.Tensor,
                 data_samples: Optional[list] = None) -> tuple:
        """Edge logits ``[B, 1, h, w]`` and displacements ``[B, 2, h, w]``."""
        feats = self.extract_feat(inputs)
        return self.edge_head(feats), self.displacement_head(feats)

    def encode_decode(self, inputs: torch.Tensor,
                      batch_img_metas: List[dict]) -> torch.Tensor:
        """Boundary probabilities ``[B, 1, ceil(H/4), ceil(W/4)]``.

        As QA-CLIMS / CLIMS ``EdgeDisplacement``: the edge logits of the image
        and of its flip are cropped to the image's stride-4 grid, and the
        flipped logits are flipped back and averaged before the sigmoid. By
        default the image is **not** padded (the official ``F.pad`` is
        commented out in QA-CLIMS and CLIMS ``net/resnet50_irn.py``). With an
        int ``test_cfg.pad_size`` the image (and its flip) are first
        zero-padded on the right and bottom to ``pad_size`` (larger images to
        their size rounded up to 16), as the original IRN repository; that
        changes the GroupNorm statistics and the border features, hence the
        edges.
        """
        h, w = inputs.shape[-2:]
        b = inputs.shape[0]
        x = torch.cat([inputs, inputs.flip(-1)]) if self.test_cfg['flip'] \
            else inputs
        pad = self.test_cfg.get('pad_size')
        if pad is not None:
            ph = max(int(pad), -(-h // 16) * 16)
            pw = max(int(pad), -(-w // 16) * 16)
            x = F.pad(x, (0, pw - w, 0, ph - h))
        stride = self.test_cfg['stride']
        logits = self.edge_head(self.extract_feat(x))
        logits = logits[..., :-(-h // stride), :-(-w // stride)]
        if self.test_cfg['flip']:
            return torch.sigmoid(logits[:b] / 2 + logits[b:].flip(-1) / 2)
        return torch.sigmoid(logits)

    def loss(self, inputs: torch.Tensor,
             data_samples: Sequence[SegDataSample]) -> Dict[str, torch.Tensor]:
        feats = self.extract_feat(inputs)
        edge = torch.sigmoid(self.edge_head(feats))[:, 0]  # [B, h, w]
        disp_field = self.displacement_head(feats)  # [B, 2, h, w]
        labels = self._aff_labels(data_samples, edge)  # [B, 3, D, M]
        aff = self.path_index.edge_to_affinity(edge)
        disp = self.path_index.to_displacement(disp_field)
        target = self.path_index.displacement_targets(edge.device)
        return irn_affinity_displacement_loss(aff, disp, target,
                                              labels[:, 0], labels[:, 1],
                                              labels[:, 2])

    def _aff_labels(self, data_samples: Sequence[SegDataSample],
                    edge: torch.Tensor) -> torch.Tensor:
        src, _ = self.path_index.pair_indices(*edge.shape[-2:])
        expect = (3, self.path_index.num_directions, len(src))
        out = []
        for sample in data_samples:
            img_id = sample.metainfo.get('img_id', '?')
            if 'aff_labels' not in sample:
                raise KeyError(
                    f'data sample of image {img_id!r} has no aff_labels; add '
                    f"AffinityLabels and PackWSSSInputs(extra_fields="
                    f"('aff_labels',)) to the training pipeline")
            lab = sample.aff_labels
            if tuple(lab.shape) != expect:
                raise ValueError(
                    f'image {img_id!r}: aff_labels of shape '
                    f'{tuple(lab.shape)} do not match the '
                    f'{tuple(edge.shape[-2:])} edge map (expected {expect}); the label map must be '
                    f'downsampled to the edge stride with the same radius '
                    f'({self.train_cfg["radius"]})')
            out.append(lab.to(device=edge.device, dtype=edge.dtype))
        return torch.stack(out)

    # ------------------------------------------------------------- inference
    def predict(self, inputs: torch.Tensor,
                data_samples: Optional[List[SegDataSample]] = None
                ) -> List[SegDataSample]:
        if data_samples is None:
            data_samples = [SegDataSample() for _ in range(inputs.shape[0])]
        edges = self.encode_decode(
            inputs, [s.metainfo for s in data_samples])  # [B, 1, h, w]
        stride = self.test_cfg['stride']
        for sample, edge in zip(data_samples, edges):
            hw = sample.metainfo.get('img_shape', inputs.shape[-2:])
            h, w = -(-int(hw[0]) // stride), -(-int(hw[1]) // stride)
            sample.pred_edge = PixelData(data=edge[:, :h, :w])
        return data_samples

