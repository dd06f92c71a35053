"""QA-CLIMS region contrastive losses against per-pair references (spec §5)."""
import math

import pytest
import torch
from mmseg.registry import MODELS

from qaclims_mm.models.losses.region_contrastive import (
    AreaRegularizationLoss, BGRegionContrastiveLoss, FGRegionContrastiveLoss,
    blend_fg_text)

TAU = 0.7
DTYPE = torch.float64


# ---------------------------------------------------------------------------
# References, one pair at a time, written from the spec's formulas
# ---------------------------------------------------------------------------
def ref_blend(class_feat, answer_feats, label_weight=0.5):
    """t_f = λ e(class) + (1 − λ) Σ_q w_q e(answer_q), w_q = 1/Q."""
    q = len(answer_feats)
    if q == 0:
        return class_feat
    total = sum(answer_feat / q for answer_feat in answer_feats)
    return label_weight * class_feat + (1 - label_weight) * total


def ref_frc_pair(v_if, t_f, t_bs, tau=TAU):
    """L_FRC for one pair: t_bs is the list of its real BG answers."""
    v_f = v_if / v_if.norm()
    pos = torch.exp(torch.dot(v_f, t_f) / tau)
    neg = sum(torch.exp(torch.dot(v_f, t_b) / tau) for t_b in t_bs)
    return -torch.log(pos / (pos + neg))


def ref_brc_pair(v_ib, t_f, t_bs, tau=TAU):
    v_b = v_ib / v_ib.norm()
    p = sum(torch.exp(torch.dot(v_b, t_b) / tau) for t_b in t_bs) / len(t_bs)
    neg = torch.exp(torch.dot(v_b, t_f) / tau)
    return -torch.log(p / (p + neg))


def ref_sum(pair_fn, img_feats, fg_text, bg_lists):
    """Sum over pairs that have at least one BG answer (the skip rule)."""
    total = img_feats.new_zeros(())
    for k, t_bs in enumerate(bg_lists):
        if len(t_bs) == 0:
            continue
        total = total + pair_fn(img_feats[k], fg_text[k], t_bs)
    return total


# ---------------------------------------------------------------------------
# Inputs
# ---------------------------------------------------------------------------
def unit(x):
    return x / x.norm(dim=-1, keepdim=True)


def make_batch(
        num_bg=(3, 1, 0, 5, 2), dim=16, pad_to=None, seed=0, pad_value=0.0):
    """Random pairs with ``num_bg[k]`` real BG answers each (0 = skipped)."""
    g = torch.Generator().manual_seed(seed)
    k = len(num_bg)
    length = pad_to if pad_to is not None else max(max(num_bg), 1)
    img = torch.randn(k, dim, generator=g, dtype=DTYPE) * 3
    class_feats = unit(torch.randn(k, dim, generator=g, dtype=DTYPE))
    fg_feats = unit(torch.randn(k, 6, dim, generator=g, dtype=DTYPE))
    fg_text = blend_fg_text(class_feats, fg_feats)
    bg_texts = torch.full((k, length, dim), pad_value, dtype=DTYPE)
    bg_mask = torch.zeros(k, length, dtype=torch.bool)
    bg_lists = []
    for i, n in enumerate(num_bg):
        feats = unit(torch.randn(n, dim, generator=g, dtype=DTYPE))
        bg_texts[i, :n] = feats
        bg_mask[i, :n] = True
        bg_lists.append(list(feats))
    return img, fg_text, bg_texts, bg_mask, bg_lists


LOSSES = [
    (FGRegionContrastiveLoss, ref_frc_pair, 10.0, 'loss_frc'),
    (BGRegionContrastiveLoss, ref_brc_pair, 8.0, 'loss_brc'),
]
IDS = ['frc', 'brc']


# ---------------------------------------------------------------------------
# blend_fg_text
# ---------------------------------------------------------------------------
def test_blend_matches_fixed_weights_and_is_not_normalised():
    g = torch.Generator().manual_seed(1)
    class_feats = unit(torch.randn(4, 8, generator=g, dtype=DTYPE))
    fg_feats = unit(torch.randn(4, 6, 8, generator=g, dtype=DTYPE))
    out = blend_fg_text(class_feats, fg_feats)
    for k in range(4):
        torch.testing.assert_close(
            out[k], ref_blend(class_feats[k], list(fg_feats[k])))
    # w_q = 1/6 exactly as the official weighting
    expected = 0.5 * class_feats + 0.5 * (fg_feats / 6).sum(1)
    torch.testing.assert_close(out, expected)
    # not re-normalised: norms strictly below 1 for random unit inputs
    assert (out.norm(dim=-1) < 1 - 1e-3).all()
    out_w = blend_fg_text(class_feats, fg_feats, label_weight=0.8)
    torch.testing.assert_close(out_w,
                               0.8 * class_feats + 0.2 * fg_feats.mean(1))


