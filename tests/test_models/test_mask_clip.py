"""MaskPromptedCLIP (OV-Seg mask prompt tuning) and its strict loaders.

Tiny random open_clip ViT (28 px, patch 7 -> 4x4 patches, 4 blocks), checked
against a reference forward written here from spec §4.2.
"""
import copy
import warnings

import pytest
import torch
import torch.nn as nn
from mmseg.registry import MODELS
from open_clip.model import CLIP

from qaclims_mm.models.clip.loaders import (build_mask_clip,
                                            load_openai_weights,
                                            load_ovseg_checkpoint)
from qaclims_mm.models.clip.mask_clip import (MaskPromptedCLIP,
                                              build_clip_vision_tower)

TINY_CFG = dict(
    embed_dim=16,
    vision_cfg=dict(
        image_size=28,
        patch_size=7,
        width=32,
        layers=4,
        head_width=16,
        mlp_ratio=2.0))
TEXT_CFG = dict(context_length=8, vocab_size=64, width=16, heads=2, layers=1)
P, G, K = 7, 4, 3  # patch size, grid size, number of regions
PREFIX = 'clip_adapter.clip_model.'


@pytest.fixture(scope='module')
def clip_model():
    torch.manual_seed(0)
    return CLIP(**TINY_CFG, text_cfg=TEXT_CFG, quick_gelu=True).eval()


def make_encoder(clip_model, seed=1, **kwargs):
    with warnings.catch_warnings():  # 'randomly initialised'
        warnings.simplefilter('ignore')
        enc = MaskPromptedCLIP(
            visual=copy.deepcopy(clip_model.visual), **kwargs)
    torch.manual_seed(seed)
    with torch.no_grad():  # non-zero prompts, so replacement is visible
        enc.mask_embedding.normal_()
    return enc


@pytest.fixture
def encoder(clip_model):
    return make_encoder(clip_model)


def inputs(seed=0):
    g = torch.Generator().manual_seed(seed)
    images = torch.randn(K, 3, 28, 28, generator=g)
    masks = (torch.rand(K, 1, 28, 28, generator=g) > 0.97).float()
    masks[0] = 0
    masks[0, :, :10, :16] = 1  # rows 0-9, cols 0-15: patches (0|1, 0..2)
    masks[2] = 1 - masks[0]
    return images, masks


def reference_keep(masks):
    """Patch kept iff any pixel of it is inside the mask (explicit loops)."""
    keep = torch.zeros(masks.shape[0], G * G, dtype=torch.bool)
    for k in range(masks.shape[0]):
        for r in range(G):
            for c in range(G):
                patch = masks[k, 0, r * P:(r + 1) * P, c * P:(c + 1) * P]
                keep[k, r * G + c] = bool((patch > 0).any())
    return keep


def reference_forward(enc, images, masks):
    """OV-Seg mask-prompted ViT forward, spelled out token by token."""
    v = enc.visual
    keep = reference_keep(masks)
    emb = enc.mask_embedding

    def replace(tokens, d):
        tokens = tokens.clone()
        for k in range(tokens.shape[0]):
            for n in range(G * G):
                if not keep[k, n]:
                    tokens[k, n] = emb[d, n]
        return tokens

    x = v.conv1(images).flatten(2).transpose(1, 2)  # [K, N, C]
    x = replace(x, 0)
    cls = v.class_embedding.expand(x.shape[0], 1, -1)
    x = v.ln_pre(torch.cat([cls, x], dim=1) + v.positional_embedding)
    for i, block in enumerate(v.transformer.resblocks):
        x = block(x)
        if i + 1 < enc.mask_prompt_depth:
            x = torch.cat([x[:, :1], replace(x[:, 1:], i + 1)], dim=1)
    return v.ln_post(x[:, 0]) @ v.proj


def test_matches_reference_forward(encoder):
    images, masks = inputs()
    out = encoder(images, masks)
    assert out.shape == (K, 16)
    torch.testing.assert_close(
        out, reference_forward(encoder, images, masks), rtol=1e-5, atol=1e-5)
    # the mask matters
    assert not torch.allclose(out, encoder(images), atol=1e-3)


