"""CLIMS OTM / BTM / CBS losses against per-pair references (spec §5)."""
import pytest
import torch
from mmseg.registry import MODELS

from qaclims_mm.models.losses.clims_losses import (
    CLIMS_BACKGROUND_WORDS, CLIMS_CBS_THRESHOLDS, CLIMSBackgroundLoss,
    CLIMSContextSuppressionLoss, CLIMSObjectLoss, clims_background_prompts,
    clims_class_prompts)

DTYPE = torch.float64


def cosine(a, b):
    return torch.dot(a, b) / (a.norm() * b.norm())


def ref_otm(img, text):
    terms = [
        -torch.log(cosine(img[k], text[k]).clamp(1e-4, 0.9999))
        for k in range(img.shape[0])
    ]
    return sum(terms) / len(terms)


def ref_btm(img, text):
    terms = [
        -torch.log(1 - cosine(img[k], text[k]).clamp(1e-4, 0.9999))
        for k in range(img.shape[0])
    ]
    return sum(terms) / len(terms)


def ref_cbs(img, prompts, threshold):
    total = img.new_zeros(())
    for k in range(img.shape[0]):
        for p in range(prompts.shape[0]):
            cos = cosine(img[k], prompts[p])
            if cos > threshold:
                total = total + -torch.log(1 - cos)
    return total


def correlated(k=6, dim=12, spread=1.0, seed=0):
    """Image and text features with cosines spread over (-1, 1)."""
    g = torch.Generator().manual_seed(seed)
    text = torch.randn(k, dim, generator=g, dtype=DTYPE)
    noise = torch.randn(k, dim, generator=g, dtype=DTYPE)
    mix = torch.linspace(-1.5, 3.0, k, dtype=DTYPE)[:, None]
    scale = torch.linspace(0.5, 4, k, dtype=DTYPE)[:, None]
    img = (mix * text + spread * noise) * scale
    return img, text


@pytest.mark.parametrize('loss_cls, ref, weight, name', [
    (CLIMSObjectLoss, ref_otm, 10.0, 'loss_otm'),
    (CLIMSBackgroundLoss, ref_btm, 24.0, 'loss_btm'),
],
                         ids=['otm', 'btm'])
def test_matching_losses_match_reference(loss_cls, ref, weight, name):
    img, text = correlated()
    img.requires_grad_(True)
    loss_fn = loss_cls()
    assert loss_fn.loss_name == name and loss_fn.loss_weight == weight
    cos = torch.nn.functional.cosine_similarity(img, text, dim=-1)
    # the data exercise the clamp at the bottom (negative cosines)
    assert (cos < 1e-4).any() and (cos > 0.1).any()
    out = loss_fn(img, text)
    expected = weight * ref(img, text)
    torch.testing.assert_close(out, expected, rtol=1e-12, atol=1e-12)
    (grad, ) = torch.autograd.grad(out, img)
    (ref_grad, ) = torch.autograd.grad(expected, img)
    torch.testing.assert_close(grad, ref_grad, rtol=1e-10, atol=1e-12)
    # clamped pairs receive no gradient, as in CLIMS
    clamped = cos < 1e-4
    assert torch.equal(grad[clamped], torch.zeros_like(grad[clamped]))


@pytest.mark.parametrize('loss_cls', [CLIMSObjectLoss, CLIMSBackgroundLoss])
def test_matching_losses_mean_and_scale_invariance(loss_cls):
    img, text = correlated(seed=1)
    loss_fn = loss_cls()
    base = loss_fn(img, text)
    # a mean over pairs: duplicating the batch does not change it
    torch.testing.assert_close(loss_fn(img.repeat(3, 1), text.repeat(3, 1)),
                               base)
    # cosine similarity: both sides are normalised inside
    torch.testing.assert_close(loss_fn(img * 5.0, text * 0.1), base)


@pytest.mark.parametrize('loss_cls', [CLIMSObjectLoss, CLIMSBackgroundLoss])
def test_matching_losses_clamp_top(loss_cls):
    text = torch.randn(2, 8, dtype=DTYPE)
    out = loss_cls(loss_weight=1.0)(text.clone(), text)  # cos = 1
    assert torch.isfinite(out)
    if loss_cls is CLIMSObjectLoss:
        assert out.item() == pytest.approx(
            -torch.log(torch.tensor(0.9999, dtype=DTYPE)).item())
    else:
        assert out.item() == pytest.approx(
            -torch.log(torch.tensor(1e-4, dtype=DTYPE)).item())


