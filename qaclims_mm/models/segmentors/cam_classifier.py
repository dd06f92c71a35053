"""A classification network whose class activation maps are its output."""
from typing import Dict, List, Optional, Sequence, Union

import torch
from mmengine.structures import PixelData
from mmseg.models.segmentors import BaseSegmentor
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample

from ..utils.cam_ops import (aggregate_multiscale_cams, cams_to_seg,
                             flip_fused_cams)
from .checkpoint_guard import StrictCheckpointMixin, segmentor_base_kwargs

Inputs = Union[torch.Tensor, List[List[torch.Tensor]]]


def scale_major_inputs(inputs: List[List[torch.Tensor]],
                       data_samples: Sequence[SegDataSample]
                       ) -> List[List[torch.Tensor]]:
    """Nested multi-scale inputs as ``inputs[s][b]`` (scale, then image).

    A collated batch (dataloader, ``MMSegInferencer``) is scale-major;
    ``mmseg.apis.inference_model`` hands the samples' inputs uncollated, one
    list of scales per image (``inputs[b][s]``). The samples' ``ms_scales``
    and ``ori_shape`` decide: the reading whose image sizes are
    ``round(ori_shape * scale)`` (±1 pixel) wins; scale-major when both fit.

    Args:
        inputs (list[list[Tensor]]): Nested CHW images.
        data_samples (Sequence[SegDataSample]): One per image.
    """
    metas = [s.metainfo for s in data_samples]
    if not metas or not all('ms_scales' in m and 'ori_shape' in m
                            for m in metas):
        return inputs

    def fits(pick) -> bool:
        try:
            for b, meta in enumerate(metas):
                h, w = meta['ori_shape'][:2]
                for s, scale in enumerate(meta['ms_scales']):
                    got = pick(b, s).shape[-2:]
                    if abs(got[0] - round(h * scale)) > 1 or \
                            abs(got[1] - round(w * scale)) > 1:
                        return False
        except IndexError:
            return False
        return True

    if not fits(lambda b, s: inputs[s][b]) and \
            fits(lambda b, s: inputs[b][s]):
        return [list(scale) for scale in zip(*inputs)]
    return inputs