def test_tokens_replaced_at_each_depth(encoder):
    images, masks = inputs()
    keep = reference_keep(masks)  # [K, N]
    blocks = encoder.visual.transformer.resblocks
    seen = {}
    hooks = [
        encoder.visual.ln_pre.register_forward_pre_hook(
            lambda m, a: seen.__setitem__('ln_pre_in', a[0].clone()))
    ]
    for i, blk in enumerate(blocks):
        hooks.append(
            blk.register_forward_pre_hook(lambda m, a, i=i: seen.__setitem__(
                ('in', i), a[0].clone())))
        hooks.append(
            blk.register_forward_hook(lambda m, a, o, i=i: seen.__setitem__(
                ('out', i), o.clone())))
    with torch.no_grad():
        encoder(images, masks)
        patches = encoder.visual.conv1(images).flatten(2).transpose(1, 2)
    for h in hooks:
        h.remove()
    emb = encoder.mask_embedding.detach()
    pos = encoder.visual.positional_embedding.detach()
    drop = ~keep
    assert drop.any() and keep.any()
    # depth 0: before CLS and the positional embedding
    x0 = seen['ln_pre_in']
    expected0 = torch.where(keep[..., None], patches, emb[0]) + pos[1:]
    torch.testing.assert_close(x0[:, 1:], expected0)
    torch.testing.assert_close(x0[:, 0], (encoder.visual.class_embedding +
                                          pos[0]).expand(K, -1))
    # depths 1, 2: after blocks 0, 1; kept tokens and CLS untouched
    for d in (1, 2):
        x_in, x_out = seen[('in', d)], seen[('out', d - 1)]
        assert torch.equal(x_in[:, 0], x_out[:, 0])
        assert torch.equal(x_in[:, 1:][keep], x_out[:, 1:][keep])
        assert torch.equal(x_in[:, 1:][drop], emb[d].expand(K, -1, -1)[drop])
    # depth 3 == mask_prompt_depth: no replacement any more
    assert torch.equal(seen[('in', 3)], seen[('out', 2)])


def test_plain_equals_open_clip_and_full_mask(encoder, clip_model):
    images, _ = inputs()
    with torch.no_grad():
        expected = clip_model.visual(images)
        torch.testing.assert_close(clip_model.encode_image(images), expected)
        plain = encoder(images)
        full = encoder(images, torch.ones(K, 1, 28, 28))
        full3 = encoder(images, torch.ones(K, 28, 28))
    torch.testing.assert_close(plain, expected, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(full, plain, rtol=0, atol=0)
    torch.testing.assert_close(full3, plain, rtol=0, atol=0)


def test_ceil_rule_single_pixel_keeps_patch(encoder):
    images, _ = inputs()
    one_pixel = torch.zeros(K, 1, 28, 28)
    one_pixel[:, :, 7 + 6, 14 + 3] = 1  # a single pixel of patch (1, 2)
    whole = torch.zeros(K, 1, 28, 28)
    whole[:, :, 7:14, 14:21] = 1
    keep = encoder.patch_keep_mask(one_pixel)
    expected = torch.zeros(K, G * G, dtype=torch.bool)
    expected[:, 1 * G + 2] = True
    assert torch.equal(keep, expected)
    assert torch.equal(keep, reference_keep(one_pixel))
    with torch.no_grad():
        torch.testing.assert_close(
            encoder(images, one_pixel), encoder(images, whole), rtol=0, atol=0)


def test_input_gradients_but_frozen_weights(encoder):
    images, masks = inputs()
    images.requires_grad_(True)
    assert all(not p.requires_grad for p in encoder.parameters())
    encoder(images, masks).pow(2).sum().backward()
    assert images.grad is not None and images.grad.abs().sum() > 0
    assert all(p.grad is None for p in encoder.parameters())


def test_unfrozen_prompts_get_gradients(clip_model):
    enc = make_encoder(clip_model, frozen=False)
    enc.train()
    assert enc.training and enc.mask_embedding.requires_grad
    images, masks = inputs()
    enc(images, masks).sum().backward()
    grad = enc.mask_embedding.grad
    assert grad is not None and grad[0].abs().sum() > 0


def test_frozen_encoder_stays_in_eval(encoder):
    parent = nn.ModuleDict(dict(clip=encoder, head=nn.Conv2d(1, 1, 1)))
    parent.train()
    assert parent.head.training
    assert not any(m.training for m in encoder.modules())
    encoder.train(True)
    assert not encoder.training


def test_checkpointing_same_result(clip_model):
    images, masks = inputs()
    outs, grads = [], []
    for ckpt in (False, True):
        enc = make_encoder(clip_model, checkpointing=ckpt)
        x = images.clone().requires_grad_(True)
        out = enc(x, masks)
        out.sum().backward()
        outs.append(out.detach())
        grads.append(x.grad)
    torch.testing.assert_close(outs[0], outs[1], rtol=0, atol=0)
    torch.testing.assert_close(grads[0], grads[1], rtol=1e-6, atol=1e-7)


def test_autocast_noop_on_cpu_warns_once(clip_model):
    images, masks = inputs()
    ref = make_encoder(clip_model)(images, masks)
    enc = make_encoder(clip_model, autocast_dtype='bf16')
    with pytest.warns(UserWarning, match='ignored on cpu'):
        out = enc(images, masks)
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        enc(images, masks)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, ref, rtol=0, atol=0)
    with pytest.raises(ValueError, match='autocast_dtype'):
        MaskPromptedCLIP(visual=clip_model.visual, autocast_dtype='fp8')