def test_blend_masked_answers_and_no_answer_fallback():
    g = torch.Generator().manual_seed(2)
    class_feats = unit(torch.randn(3, 8, generator=g, dtype=DTYPE))
    fg_feats = unit(torch.randn(3, 6, 8, generator=g, dtype=DTYPE))
    fg_mask = torch.tensor(
        [[1, 1, 1, 1, 1, 1], [1, 0, 1, 0, 0, 0], [0, 0, 0, 0, 0, 0]],
        dtype=torch.bool)
    fg_feats[~fg_mask] = float('nan')  # padding must not leak
    out = blend_fg_text(class_feats, fg_feats, fg_mask)
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out[0],
                               ref_blend(class_feats[0], list(fg_feats[0])))
    torch.testing.assert_close(
        out[1], ref_blend(class_feats[1], [fg_feats[1, 0], fg_feats[1, 2]]))
    torch.testing.assert_close(out[2], class_feats[2])


def test_blend_errors():
    with pytest.raises(ValueError, match='label_weight'):
        blend_fg_text(torch.zeros(2, 4),
                      torch.zeros(2, 6, 4),
                      label_weight=1.5)
    with pytest.raises(ValueError, match=r'\[K, Q, D\]'):
        blend_fg_text(torch.zeros(2, 4), torch.zeros(3, 6, 4))
    with pytest.raises(ValueError, match='fg_mask'):
        blend_fg_text(torch.zeros(2, 4), torch.zeros(2, 6, 4),
                      torch.ones(2, 5, dtype=torch.bool))


# ---------------------------------------------------------------------------
# FRC / BRC
# ---------------------------------------------------------------------------
@pytest.mark.parametrize('loss_cls, ref_pair, weight, name', LOSSES, ids=IDS)
def test_value_and_gradient_match_reference(loss_cls, ref_pair, weight, name):
    img, fg_text, bg_texts, bg_mask, bg_lists = make_batch()
    img.requires_grad_(True)
    loss_fn = loss_cls()
    assert loss_fn.loss_name == name and loss_fn.loss_weight == weight
    assert loss_fn.tau == TAU
    out = loss_fn(img, fg_text, bg_texts, bg_mask)
    ref = weight * ref_sum(ref_pair, img, fg_text, bg_lists)
    assert out.dim() == 0
    torch.testing.assert_close(out, ref, rtol=1e-12, atol=1e-12)
    (grad, ) = torch.autograd.grad(out, img)
    (ref_grad, ) = torch.autograd.grad(ref, img)
    torch.testing.assert_close(grad, ref_grad, rtol=1e-10, atol=1e-12)
    # the skipped pair (index 2, no BG answer) gets no gradient at all
    assert torch.equal(grad[2], torch.zeros_like(grad[2]))
    assert torch.isfinite(grad).all()


@pytest.mark.parametrize('loss_cls, ref_pair, weight, name', LOSSES, ids=IDS)
def test_padding_does_not_change_anything(loss_cls, ref_pair, weight, name):
    loss_fn = loss_cls()
    tight = make_batch(num_bg=(3, 1, 5, 2), seed=3)
    wide = make_batch(num_bg=(3, 1, 5, 2),
                      seed=3,
                      pad_to=9,
                      pad_value=float('nan'))
    outs, grads = [], []
    for img, fg_text, bg_texts, bg_mask, _ in (tight, wide):
        img = img.clone().requires_grad_(True)
        out = loss_fn(img, fg_text, bg_texts, bg_mask)
        outs.append(out)
        grads.append(torch.autograd.grad(out, img)[0])
    torch.testing.assert_close(outs[0], outs[1], rtol=1e-13, atol=0)
    torch.testing.assert_close(grads[0], grads[1], rtol=1e-13, atol=1e-15)
    assert torch.isfinite(grads[1]).all()
    # and one pair alone equals its unpadded per-pair reference
    img, fg_text, bg_texts, bg_mask, bg_lists = wide
    single = loss_fn(img[1:2], fg_text[1:2], bg_texts[1:2], bg_mask[1:2])
    torch.testing.assert_close(
        single, weight * ref_pair(img[1], fg_text[1], bg_lists[1]))