@MODELS.register_module()
class CAMClassifier(StrictCheckpointMixin, BaseSegmentor):
    """Image-level classifier producing CAMs (the CAM stage of WSSS, and the
    QA-CLIMS / CLIMS stage 2 with a :class:`RegionTextHead`).

    * ``loss``: backbone → ``cam_head.loss(feats, data_samples, train_cfg,
      images=inputs)``: every CAM head reads the labels from the samples;
      the input batch goes along for heads that cut image regions.
    * ``predict``: multi-scale + flip CAM inference (spec §6.1). ``inputs`` is
      a nested list ``inputs[s][b]`` from :class:`MultiScaleImages` (or
      ``inputs[b][s]``, uncollated, from ``mmseg.apis.inference_model``:
      :func:`scale_major_inputs`), or a single-scale ``[B, 3, H, W]``
      batch. For every image and scale the image and its flip go through
      the network as one batch of two; ``ReLU`` of the
      class maps (``cam_head.predict``) is flip-fused, then the scales are
      summed into a stride-4 ``cam`` and a full-resolution ``high_res``, both
      restricted to the image's classes (``keys``) and max-normalised. Each
      output sample gets ``pred_cam`` (a dict: ``keys``, ``cam``,
      ``high_res``) and ``pred_sem_seg`` (the labels at
      ``test_cfg.threshold``, 0 = background, for mmseg metrics,
      visualisation and ``mmseg.apis.inference_model``).

    Args:
        backbone (dict): Any backbone of the mmseg/mmpretrain registries.
        cam_head (dict): The CAM head (``CAMHead`` or a subclass).
        neck (dict, optional): An optional neck.
        train_cfg (dict, optional): Passed to the head's ``loss``.
        test_cfg (dict, optional): ``flip`` (default True), ``threshold``
            (default 0.15), ``cam_stride`` (4), ``up_stride`` (16),
            ``keys`` (``'labels'``: the image's labelled classes, default; or
            ``'all'``) and ``unlabelled_keys``: the classes of an image whose
            sample has no ``img_labels`` (e.g. ``mmseg.apis.inference_model``
            on a new image) when ``keys='labels'``: None (default: raise,
            naming the image), ``'all'``, or ``'predicted'`` (the classes
            whose pooled image logit, ``cam_head.classify``, is positive at
            the first scale).
        data_preprocessor (dict, optional): Defaults to
            ``WSSSDataPreProcessor``.
        pretrained (str, optional): Accepted for mmseg's ``init_model``
            (which sets it to None); backbone weights come from
            ``backbone.init_cfg``. Defaults to None.
        init_cfg (dict, optional): Initialisation config.
        allow_missing_keys (Sequence[str]): ``fnmatch`` patterns of model
            keys a loaded checkpoint may lack. Any other missing or
            size-mismatched key makes ``load_from``, ``--resume`` and
            ``tools/test.py`` fail (:class:`StrictCheckpointMixin`).
            Defaults to ().
        allow_mismatched_keys (Sequence[str]): ``fnmatch`` patterns of
            model keys a loaded checkpoint may hold with another shape (e.g.
            a head of another class count): those tensors are not loaded,
            keep their initialisation, and a warning names them. Defaults to
            ().
    """

    def __init__(self,
                 backbone: dict,
                 cam_head: dict,
                 neck: Optional[dict] = None,
                 train_cfg: Optional[dict] = None,
                 test_cfg: Optional[dict] = None,
                 data_preprocessor: Optional[dict] = None,
                 pretrained: Optional[str] = None,
                 init_cfg: Optional[dict] = None,
                 allow_missing_keys: Sequence[str] = (),
                 allow_mismatched_keys: Sequence[str] = ()) -> None:
        super().__init__(**segmentor_base_kwargs(
            'CAMClassifier', pretrained, data_preprocessor, init_cfg))
        self.set_checkpoint_allowances(allow_missing_keys,
                                       allow_mismatched_keys)
        self.backbone = MODELS.build(backbone)
        self.neck = MODELS.build(neck) if neck is not None else None
        self.cam_head = MODELS.build(cam_head)
        self.num_classes = self.cam_head.num_classes
        self.train_cfg = train_cfg or {}
        self.test_cfg = dict(
            flip=True, threshold=0.15, cam_stride=4, up_stride=16,
            keys='labels', unlabelled_keys=None)
        self.test_cfg.update(test_cfg or {})
        if self.test_cfg['keys'] not in ('labels', 'all'):
            raise ValueError(f"test_cfg.keys must be 'labels' or 'all', got "
                             f"{self.test_cfg['keys']!r}")
        if self.test_cfg['unlabelled_keys'] not in (None, 'all', 'predicted'):
            raise ValueError(
                "test_cfg.unlabelled_keys must be None, 'all' or "
                f"'predicted', got {self.test_cfg['unlabelled_keys']!r}")

    def _checkpoint_hint(self, state_dict: dict, prefix: str) -> str:
        if any(k.startswith(('resnet50.', 'stage1.', 'module.resnet50.'))
               for k in state_dict):
            return (' It is in the official IRN/CLIMS layout: convert it '
                    'with tools/model_converters/official_cam_to_mmseg.py')
        return ''

    # ------------------------------------------------------------------ core
    def extract_feat(self, inputs: torch.Tensor) -> List[torch.Tensor]:
        """Backbone (and neck) features."""
        feats = self.backbone(inputs)
        if self.neck is not None:
            feats = self.neck(feats)
        return feats

    def encode_decode(self, inputs: torch.Tensor,
                      batch_img_metas: List[dict]) -> torch.Tensor:
        """Inference CAMs ``[B, C, h, w]`` at the feature stride."""
        return self.cam_head.predict(self.extract_feat(inputs),
                                     batch_img_metas, self.test_cfg)

    def _forward(self, inputs: torch.Tensor,
                 data_samples: Optional[list] = None) -> torch.Tensor:
        """Raw class maps ``[B, C, h, w]`` (``mode='tensor'``)."""
        return self.cam_head(self.extract_feat(inputs))

    def loss(self, inputs: torch.Tensor,
             data_samples: Sequence[SegDataSample]) -> Dict[str, torch.Tensor]:
        return self.cam_head.loss(self.extract_feat(inputs), data_samples,
                                  self.train_cfg, images=inputs)

    # ------------------------------------------------------------- inference
    def _scale_cams(self, img: torch.Tensor) -> torch.Tensor:
        """Flip-fused ReLU CAMs ``[C, h, w]`` of one ``[3, H, W]`` image."""
        if self.test_cfg['flip']:
            maps = self.cam_head.predict(
                self.extract_feat(torch.stack([img, img.flip(-1)])))
            return flip_fused_cams(maps)
        return self.cam_head.predict(self.extract_feat(img[None]))[0]

    def _keys(self, sample: SegDataSample, img: torch.Tensor) -> torch.Tensor:
        """Class indices of the CAMs of one image (``img``: first scale)."""
        device = img.device
        mode = self.test_cfg['keys']
        labels = sample.metainfo.get('img_labels')
        img_id = sample.metainfo.get('img_id',
                                     sample.metainfo.get('img_path', '?'))
        if mode == 'labels' and labels is None:
            mode = self.test_cfg['unlabelled_keys']
            if mode is None:
                raise KeyError(
                    f'image {img_id!r} has no img_labels; set '
                    "model.test_cfg.keys='all', or unlabelled_keys="
                    "'predicted' / 'all' to infer CAMs without labels")
        if mode == 'all':
            return torch.arange(self.num_classes, device=device)
        if mode == 'predicted':
            logits = self.cam_head.classify(self.extract_feat(img[None]))[0]
            return (logits > 0).nonzero(as_tuple=True)[0]
        keys = torch.as_tensor(sorted(labels), dtype=torch.long, device=device)
        if keys.numel() and keys.max() >= self.num_classes:
            raise ValueError(
                f'image {img_id!r}: class key '
                f'{int(keys.max())} outside the {self.num_classes} classes')
        return keys

    def predict(self, inputs: Inputs,
                data_samples: Optional[List[SegDataSample]] = None
                ) -> List[SegDataSample]:
        if isinstance(inputs, torch.Tensor):  # single scale: [B, 3, H, W]
            inputs = [list(inputs)]
        elif data_samples is not None:
            inputs = scale_major_inputs(inputs, data_samples)
        num_images = len(inputs[0])
        if data_samples is None:
            data_samples = [SegDataSample() for _ in range(num_images)]
        for b, sample in enumerate(data_samples):
            scales = [scale[b] for scale in inputs]
            ori = sample.metainfo.get('ori_shape', tuple(scales[0].shape[-2:]))
            image_hw = (int(ori[0]), int(ori[1]))
            keys = self._keys(sample, scales[0])
            scale_maps = [self._scale_cams(img) for img in scales]
            cam, high_res = aggregate_multiscale_cams(
                scale_maps, image_hw, keys, self.test_cfg['cam_stride'],
                self.test_cfg['up_stride'])
            # a plain dict: a data element with a field named 'keys' would
            # shadow its keys() method and break mmengine's to_dict()
            sample.set_field(dict(keys=keys, cam=cam, high_res=high_res),
                             'pred_cam')
            sample.pred_sem_seg = PixelData(data=cams_to_seg(
                high_res, keys, self.test_cfg['threshold'])[None])
        return data_samples