def test_input_validation(encoder, clip_model):
    images, masks = inputs()
    with pytest.raises(ValueError, match=r'\(28, 28\)'):
        encoder(torch.randn(K, 3, 32, 32))
    with pytest.raises(ValueError, match='batch size'):
        encoder(images, masks[:2])
    with pytest.raises(ValueError, match='mask_prompt_depth'):
        MaskPromptedCLIP(visual=clip_model.visual, mask_prompt_depth=5)
    with pytest.raises(TypeError, match='VisionTransformer'):
        MaskPromptedCLIP(visual=nn.Linear(2, 2))


def test_built_from_config_and_names():
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        enc = MODELS.build(dict(type='MaskPromptedCLIP', model_cfg=TINY_CFG))
    assert enc.mask_embedding.shape == (3, G * G, 32)
    assert enc.output_dim == 16 and not enc.training
    assert type(enc.visual.transformer.resblocks[0].mlp.gelu).__name__ == \
        'QuickGELU'
    # the real ViT-L/14 geometry, on the meta device (no memory)
    with torch.device('meta'):
        visual = build_clip_vision_tower('ViT-L-14')
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        big = MaskPromptedCLIP(visual=visual)
    assert big.mask_embedding.shape == (3, 256, 1024)
    assert big.output_dim == 768 and len(visual.transformer.resblocks) == 24
    with pytest.raises(KeyError, match='no-such-clip'):
        build_clip_vision_tower('no-such-clip')


# ----------------------------------------------------------------- loaders
def ovseg_state(clip_model, mask_embedding):
    """A checkpoint in the OV-Seg layout, with text and detector keys."""
    model = {PREFIX + k: v.clone() for k, v in clip_model.state_dict().items()}
    model[PREFIX + 'visual.mask_embedding'] = mask_embedding.clone()
    model['sem_seg_head.predictor.class_embed.weight'] = torch.randn(4, 4)
    model['backbone.patch_embed.proj.weight'] = torch.randn(8, 3, 4, 4)
    return {'model': model, 'iteration': 12345}


@pytest.fixture
def prompts():
    torch.manual_seed(5)
    return torch.randn(3, G * G, 32)


def test_ovseg_checkpoint_loads_and_reproduces(clip_model, prompts, tmp_path):
    path = str(tmp_path / 'ovseg_swinbase_vitL14_ft_mpt.pth')
    torch.save(ovseg_state(clip_model, prompts), path)
    enc = build_mask_clip(model_cfg=TINY_CFG, ovseg_checkpoint=path)
    reference = make_encoder(clip_model)
    with torch.no_grad():
        reference.mask_embedding.copy_(prompts)
    assert torch.equal(enc.mask_embedding, prompts)
    assert not any(p.requires_grad for p in enc.parameters())
    images, masks = inputs()
    with torch.no_grad():
        torch.testing.assert_close(
            enc(images, masks), reference(images, masks), rtol=0, atol=0)
        torch.testing.assert_close(
            enc(images), clip_model.visual(images), rtol=1e-6, atol=1e-6)
    n_visual = len(clip_model.visual.state_dict())
    assert load_ovseg_checkpoint(enc, path) == n_visual + 1