def test_cbs_matches_reference_and_is_a_sum():
    g = torch.Generator().manual_seed(2)
    prompts = torch.randn(10, 12, generator=g, dtype=DTYPE)
    img = prompts[torch.tensor(
        [0, 3, 3, 7, 9])] + 1.2 * torch.randn(5, 12, generator=g, dtype=DTYPE)
    img.requires_grad_(True)
    loss_fn = CLIMSContextSuppressionLoss()
    assert loss_fn.loss_name == 'loss_cbs' and loss_fn.loss_weight == 1.0
    assert loss_fn.threshold == CLIMS_CBS_THRESHOLDS['voc'] == 0.26
    cos = torch.nn.functional.cosine_similarity(img[:, None],
                                                prompts[None],
                                                dim=-1)
    active = cos > 0.26
    assert active.any() and (~active).any()
    out = loss_fn(img, prompts)
    expected = ref_cbs(img, prompts, 0.26)
    torch.testing.assert_close(out, expected, rtol=1e-12, atol=1e-12)
    (grad, ) = torch.autograd.grad(out, img)
    (ref_grad, ) = torch.autograd.grad(expected, img)
    torch.testing.assert_close(grad, ref_grad, rtol=1e-10, atol=1e-12)
    # a sum over pairs: duplicating the batch doubles it
    torch.testing.assert_close(loss_fn(img.repeat(2, 1), prompts), 2 * out)
    # normalised inside
    torch.testing.assert_close(loss_fn(img * 9.0, prompts * 0.2), out)
    # COCO threshold counts fewer prompts
    coco = CLIMSContextSuppressionLoss(threshold=0.285)(img, prompts)
    torch.testing.assert_close(coco, ref_cbs(img, prompts, 0.285))
    assert coco <= out
    higher = CLIMSContextSuppressionLoss(threshold=0.5)(img, prompts)
    torch.testing.assert_close(higher, ref_cbs(img, prompts, 0.5))
    assert 0 < higher < out


def test_cbs_threshold_is_strict():
    """A prompt exactly at the threshold does not count; just above it does."""
    threshold = 0.5
    prompt = torch.tensor([[1.0, 0.0]], dtype=DTYPE)

    def at(c):
        return torch.tensor([[c, (1 - c**2)**0.5]], dtype=DTYPE)

    loss_fn = CLIMSContextSuppressionLoss(threshold=threshold)
    below = at(0.4).requires_grad_(True)
    out = loss_fn(below, prompt)
    assert out.item() == 0.0 and out.grad_fn is not None
    (grad, ) = torch.autograd.grad(out, below)
    assert torch.equal(grad, torch.zeros_like(grad))
    assert loss_fn(at(0.5 - 1e-12), prompt).item() == 0.0
    above = loss_fn(at(0.6), prompt)
    assert above.item() == pytest.approx(
        -torch.log(torch.tensor(0.4, dtype=DTYPE)).item(), rel=1e-12)
    # identical vectors: finite thanks to the clamp at 0.9999
    same = loss_fn(prompt.clone(), prompt)
    assert same.item() == pytest.approx(
        -torch.log(torch.tensor(1e-4, dtype=DTYPE)).item(), rel=1e-9)


@pytest.mark.parametrize('build', [
    lambda img: CLIMSObjectLoss()(img, torch.zeros(0, 8)),
    lambda img: CLIMSBackgroundLoss()(img, torch.zeros(0, 8)),
    lambda img: CLIMSContextSuppressionLoss()(img, torch.randn(10, 8)),
],
                         ids=['otm', 'btm', 'cbs'])
def test_empty_batch_is_zero_with_grad(build):
    img = torch.randn(0, 8, requires_grad=True)
    out = build(img)
    assert out.dim() == 0 and out.item() == 0.0
    assert out.grad_fn is not None
    out.backward()
    assert img.grad is not None and img.grad.shape == (0, 8)


def test_float16_inputs_computed_in_float32():
    img, text = correlated(seed=3)
    out = CLIMSObjectLoss()(img.half(), text.half())
    assert out.dtype == torch.float32
    torch.testing.assert_close(out.double(),
                               10.0 * ref_otm(img, text),
                               rtol=2e-3,
                               atol=2e-3)


def test_prompts_and_constants():
    assert clims_background_prompts('voc') == [
        'a photo of tree.', 'a photo of river.', 'a photo of sea.',
        'a photo of lake.', 'a photo of water.', 'a photo of railway.',
        'a photo of railroad.', 'a photo of track.', 'a photo of stone.',
        'a photo of rocks.'
    ]
    coco = clims_background_prompts('COCO')
    assert len(coco) == 88 == len(set(coco))
    assert coco[0] == 'a photo of street sign.'
    assert coco[-1] == 'a photo of park.'
    assert set(CLIMS_BACKGROUND_WORDS) == set(CLIMS_CBS_THRESHOLDS)
    with pytest.raises(ValueError, match='ade'):
        clims_background_prompts('ade')
    prompts = clims_class_prompts(['aeroplane', 'person', 'dining table'])
    assert prompts == [
        'a photo of aeroplane.', 'a photo of player.',
        'a photo of dining table.'
    ]


def test_errors_and_registration():
    with pytest.raises(ValueError, match=r'\[K, D\]'):
        CLIMSObjectLoss()(torch.randn(2, 4), torch.randn(3, 4))
    with pytest.raises(ValueError, match='bg_prompt_feats'):
        CLIMSContextSuppressionLoss()(torch.randn(2, 4), torch.randn(3, 5))
    with pytest.raises(ValueError, match='clamp'):
        CLIMSBackgroundLoss(clamp_min=0.5, clamp_max=0.4)
    for cfg, cls in [(dict(type='CLIMSObjectLoss'), CLIMSObjectLoss),
                     (dict(type='CLIMSBackgroundLoss'), CLIMSBackgroundLoss),
                     (dict(type='CLIMSContextSuppressionLoss',
                           threshold=0.285), CLIMSContextSuppressionLoss)]:
        module = MODELS.build(cfg)
        assert isinstance(module, cls)
        assert module.loss_name.startswith('loss_')