@pytest.mark.parametrize('loss_cls, ref_pair, weight, name', LOSSES, ids=IDS)
def test_mask_holes_anywhere(loss_cls, ref_pair, weight, name):
    """Valid answers need not be left-aligned."""
    img, fg_text, bg_texts, bg_mask, _ = make_batch(num_bg=(4, 4), seed=4)
    bg_mask = torch.tensor([[1, 0, 1, 0], [0, 0, 0, 1]], dtype=torch.bool)
    out = loss_cls()(img, fg_text, bg_texts, bg_mask)
    ref_lists = [[bg_texts[0, 0], bg_texts[0, 2]], [bg_texts[1, 3]]]
    ref = weight * ref_sum(ref_pair, img, fg_text, ref_lists)
    torch.testing.assert_close(out, ref, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize('loss_cls, ref_pair, weight, name', LOSSES, ids=IDS)
def test_sum_not_mean_over_pairs(loss_cls, ref_pair, weight, name):
    img, fg_text, bg_texts, bg_mask, _ = make_batch()
    loss_fn = loss_cls()
    once = loss_fn(img, fg_text, bg_texts, bg_mask)
    twice = loss_fn(img.repeat(2, 1), fg_text.repeat(2, 1),
                    bg_texts.repeat(2, 1, 1), bg_mask.repeat(2, 1))
    torch.testing.assert_close(twice, 2 * once)
    # mean option: over the kept pairs (4 of 5)
    mean = loss_cls(reduction='mean')(img, fg_text, bg_texts, bg_mask)
    torch.testing.assert_close(mean, once / 4)


@pytest.mark.parametrize('loss_cls, ref_pair, weight, name', LOSSES, ids=IDS)
def test_image_normalised_inside_text_not(loss_cls, ref_pair, weight, name):
    img, fg_text, bg_texts, bg_mask, _ = make_batch(seed=5)
    loss_fn = loss_cls()
    base = loss_fn(img, fg_text, bg_texts, bg_mask)
    scale = torch.tensor([0.01, 7.0, 1.0, 300.0, 2.0], dtype=DTYPE)[:, None]
    torch.testing.assert_close(
        loss_fn(img * scale, fg_text, bg_texts, bg_mask), base)
    # t_f is used as given: scaling the class prompt feature changes t_f's
    # norm and therefore the loss
    g = torch.Generator().manual_seed(5)
    class_feats = unit(torch.randn(5, 16, generator=g, dtype=DTYPE))
    fg_feats = unit(torch.randn(5, 6, 16, generator=g, dtype=DTYPE))
    a = loss_fn(img, blend_fg_text(class_feats, fg_feats), bg_texts, bg_mask)
    b = loss_fn(img, blend_fg_text(3 * class_feats, fg_feats), bg_texts,
                bg_mask)
    assert not torch.allclose(a, b)
    c = loss_fn(img, 2 * fg_text, bg_texts, bg_mask)
    assert not torch.allclose(c, base)


@pytest.mark.parametrize('loss_cls, ref_pair, weight, name', LOSSES, ids=IDS)
@pytest.mark.parametrize('case', ['no_pairs', 'all_skipped', 'no_bg_slots'])
def test_empty_batch_is_zero_with_grad(loss_cls, ref_pair, weight, name, case):
    dim = 8
    if case == 'no_pairs':
        img = torch.randn(0, dim, requires_grad=True)
        fg, bg, mask = torch.zeros(0, dim), torch.zeros(0, 3, dim), \
            torch.zeros(0, 3, dtype=torch.bool)
    elif case == 'all_skipped':
        img = torch.randn(3, dim, requires_grad=True)
        fg, bg, mask = torch.randn(3, dim), torch.randn(3, 4, dim), \
            torch.zeros(3, 4, dtype=torch.bool)
    else:
        img = torch.randn(2, dim, requires_grad=True)
        fg, bg, mask = torch.randn(2, dim), torch.zeros(2, 0, dim), \
            torch.zeros(2, 0, dtype=torch.bool)
    out = loss_cls()(img, fg, bg, mask)
    assert out.dim() == 0 and out.item() == 0.0
    assert out.grad_fn is not None
    out.backward()
    assert img.grad is not None
    assert torch.equal(img.grad, torch.zeros_like(img))


@pytest.mark.parametrize('loss_cls, ref_pair, weight, name', LOSSES, ids=IDS)
def test_single_pair_batch(loss_cls, ref_pair, weight, name):
    """Spec §9.2 item 7: one positive pair must work (no squeeze bug)."""
    img, fg_text, bg_texts, bg_mask, bg_lists = make_batch(num_bg=(3, ))
    out = loss_cls()(img, fg_text, bg_texts, bg_mask)
    torch.testing.assert_close(
        out, weight * ref_pair(img[0], fg_text[0], bg_lists[0]))


def test_frc_known_value():
    """Hand-computed: one negative, orthogonal, unit t_f aligned with v."""
    img = torch.tensor([[2.0, 0.0]], dtype=DTYPE)
    fg_text = torch.tensor([[1.0, 0.0]], dtype=DTYPE)
    bg = torch.tensor([[[0.0, 1.0]]], dtype=DTYPE)
    mask = torch.ones(1, 1, dtype=torch.bool)
    out = FGRegionContrastiveLoss(loss_weight=1.0)(img, fg_text, bg, mask)
    expected = -math.log(math.exp(1 / TAU) / (math.exp(1 / TAU) + 1.0))
    assert out.item() == pytest.approx(expected, rel=1e-12)
    # BRC: P = exp(0) = 1, negative exp(1/τ)
    out = BGRegionContrastiveLoss(loss_weight=1.0)(img, fg_text, bg, mask)
    assert out.item() == pytest.approx(-math.log(1 / (1 + math.exp(1 / TAU))),
                                       rel=1e-12)


def test_brc_is_stable_for_extreme_logits():
    """logsumexp form stays finite where the naive exp would overflow."""
    img, fg_text, bg_texts, bg_mask, _ = make_batch(num_bg=(2, 3), seed=6)
    img = img.float().requires_grad_(True)
    out = BGRegionContrastiveLoss(tau=1e-3)(img, fg_text.float(),
                                            bg_texts.float(), bg_mask)
    assert torch.isfinite(out)
    (grad, ) = torch.autograd.grad(out, img)
    assert torch.isfinite(grad).all()


def test_float32_close_to_float64_reference():
    img, fg_text, bg_texts, bg_mask, bg_lists = make_batch(seed=7)
    out = FGRegionContrastiveLoss()(img.float(), fg_text.float(),
                                    bg_texts.float(), bg_mask)
    ref = 10.0 * ref_sum(ref_frc_pair, img, fg_text, bg_lists)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out.double(), ref, rtol=1e-5, atol=1e-5)


