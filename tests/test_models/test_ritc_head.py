"""RegionTextHead (QA-CLIMS and CLIMS configs): the vectorised step against
the loop reference."""
import json

import pytest
import torch
import torch.nn.functional as F
from mmengine.registry import init_default_scope
from mmengine.structures import BaseDataElement
from mmseg.registry import MODELS

import qaclims_mm  # noqa: F401
from qaclims_mm.testing import (TINY_CLIP_TEXT, TINY_CLIP_VISION,
                                reference_ritc_losses, save_tiny_clip)

init_default_scope('mmseg')

VISION, TEXT = TINY_CLIP_VISION, TINY_CLIP_TEXT


@pytest.fixture(scope='module')
def clip_files(tmp_path_factory):
    """A tiny CLIP: weights file (vision) and local-dir folder (text)."""
    folder = tmp_path_factory.mktemp('tiny_clip')
    save_tiny_clip(str(folder / 'clip.pt'), str(folder))
    return str(folder / 'clip.pt'), str(folder)


QACLIMS_LOSSES = dict(
    loss_frc=dict(type='FGRegionContrastiveLoss', tau=0.7, loss_weight=10.),
    loss_brc=dict(type='BGRegionContrastiveLoss', tau=0.7, loss_weight=8.),
    loss_reg=dict(type='AreaRegularizationLoss', loss_weight=0.2))
CLIMS_LOSSES = dict(
    loss_otm=dict(type='CLIMSObjectLoss', loss_weight=10.),
    loss_btm=dict(type='CLIMSBackgroundLoss', loss_weight=24.),
    loss_cbs=dict(type='CLIMSContextSuppressionLoss', threshold=0.26,
                  loss_weight=1.),
    loss_reg=dict(type='AreaRegularizationLoss', loss_weight=0.2))


def ritc_head(clip_path, **kwargs):
    """The QA-CLIMS configuration of :class:`RegionTextHead`."""
    torch.manual_seed(1)
    return MODELS.build(dict(
        type='RegionTextHead', in_channels=8, num_classes=5,
        clip=dict(type='build_mask_clip', model_cfg=VISION,
                  weights=clip_path),
        clip_input_size=32, text_source=dict(type='QACorpusTextSource'),
        losses=QACLIMS_LOSSES, **kwargs))


def unlabelled_samples(n):
    return [BaseDataElement(metainfo=dict(img_id=f'u{i}', img_labels=[]))
            for i in range(n)]