@pytest.mark.parametrize('edit, message', [
    ('missing', r'missing \(1\): clip_adapter\.clip_model\.visual\.ln_post'
     r'\.bias'),
    ('no_prompt', r'missing \(1\): clip_adapter\.clip_model\.visual\.'
     r'mask_embedding'),
    ('shape', r'wrong shape \(1\): clip_adapter\.clip_model\.visual\.proj: '
     r'checkpoint \(32, 8\) vs model \(32, 16\)'),
    ('extra', r'unexpected \(1\): clip_adapter\.clip_model\.visual\.'
     r'extra_token'),
])
def test_ovseg_checkpoint_strict(clip_model, prompts, tmp_path, edit, message):
    state = ovseg_state(clip_model, prompts)
    model = state['model']
    if edit == 'missing':
        del model[PREFIX + 'visual.ln_post.bias']
    elif edit == 'no_prompt':
        del model[PREFIX + 'visual.mask_embedding']
    elif edit == 'shape':
        model[PREFIX + 'visual.proj'] = torch.randn(32, 8)
    else:
        model[PREFIX + 'visual.extra_token'] = torch.randn(3)
    path = str(tmp_path / 'bad.pth')
    torch.save(state, path)
    enc = make_encoder(clip_model)
    before = copy.deepcopy(enc.state_dict())
    with pytest.raises(RuntimeError, match=message) as info:
        load_ovseg_checkpoint(enc, path)
    assert path in str(info.value)
    # nothing was loaded
    for k, v in enc.state_dict().items():
        assert torch.equal(v, before[k]), k


def test_ovseg_depth_mismatch_and_wrong_file(clip_model, prompts, tmp_path):
    path = str(tmp_path / 'ovseg.pth')
    torch.save(ovseg_state(clip_model, prompts), path)
    with pytest.raises(
            RuntimeError,
            match='mask_embedding: checkpoint '
            r'\(3, 16, 32\) vs model \(2, 16, 32\)'):
        build_mask_clip(
            model_cfg=TINY_CFG, ovseg_checkpoint=path, mask_prompt_depth=2)
    other = str(tmp_path / 'other.pth')
    torch.save({'model': {'backbone.conv.weight': torch.zeros(1)}}, other)
    with pytest.raises(KeyError, match='clip_adapter.clip_model.visual.'):
        load_ovseg_checkpoint(make_encoder(clip_model), other)


def test_missing_files_name_the_path(clip_model, tmp_path):
    absent = str(tmp_path / 'nowhere' / 'ovseg_swinbase_vitL14_ft_mpt.pth')
    with pytest.raises(FileNotFoundError) as info:
        build_mask_clip(model_cfg=TINY_CFG, ovseg_checkpoint=absent)
    assert absent in str(info.value) and 'ov-seg' in str(info.value)
    absent = str(tmp_path / 'ViT-L-14.pt')
    with pytest.raises(FileNotFoundError) as info:
        build_mask_clip(model_cfg=TINY_CFG, weights=absent)
    assert absent in str(info.value)
    assert 'OpenAI CLIP ViT-L/14' in str(info.value)


class _Holder(nn.Module):
    """Gives a traced archive OpenAI's ``visual.*`` key names."""

    def __init__(self, visual):
        super().__init__()
        self.visual = visual

    def forward(self, x):
        return self.visual(x)


@pytest.mark.parametrize('fmt', ['state_dict', 'jit'])
def test_openai_weights(clip_model, tmp_path, fmt):
    path = str(tmp_path / 'ViT-L-14.pt')
    if fmt == 'jit':
        with warnings.catch_warnings():  # TracerWarning
            warnings.simplefilter('ignore')
            traced = torch.jit.trace(
                _Holder(copy.deepcopy(clip_model.visual)),
                torch.randn(1, 3, 28, 28),
                check_trace=False)
        torch.jit.save(traced, path)
    else:
        torch.save(clip_model.state_dict(), path)
    enc = MODELS.build(
        dict(type='build_mask_clip', model_cfg=TINY_CFG, weights=path))
    assert isinstance(enc, MaskPromptedCLIP)
    assert torch.equal(enc.mask_embedding, torch.zeros(3, G * G, 32))
    images, masks = inputs()
    with torch.no_grad():
        torch.testing.assert_close(
            enc(images), clip_model.visual(images), rtol=1e-6, atol=1e-6)
    bad = str(tmp_path / 'bad.pt')
    state = clip_model.state_dict()
    del state['visual.conv1.weight']
    torch.save(state, bad)
    with pytest.raises(RuntimeError, match=r'missing \(1\): visual\.conv1'):
        load_openai_weights(enc, bad)
