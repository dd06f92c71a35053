"""Foreground Adaptive Thresholding against the per-map loop of spec §4.1."""
import pytest
import torch
from mmseg.registry import MODELS

from qaclims_mm.models.utils.fat import FATMask, fat_fg_bg_masks, fat_masks


def reference_fat(cams, alpha):
    """One map at a time: 1 where map >= alpha * max(map)."""
    out = []
    for cam in cams:
        threshold = torch.max(cam) * alpha
        out.append(
            torch.where(cam >= threshold, torch.ones_like(cam),
                        torch.zeros_like(cam)))
    return torch.stack(out)


def make_cams():
    torch.manual_seed(0)
    cams = torch.rand(6, 1, 16, 16)
    cams[1] *= 0.05  # a weak map: its own peak sets the threshold
    cams[2] = 0  # empty map: 0 >= 0 everywhere
    cams[3] = torch.linspace(0, 3, 256).view(1, 16, 16)  # peak above 1
    # ties: exactly alpha * max is foreground
    cams[4] = 0.01
    cams[4, 0, 0, 0] = 0.5
    cams[4, 0, 5, 5] = torch.tensor(0.5) * 0.1
    cams[5, 0, 3, 3] = 1.0
    return cams


@pytest.mark.parametrize('alpha', [0.1, 0.35])
def test_fat_matches_loop(alpha):
    cams = make_cams()
    masks = fat_masks(cams, alpha)
    assert masks.dtype == cams.dtype and masks.shape == cams.shape
    assert torch.equal(masks, reference_fat(cams, alpha))
    assert torch.equal(fat_masks(cams[:, 0], alpha), masks[:, 0])
    assert torch.equal(fat_masks(cams, alpha, as_bool=True), masks.bool())


def test_fat_ties_and_peaks():
    cams = make_cams()
    masks = fat_masks(cams, 0.1)
    assert masks[4, 0, 5, 5] == 1  # the tie
    assert masks[4, 0, 0, 0] == 1 and masks[4].sum() == 2
    assert masks[2].all()  # empty map
    assert masks[1].mean() > 0.5  # relative threshold, not absolute
    # ramp 0..3 in steps of 3/255: 25 * 3/255 < 0.3 <= 26 * 3/255
    assert (masks[3, 0].flatten()[:26] == 0).all()
    assert masks[3, 0].flatten()[26:].all()


def test_fg_bg_masks_and_module():
    cams = make_cams().requires_grad_(True)
    fg, bg = fat_fg_bg_masks(cams * 2, 0.1)
    assert torch.equal(fg, reference_fat(cams.detach() * 2, 0.1))
    assert torch.equal(bg, 1 - fg)
    assert not fg.requires_grad and not bg.requires_grad
    module = MODELS.build(dict(type='FATMask', alpha=0.1))
    assert isinstance(module, FATMask)
    fg2, bg2 = module(cams)
    assert torch.equal(fg2, reference_fat(cams.detach(), 0.1))
    assert torch.equal(bg2, 1 - fg2)
    with pytest.raises(ValueError, match=r'\[N, 1, H, W\]'):
        fat_masks(torch.rand(2, 3, 4, 4))
    with pytest.raises(ValueError, match='alpha'):
        FATMask(alpha=1.5)
