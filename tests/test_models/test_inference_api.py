"""mmseg's own inference API on every model config we ship.

``mmseg.apis.init_model`` / ``inference_model`` and ``MMSegInferencer`` with
the shipped configs, the weights replaced by tiny stand-ins (a small ResNet,
a tiny CLIP, a prompt cache of its text tower) saved as MMEngine checkpoints
with the dataset's metainfo, as training writes them.
"""
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.runner import save_checkpoint
from mmseg.registry import MODELS
from PIL import Image

import qaclims_mm  # noqa: F401
from qaclims_mm.datasets.class_names import VOC_CLASSES, VOC_PALETTE
from qaclims_mm.models.utils import cams_to_seg
from qaclims_mm.testing import (TINY_CLIP_TEXT, TINY_CLIP_VISION,
                                save_tiny_clip)

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
VISION, TEXT = TINY_CLIP_VISION, TINY_CLIP_TEXT
VOC_META = dict(classes=('background', ) + tuple(VOC_CLASSES),
                palette=[list(p) for p in VOC_PALETTE])
TINY_R18 = dict(depth=18, base_channels=8, init_cfg=None)  # 64 channels out


@pytest.fixture(scope='module')
def assets(tmp_path_factory):
    """A 37x53 RGB image, a tiny CLIP (vision weights, text folder) and the
    CLIMS prompt cache of its text tower."""
    from qaclims_mm.datasets.class_names import get_classes
    from qaclims_mm.models.losses.clims_losses import (
        clims_background_prompts, clims_class_prompts)
    from qaclims_mm.qape.text_cache import build_prompt_text_cache
    root = tmp_path_factory.mktemp('inference_api')
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (37, 53, 3), dtype=np.uint8)
    Image.fromarray(img).save(root / 'img.png')
    save_tiny_clip(str(root / 'clip.pt'), str(root / 'text'))
    names = get_classes('voc')
    build_prompt_text_cache(f'local-dir:{root / "text"}', None,
                            str(root / 'clims'), names,
                            clims_class_prompts(names),
                            clims_background_prompts('voc'))
    return dict(root=root, img=str(root / 'img.png'), array=img,
                clip=str(root / 'clip.pt'), clims=str(root / 'clims'))


def tiny_config(rel_path: str, assets: dict) -> Config:
    """The shipped config with tiny stand-ins for every weight file."""
    cfg = Config.fromfile(osp.join(REPO, rel_path))
    model = cfg.model
    model.backbone.update(TINY_R18)
    if model.type == 'CAMClassifier':
        model.backbone.norm_cfg = dict(type='BN', requires_grad=True)
        model.cam_head.in_channels = 64
        if model.cam_head.type == 'RegionTextHead':
            model.cam_head.clip.update(model_cfg=VISION, weights=assets['clip'],
                                       ovseg_checkpoint=None)
            model.cam_head.clip_input_size = 32
            if 'cache' in model.cam_head.text_source:
                model.cam_head.text_source.cache = assets['clims']
    elif model.type == 'IRNet':
        model.edge_head.in_channels = (64, 8, 16, 32, 64)
        model.displacement_head.in_channels = (64, 8, 16, 32, 64)
    elif model.type == 'MSCEncoderDecoder':
        model.decode_head.in_channels = 64
    else:  # DeepLabV3+
        model.decode_head.update(in_channels=64, c1_in_channels=8)
        model.auxiliary_head.in_channels = 32
    return cfg


def tiny_checkpoint(cfg: Config, path: str) -> str:
    """Random weights of the tiny model, saved as training saves them."""
    init_default_scope('mmseg')
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    save_checkpoint(dict(state_dict=model.state_dict(),
                         meta=dict(dataset_meta=VOC_META)), path)
    return path


CAM_CONFIGS = [
    'configs/cam/cam_r50-os16_1xb16-5e_voc12aug-512x512.py',
    'configs/qaclims/qaclims_r50-os16_2xb4-19830it_voc12aug-512x512.py',
    'configs/clims/clims_r50-os16_1xb16-15e_voc12aug-512x512.py',
]