def test_shape_errors():
    loss_fn = FGRegionContrastiveLoss()
    img = torch.randn(2, 4)
    with pytest.raises(ValueError, match='fg_text'):
        loss_fn(img, torch.randn(3, 4), torch.randn(2, 1, 4),
                torch.ones(2, 1, dtype=torch.bool))
    with pytest.raises(ValueError, match='bg_texts'):
        loss_fn(img, torch.randn(2, 4), torch.randn(2, 1, 5),
                torch.ones(2, 1, dtype=torch.bool))
    with pytest.raises(ValueError, match='bg_mask'):
        loss_fn(img, torch.randn(2, 4), torch.randn(2, 3, 4),
                torch.ones(2, 1, dtype=torch.bool))
    with pytest.raises(ValueError, match='reduction'):
        BGRegionContrastiveLoss(reduction='none')
    with pytest.raises(ValueError, match='tau'):
        FGRegionContrastiveLoss(tau=0)


# ---------------------------------------------------------------------------
# REG
# ---------------------------------------------------------------------------
def test_area_regularization_mean_over_all_entries():
    g = torch.Generator().manual_seed(8)
    cams = torch.rand(2, 5, 3, 4, generator=g, dtype=DTYPE, requires_grad=True)
    loss_fn = AreaRegularizationLoss()
    assert loss_fn.loss_name == 'loss_reg' and loss_fn.loss_weight == 0.2
    out = loss_fn(cams)
    flat = [v for v in cams.reshape(-1)]
    ref = 0.2 * sum(flat) / len(flat)
    torch.testing.assert_close(out, ref)
    (grad, ) = torch.autograd.grad(out, cams)
    # every entry, absent classes included, gets the same gradient
    torch.testing.assert_close(grad, torch.full_like(cams, 0.2 / cams.numel()))
    with pytest.raises(ValueError, match='empty'):
        loss_fn(torch.zeros(0, 5, 3, 4))


def test_registered_and_buildable():
    for cfg, cls in [(dict(type='FGRegionContrastiveLoss',
                           tau=0.5), FGRegionContrastiveLoss),
                     (dict(type='BGRegionContrastiveLoss',
                           loss_weight=24.0), BGRegionContrastiveLoss),
                     (dict(type='AreaRegularizationLoss'),
                      AreaRegularizationLoss)]:
        module = MODELS.build(cfg)
        assert isinstance(module, cls)
        assert module.loss_name.startswith('loss_')