def batch(num_classes=5, d=16, seed=0):
    """Cams, images, labels and samples with QA tensors (varied masks)."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.zeros(3, num_classes)
    labels[0, [1, 3]] = 1
    labels[1, 0] = 1
    labels[2, [0, 2, 4]] = 1
    cams = torch.rand(3, num_classes, 6, 6, generator=g)
    images = torch.randn(3, 3, 40, 40, generator=g)
    samples, qa_list = [], []
    for b in range(3):
        k = int(labels[b].sum())
        fg_mask = torch.ones(k, 6, dtype=torch.bool)
        fg_mask[0, 4:] = False
        bg_mask = torch.zeros(k, 10, dtype=torch.bool)
        for i in range(k):
            bg_mask[i, :(i * 3 + b) % 10] = True  # 0..9 valid, some empty
        qa = dict(
            class_feats=F.normalize(torch.randn(k, d, generator=g), dim=-1),
            fg_feats=F.normalize(torch.randn(k, 6, d, generator=g), dim=-1),
            fg_mask=fg_mask,
            bg_feats=F.normalize(torch.randn(k, 10, d, generator=g), dim=-1),
            bg_mask=bg_mask)
        s = BaseDataElement(metainfo=dict(
            img_id=f'img{b}', img_labels=labels[b].nonzero()[:, 0].tolist()))
        s.set_field(qa, 'qa_feats')
        samples.append(s)
        qa_list.append(qa)
    assert any(not m.any() for q in qa_list for m in q['bg_mask'])
    return cams, images, labels, samples, qa_list


def test_vectorised_step_equals_loop_reference(clip_files):
    head = ritc_head(clip_files[0])
    cams, images, labels, samples, qa = batch()
    cams.requires_grad_(True)
    ours = head.loss_by_feat(cams, samples, images)
    clip = head.clip_on(cams.device)
    ref = reference_ritc_losses(cams, images, labels, qa, clip,
                                clip_input_size=32)
    for key in ('loss_frc', 'loss_brc', 'loss_reg'):
        torch.testing.assert_close(ours[key], ref[key], rtol=1e-5, atol=1e-6)
    g_ours = torch.autograd.grad(sum(ours.values()), cams)[0]
    g_ref = torch.autograd.grad(sum(ref.values()), cams)[0]
    torch.testing.assert_close(g_ours, g_ref, rtol=1e-4, atol=1e-7)
    # absent classes: gradient from L_REG only (0.2 / numel everywhere)
    absent = labels == 0
    reg_grad = torch.full_like(g_ours[absent], 0.2 / cams.numel())
    torch.testing.assert_close(g_ours[absent], reg_grad)
    assert not torch.allclose(g_ours[labels == 1], torch.zeros(1))


def test_ablation_plain_clip_on_hard_masked_pixels(clip_files):
    head = ritc_head(clip_files[0], region_mask='pixels')
    cams, images, labels, samples, _ = batch()
    fg, bg, fg_m, bg_m, _ = head.region_images(cams, images, labels)
    clip = head.clip_on(cams.device)
    v_fg, v_bg = head.encode_regions(fg, bg, fg_m, bg_m)
    torch.testing.assert_close(v_fg, clip(fg * fg_m, None))
    torch.testing.assert_close(v_bg, clip(bg * bg_m, None))


def test_clip_is_frozen_and_outside_the_module(clip_files):
    head = ritc_head(clip_files[0])
    names = [n for n, _ in head.named_parameters()]
    assert names == ['classifier.weight']  # CLIP: not optimised, not synced
    assert all('clip' not in k for k in head.state_dict())
    clip = head.clip_on(torch.device('cpu'))
    assert not any(p.requires_grad for p in clip.parameters())
    head.train()
    assert not clip.training
    cams, images, labels, samples, _ = batch()
    cams.requires_grad_(True)
    sum(head.loss_by_feat(cams, samples, images).values()).backward()
    assert all(p.grad is None for p in clip.parameters())
    assert cams.grad is not None


def test_missing_qa_feats_is_named(clip_files):
    head = ritc_head(clip_files[0])
    cams, images, labels, samples, _ = batch()
    bare = BaseDataElement(metainfo=dict(img_id='2007_000123',
                                         img_labels=[0]))
    with pytest.raises(KeyError, match='2007_000123.*LoadQACorpus'):
        head.loss_by_feat(cams, [samples[0], bare, samples[2]], images)


def clims_reference(cams, images, labels, clip, class_text, bg_text,
                    threshold, size=32, weights=(10., 24., 1., 0.2),
                    swap_btm_cbs=False):
    """CLIMS losses written from the spec (section 5), one pair at a time.

    OTM = mean_k -log(clamp(cos(v_fg, t_class), 1e-4, 0.9999));
    BTM = mean_k -log(1 - clamp(cos(v_bg, t_class), 1e-4, 0.9999));
    CBS = sum_k sum_p [cos(v_fg, t_p) > thr] -log(1 - cos(v_fg, t_p));
    REG = mean(A); v_fg = CLIP(A' * X'), v_bg = CLIP((1 - A') * X').
    ``swap_btm_cbs`` plants the bug to detect (BG region in CBS, FG in BTM).
    """
    w_otm, w_btm, w_cbs, w_reg = weights
    up = lambda t: F.interpolate(t, (size, size), mode='bilinear',  # noqa
                                 align_corners=True)
    otm, btm, cbs, n = 0., 0., 0., 0
    for b in range(labels.shape[0]):
        for c in range(labels.shape[1]):
            if labels[b, c] == 0:
                continue
            a = up(cams[b:b + 1, c:c + 1])  # [1, 1, S, S]
            x = up(images[b:b + 1])  # [1, 3, S, S]
            v_fg = F.normalize(clip(a * x, None)[0], dim=0)
            v_bg = F.normalize(clip((1 - a) * x, None)[0], dim=0)
            t = F.normalize(class_text[c], dim=0)
            otm = otm - torch.log((v_fg @ t).clamp(1e-4, 0.9999))
            v_btm, v_cbs = (v_fg, v_bg) if swap_btm_cbs else (v_bg, v_fg)
            btm = btm - torch.log(1 - (v_btm @ t).clamp(1e-4, 0.9999))
            for p in range(bg_text.shape[0]):
                cos = v_cbs @ F.normalize(bg_text[p], dim=0)
                if cos > threshold:
                    cbs = cbs - torch.log(1 - cos)
            n += 1
    return dict(loss_otm=w_otm * otm / n, loss_btm=w_btm * btm / n,
                loss_cbs=w_cbs * cbs, loss_reg=w_reg * cams.mean())


@pytest.fixture(scope='module')
def clims_cache(clip_files, tmp_path_factory):
    """The CLIMS prompt cache of the tiny text tower (build_text_cache.py
    --clims-prompts --classes voc)."""
    from qaclims_mm.datasets.class_names import get_classes
    from qaclims_mm.models.losses.clims_losses import (
        clims_background_prompts, clims_class_prompts)
    from qaclims_mm.qape.text_cache import build_prompt_text_cache
    prefix = str(tmp_path_factory.mktemp('clims_cache') / 'clims_voc')
    names = get_classes('voc')
    build_prompt_text_cache('local-dir:' + clip_files[1], None, prefix, names,
                            clims_class_prompts(names),
                            clims_background_prompts('voc'))
    return prefix


def clims_head(clip_path, cache):
    """The CLIMS configuration of :class:`RegionTextHead`."""
    torch.manual_seed(1)
    return MODELS.build(dict(
        type='RegionTextHead', in_channels=8, num_classes=20,
        clip=dict(type='build_mask_clip', model_cfg=VISION,
                  weights=clip_path),
        region_mask='none', clip_input_size=32,
        text_source=dict(type='PromptTextSource', cache=cache),
        losses=CLIMS_LOSSES))


def test_clims_head_losses(clip_files, clims_cache):
    clip_path, text_dir = clip_files
    head = clims_head(clip_path, clims_cache)
    text = head.text_source  # the prompt features read from the cache
    assert text.class_feats.shape == (20, 16)
    assert text.bg_feats.shape == (10, 16)
    assert 'text_source.class_feats' not in head.state_dict()
    cams, images, labels, samples, _ = batch(num_classes=20)
    clip = head.clip_on(cams.device)
    # Text features that the FG and BG regions both match to different,
    # mostly positive, degrees, so that every loss depends on which region
    # it sees (the tiny random CLIP alone gives cosines near zero).
    g = torch.Generator().manual_seed(3)
    with torch.no_grad():
        fg, bg, _, _, pair_class = head.region_images(cams, images, labels)
        v_fg = F.normalize(clip(fg, None), dim=-1)
        v_bg = F.normalize(clip(bg, None), dim=-1)
        for k, c in enumerate(pair_class.tolist()):
            text.class_feats[c] = 2 * v_fg[k] + v_bg[k]
        mix = torch.rand(10, len(pair_class), generator=g)
        text.bg_feats.copy_(mix @ v_fg + mix.flip(0) @ v_bg +
                                 0.3 * torch.randn(10, 16, generator=g))
        cos = F.normalize(clip(fg, None), dim=-1) @ F.normalize(
            text.bg_feats, dim=-1).t()
    threshold = cos.median().item()  # about half the (pair, prompt) terms
    head.losses['loss_cbs'].threshold = threshold
    cams.requires_grad_(True)
    losses = head.loss_by_feat(cams, samples, images)
    assert set(losses) == {'loss_otm', 'loss_btm', 'loss_cbs', 'loss_reg'}
    ref = clims_reference(cams, images, labels, clip, text.class_feats,
                          text.bg_feats, threshold)
    for key in ref:
        torch.testing.assert_close(losses[key], ref[key], rtol=1e-4,
                                   atol=1e-5, msg=key)
    # the check is sensitive: swapped FG / BG regions in BTM and CBS give
    # clearly different values
    with torch.no_grad():
        swapped = clims_reference(cams, images, labels, clip,
                                  text.class_feats, text.bg_feats,
                                  threshold, swap_btm_cbs=True)
    for key in ('loss_btm', 'loss_cbs'):
        assert abs(swapped[key] - ref[key]) > 0.05 * ref[key].abs(), key
    g_ours = torch.autograd.grad(sum(losses.values()), cams)[0]
    g_ref = torch.autograd.grad(sum(ref.values()), cams)[0]
    torch.testing.assert_close(g_ours, g_ref, rtol=1e-3, atol=1e-6)
    assert g_ours.abs().sum() > 0


def test_batch_without_labels_gives_all_losses_zero(clip_files):
    """COCO images without labels (official fix 987265f): no crash, and all
    three losses, L_REG included, are zeros attached to the graph."""
    head = ritc_head(clip_files[0])
    cams = torch.rand(2, 5, 6, 6, requires_grad=True)
    losses = head.loss_by_feat(cams, unlabelled_samples(2),
                               torch.randn(2, 3, 40, 40))
    assert set(losses) == {'loss_frc', 'loss_brc', 'loss_reg'}
    for name, value in losses.items():
        assert value.item() == 0, name
        assert value.requires_grad, name
    sum(losses.values()).backward()
    torch.testing.assert_close(cams.grad, torch.zeros_like(cams))


def test_label_less_batch_gives_real_zeros_with_non_finite_cams(clip_files):
    """A label-less batch whose CAMs hold NaN / inf still gives losses of
    exactly 0 (``cams.sum() * 0`` was NaN, and a NaN loss poisons the
    optimizer step and the logged loss), still attached to every parameter
    of the network that produced the CAMs, with finite zero gradients."""
    head = ritc_head(clip_files[0])
    logits = torch.randn(2, 5, 6, 6, requires_grad=True)
    bad = torch.zeros(2, 5, 6, 6)
    bad[0, 1, 2, 3] = float('nan')
    bad[1, 4, 0, 0] = float('inf')
    bad[1, 0, 5, 5] = float('-inf')
    cams = torch.sigmoid(logits) + bad
    losses = head.loss_by_feat(cams, unlabelled_samples(2),
                               torch.randn(2, 3, 40, 40))
    for name, value in losses.items():
        assert value.item() == 0, (name, value)
        assert value.requires_grad, name
    sum(losses.values()).backward()
    torch.testing.assert_close(logits.grad, torch.zeros_like(logits))
    # through the head itself: every trainable parameter gets a (zero)
    # gradient, so DDP (find_unused_parameters=False) sees all of them used
    head.zero_grad()
    losses = head.loss([torch.randn(2, 8, 6, 6)], unlabelled_samples(2),
                       images=torch.randn(2, 3, 40, 40))
    assert all(v.item() == 0 for v in losses.values()), losses
    sum(losses.values()).backward()
    trainable = [(n, p) for n, p in head.named_parameters()
                 if p.requires_grad]
    assert trainable
    for name, param in trainable:
        assert param.grad is not None, name
        torch.testing.assert_close(param.grad, torch.zeros_like(param))


def test_unlabelled_image_of_a_mixed_batch_counts_in_reg(clip_files):
    """Official: L_REG is the mean over the whole batch, label-less images
    included; the region losses see only the labelled images' pairs."""
    head = ritc_head(clip_files[0])
    cams, images, labels, samples, qa = batch()
    labels[1] = 0  # image 1 has no label: no QA pairs
    empty = {k: v[:0] for k, v in qa[1].items()}
    samples[1] = BaseDataElement(metainfo=dict(img_id='img1', img_labels=[]))
    samples[1].set_field(empty, 'qa_feats')
    qa[1] = empty
    losses = head.loss_by_feat(cams, samples, images)
    torch.testing.assert_close(losses['loss_reg'], 0.2 * cams.mean())
    assert not torch.allclose(losses['loss_reg'],
                              0.2 * cams[[0, 2]].mean())
    ref = reference_ritc_losses(cams, images, labels, qa,
                                head.clip_on(cams.device),
                                clip_input_size=32)
    for key in ('loss_frc', 'loss_brc', 'loss_reg'):
        torch.testing.assert_close(losses[key], ref[key], rtol=1e-5,
                                   atol=1e-6)


def test_coco_config_keeps_unlabelled_images_with_official_schedule():
    import os.path as osp

    from mmengine.config import Config
    root = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
    cfg = Config.fromfile(osp.join(
        root, 'configs/qaclims/qaclims_r50-os16_2xb4-155205it_coco14-'
        '512x512.py'))
    assert cfg.train_dataloader.dataset.skip_unlabeled is False
    # all 82,783 train2014 images, batch 4 on 2 GPUs, 15 epochs
    assert cfg.train_dataloader.batch_size == 4
    assert cfg.max_iters == (82783 // 4) // 2 * 15 == 155205
    assert cfg.train_cfg.max_iters == cfg.max_iters
    assert cfg.param_scheduler[0].end == cfg.max_iters


def test_stage2_stem_bn_trains_statistics_with_fixed_parameters():
    """Official CLIMS: conv1/bn1 parameters frozen, bn1 in train mode."""
    import os.path as osp

    from mmengine.config import Config
    from mmengine.optim import build_optim_wrapper
    root = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
    cfg = Config.fromfile(osp.join(
        root, 'configs/qaclims/qaclims_r50-os16_2xb4-19830it_voc12aug-'
        '512x512.py'))
    model_cfg = cfg.model
    model_cfg.backbone.norm_cfg = dict(type='BN', requires_grad=True)
    model_cfg.cam_head = dict(type='CAMHead', in_channels=2048,
                              num_classes=20)  # no CLIP weights needed here
    model = MODELS.build(model_cfg)
    model.train()
    assert model.backbone.bn1.training and model.backbone.layer1[0].bn1.training
    wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    lr = {id(p): g['lr'] for g in wrapper.optimizer.param_groups
          for p in g['params']}
    decay = {id(p): g['weight_decay'] for g in wrapper.optimizer.param_groups
             for p in g['params']}
    for p in (*model.backbone.conv1.parameters(),
              *model.backbone.bn1.parameters()):
        assert lr[id(p)] == 0 and decay[id(p)] == 0
    assert lr[id(model.backbone.layer1[0].conv1.weight)] == 3.5e-4
    assert lr[id(model.cam_head.classifier.weight)] == pytest.approx(3.5e-3)


# ---------------------------------------------------------- head contract
def test_every_cam_head_follows_the_mmseg_contract(clip_files):
    """loss(inputs, data_samples, train_cfg) with the labels read from the
    samples; predict(inputs, batch_img_metas, test_cfg) -> ReLU maps."""
    torch.manual_seed(0)
    feats = [torch.randn(3, 8, 6, 6)]
    cams, images, labels, samples, _ = batch()
    cam_head = MODELS.build(dict(type='CAMHead', in_channels=8,
                                 num_classes=5))
    losses = cam_head.loss(feats, samples, None)
    ref = F.multilabel_soft_margin_loss(cam_head.classify(feats), labels)
    torch.testing.assert_close(losses['loss_cls'], ref)
    region_head = ritc_head(clip_files[0])
    for head in (cam_head, region_head):
        maps = head.predict(feats, [{}] * 3, {})
        torch.testing.assert_close(maps, F.relu(head(feats)))
    losses = region_head.loss(feats, samples, None, images=images)
    ref = region_head.loss_by_feat(torch.sigmoid(region_head(feats)),
                                   samples, images)
    assert list(losses) == ['loss_frc', 'loss_brc', 'loss_reg']
    for key in ref:
        assert torch.equal(losses[key], ref[key]), key
    with pytest.raises(ValueError, match='needs the input images'):
        region_head.loss(feats, samples, None)


def test_clims_prompt_cache_holds_the_text_tower_features(clip_files,
                                                         clims_cache):
    """The cache rows are exactly what the text tower gives for the CLIMS
    prompts (two calls, prompt '{}'), so CLIMS losses do not change."""
    from qaclims_mm.datasets.class_names import get_classes
    from qaclims_mm.models.losses.clims_losses import (
        clims_background_prompts, clims_class_prompts)
    from qaclims_mm.qape.text_cache import encode_texts, load_text_encoder
    model, tok = load_text_encoder('local-dir:' + clip_files[1])
    classes = encode_texts(model, tok,
                           clims_class_prompts(get_classes('voc')), '{}')
    background = encode_texts(model, tok, clims_background_prompts('voc'),
                              '{}')
    head = clims_head(clip_files[0], clims_cache)
    assert torch.equal(head.text_source.class_feats, classes)
    assert torch.equal(head.text_source.bg_feats, background)
    with open(clims_cache + '.json') as f:
        index = json.load(f)
    assert index['class_prompts'][14] == 'a photo of player.'  # person


def test_clims_head_loads_no_text_encoder_at_build(clip_files, clims_cache,
                                                   monkeypatch):
    import open_clip

    def forbidden(*args, **kwargs):
        raise AssertionError('a text encoder was loaded at build time')

    monkeypatch.setattr(open_clip, 'create_model', forbidden)
    head = clims_head(clip_files[0], clims_cache)
    assert type(head.text_source).__name__ == 'PromptTextSource'


def test_a_qape_cache_is_not_a_prompt_cache(tmp_path, clip_files):
    """A QA corpus cache given to PromptTextSource fails, naming the file."""
    from qaclims_mm.qape import build_corpus, build_question_set
    from qaclims_mm.qape.text_cache import build_text_cache
    corpus = build_corpus([dict(img_id='a', class_name='cat',
                                fg=['x'] * 6, bg=['y'] * 10)],
                          build_question_set())
    prefix = str(tmp_path / 'qa')
    build_text_cache(corpus, 'local-dir:' + clip_files[1], None, prefix,
                     progress=False, class_names=('cat', 'dog'))
    with pytest.raises(ValueError, match=r'qa\.json is not a prompt cache'):
        MODELS.build(dict(type='PromptTextSource', cache=prefix))


def test_losses_and_text_source_are_checked_at_build(clip_files,
                                                     clims_cache):
    """A loss reading texts the source does not provide, a text source for
    another class count and a bad loss key fail when the head is built."""
    with pytest.raises(ValueError, match=r'loss_frc.*bg_texts.*'
                       r'PromptTextSource'):
        MODELS.build(dict(
            type='RegionTextHead', in_channels=8, num_classes=20,
            clip=dict(type='build_mask_clip', model_cfg=VISION,
                      weights=clip_files[0]),
            text_source=dict(type='PromptTextSource', cache=clims_cache),
            losses=QACLIMS_LOSSES))
    with pytest.raises(ValueError, match='holds 20 classes for '
                       'num_classes=5'):
        MODELS.build(dict(
            type='RegionTextHead', in_channels=8, num_classes=5,
            clip=dict(type='build_mask_clip', model_cfg=VISION,
                      weights=clip_files[0]),
            text_source=dict(type='PromptTextSource', cache=clims_cache),
            losses=CLIMS_LOSSES))
    with pytest.raises(ValueError, match='must start with "loss_"'):
        ritc_head(clip_files[0]).__class__(
            clip=dict(type='build_mask_clip', model_cfg=VISION,
                      weights=clip_files[0]),
            text_source=dict(type='QACorpusTextSource'),
            losses=dict(reg=dict(type='AreaRegularizationLoss')))


def test_configs_are_one_model_type_with_a_loss_dict():
    """QA-CLIMS (VOC, COCO) and CLIMS are configs of CAMClassifier +
    RegionTextHead; COCO changes two loss weights by inheritance."""
    import os.path as osp

    from mmengine.config import Config
    root = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
    cfgs = {
        name: Config.fromfile(osp.join(root, path)).model
        for name, path in (
            ('voc', 'configs/qaclims/qaclims_r50-os16_2xb4-19830it_'
             'voc12aug-512x512.py'),
            ('coco', 'configs/qaclims/qaclims_r50-os16_2xb4-155205it_'
             'coco14-512x512.py'),
            ('clims', 'configs/clims/clims_r50-os16_1xb16-15e_'
             'voc12aug-512x512.py'))
    }
    for model in cfgs.values():
        assert model.type == 'CAMClassifier'
        assert model.cam_head.type == 'RegionTextHead'
    weights = {name: {k: v.loss_weight
                      for k, v in model.cam_head.losses.items()}
               for name, model in cfgs.items()}
    assert weights == dict(
        voc=dict(loss_frc=10., loss_brc=8., loss_reg=0.2),
        coco=dict(loss_frc=30., loss_brc=24., loss_reg=0.2),
        clims=dict(loss_otm=10., loss_btm=24., loss_cbs=1., loss_reg=0.2))
    assert cfgs['clims'].cam_head.text_source.type == 'PromptTextSource'
    assert cfgs['clims'].cam_head.region_mask == 'none'