@pytest.mark.parametrize('rel_path', CAM_CONFIGS)
def test_cam_models_through_init_model_and_inference_model(assets, rel_path):
    from mmseg.apis import MMSegInferencer, inference_model, init_model
    cfg = tiny_config(rel_path, assets)
    ckpt = tiny_checkpoint(cfg, str(assets['root'] / 'cam.pth'))
    model = init_model(cfg, ckpt, device='cpu')
    assert model.dataset_meta['classes'][0] == 'background'
    # a new image: no labels, the CAMs of the predicted classes
    result = inference_model(model, assets['img'])
    pred = result.pred_cam
    assert tuple(result.pred_sem_seg.data.shape) == (1, 37, 53)
    assert tuple(pred['high_res'].shape) == (len(pred['keys']), 37, 53)
    assert torch.equal(result.pred_sem_seg.data[0],
                       cams_to_seg(pred['high_res'], pred['keys'], 0.15))
    assert pred['keys'].dtype == torch.long
    # the same through an ndarray (BGR, as mmcv.imread) and MMSegInferencer
    from_array = inference_model(model, assets['array'][..., ::-1].copy())
    assert torch.equal(from_array.pred_sem_seg.data,
                       result.pred_sem_seg.data)
    inferencer = MMSegInferencer(model=cfg, weights=ckpt, device='cpu')
    out = inferencer(assets['img'])
    assert np.array_equal(out['predictions'],
                          result.pred_sem_seg.data[0].numpy())


def test_predicted_keys_are_the_positive_pooled_logits(assets):
    """unlabelled_keys='predicted': keys = classes with a positive image
    logit; forcing all logits up gives every class."""
    from mmseg.apis import inference_model, init_model
    cfg = tiny_config(CAM_CONFIGS[0], assets)
    ckpt = tiny_checkpoint(cfg, str(assets['root'] / 'cam_keys.pth'))
    model = init_model(cfg, ckpt, device='cpu')
    with torch.no_grad():
        model.cam_head.classifier.weight.data[:5] = 0
        model.cam_head.classifier.weight.data[5:] = 0.1
    result = inference_model(model, assets['img'])
    # ReLU backbone features are >= 0: weight 0 gives logit 0 (not > 0),
    # positive weights a positive logit
    assert result.pred_cam['keys'].tolist() == list(range(5, 20))


def test_irn_through_init_model_and_inference_model(assets):
    """IRN predicts class boundaries (pred_edge), not a label map: the
    inference API works; MMSegInferencer (which draws pred_sem_seg) is not
    meaningful for it."""
    from mmseg.apis import inference_model, init_model
    cfg = tiny_config('configs/irn/irn_r50_1xb32-3e_voc12aug-512x512.py',
                      assets)
    ckpt = tiny_checkpoint(cfg, str(assets['root'] / 'irn.pth'))
    model = init_model(cfg, ckpt, device='cpu')
    edge = inference_model(model, assets['img']).pred_edge.data
    assert tuple(edge.shape) == (1, 10, 14)  # ceil(37 / 4), ceil(53 / 4)
    assert edge.min() >= 0 and edge.max() <= 1


@pytest.mark.parametrize('rel_path', [
    'configs/deeplab/deeplabv2_r101-os8-msc_1xb10-ga2-30k_voc12aug-pseudo-'
    '321x321.py',
    'configs/deeplab/deeplabv3plus_r101-d8_4xb4-40k_voc12aug-pseudo-'
    '512x512.py',
])
def test_deeplab_through_the_inference_api(assets, rel_path):
    from mmseg.apis import MMSegInferencer, inference_model, init_model
    cfg = tiny_config(rel_path, assets)
    ckpt = tiny_checkpoint(cfg, str(assets['root'] / 'deeplab.pth'))
    model = init_model(cfg, ckpt, device='cpu')
    result = inference_model(model, assets['img'])
    assert tuple(result.pred_sem_seg.data.shape) == (1, 37, 53)
    out = MMSegInferencer(model=cfg, weights=ckpt, device='cpu')(
        assets['img'])
    assert np.array_equal(out['predictions'],
                          result.pred_sem_seg.data[0].numpy())
