"""RITC training step: vectorised head vs the official-style loop.

Both compute the QA-CLIMS losses of the same batch (sigmoid CAMs, images, QA
text tensors) with the same frozen CLIP, then backpropagate to the CAMs:

* reference: :func:`reference_ritc_losses` — per-map FAT loop, per-pair loss
  loop, separate FG and BG CLIP calls of batch 1 (the official code);
* ours: :class:`RegionTextHead` — one FAT op, one CLIP call for all 2K regions,
  losses as tensor ops.

Prints time per iteration, peak GPU memory (CUDA only), the losses' relative
difference (asserted < 1e-5 in fp32) and ends with ``speedup: <x>`` (fp32).
``--preset small`` (default, CPU): a small ViT; ``--preset voc``: VOC shapes
(batch 4 x 20 classes, 32x32 CAMs, 512 px images) with a ViT-L/14-sized random
CLIP — for a GPU. ``--bf16`` / ``--checkpointing`` time those options of ours
(memory/speed levers; not part of the fp32 parity check).
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
sys.path.insert(1, osp.dirname(osp.dirname(osp.abspath(__file__))))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from bench_utils import measure  # noqa: E402
from mmengine.registry import init_default_scope  # noqa: E402
from mmengine.structures import BaseDataElement  # noqa: E402
from mmseg.registry import MODELS  # noqa: E402

import qaclims_mm  # noqa: E402,F401
from qaclims_mm.testing import reference_ritc_losses  # noqa: E402

PRESETS = {
    'small': dict(
        clip=dict(embed_dim=64, vision_cfg=dict(
            image_size=64, patch_size=8, width=128, layers=4, head_width=32)),
        batch=4, classes=20, cam=16, image=128, pairs_per_image=2),
    'voc': dict(
        clip=dict(embed_dim=768, vision_cfg=dict(
            image_size=224, patch_size=14, width=1024, layers=24,
            head_width=64)),
        batch=4, classes=20, cam=32, image=512, pairs_per_image=2),
}

QACLIMS_LOSSES = dict(
    loss_frc=dict(type='FGRegionContrastiveLoss', tau=0.7, loss_weight=10.),
    loss_brc=dict(type='BGRegionContrastiveLoss', tau=0.7, loss_weight=8.),
    loss_reg=dict(type='AreaRegularizationLoss', loss_weight=0.2))


def make_batch(p: dict, device: torch.device, seed: int = 0):
    """Random CAMs, images, labels (``pairs_per_image`` classes each) and
    unit-norm QA text features for preset ``p``.

    Returns:
        tuple: ``cams`` ``[B, C, h, w]``, ``images`` ``[B, 3, H, W]``,
        ``labels`` ``[B, C]``, the data samples carrying ``img_labels`` and
        ``qa_feats`` (for :class:`RegionTextHead`) and the per-image
        ``qa_feats`` dicts (for :func:`reference_ritc_losses`).
    """
    g = torch.Generator().manual_seed(seed)
    b, c, d = p['batch'], p['classes'], p['clip']['embed_dim']
    labels = torch.zeros(b, c)
    for i in range(b):
        labels[i, torch.randperm(c, generator=g)[:p['pairs_per_image']]] = 1
    cams = torch.rand(b, c, p['cam'], p['cam'], generator=g)
    images = torch.randn(b, 3, p['image'], p['image'], generator=g)
    samples, qa_list = [], []
    for i in range(b):
        k = int(labels[i].sum())
        bg_mask = torch.rand(k, 10, generator=g) > 0.3
        qa = dict(
            class_feats=F.normalize(torch.randn(k, d, generator=g), dim=-1),
            fg_feats=F.normalize(torch.randn(k, 6, d, generator=g), dim=-1),
            fg_mask=torch.ones(k, 6, dtype=torch.bool),
            bg_feats=F.normalize(torch.randn(k, 10, d, generator=g), dim=-1),
            bg_mask=bg_mask)
        qa = {key: v.to(device) for key, v in qa.items()}
        s = BaseDataElement(metainfo=dict(
            img_id=str(i), img_labels=labels[i].nonzero()[:, 0].tolist()))
        s.set_field(qa, 'qa_feats')
        samples.append(s)
        qa_list.append(qa)
    return (cams.to(device), images.to(device), labels.to(device), samples,
            qa_list)


def fmt_mb(mb: float) -> str:
    return 'n/a (CPU)' if mb != mb else f'{mb:.0f} MB'


def timed(fn, repeats: int, device: torch.device):
    """Mean seconds per call (after one warm-up), peak CUDA memory (MB)."""
    r = measure(fn, device, repeats)
    peak = r['peak_mb'] if device.type == 'cuda' else float('nan')
    return r['seconds'], peak, r['out']


def build_ritc_head(p: dict, device: torch.device, **clip_opts):
    """A QA-CLIMS :class:`RegionTextHead` with a random mask-prompted CLIP
    of preset ``p``.

    Needs the ``mmseg`` default scope (``init_default_scope('mmseg')``).

    Args:
        p (dict): A :data:`PRESETS` entry (``clip`` config, ``classes``).
        device (torch.device): Where the head and its CLIP go.
        **clip_opts: :class:`MaskPromptedCLIP` options (``autocast_dtype``,
            ``checkpointing``).
    """
    torch.manual_seed(0)
    clip = dict(type='MaskPromptedCLIP', model_cfg=p['clip'], **clip_opts)
    head = MODELS.build(dict(
        type='RegionTextHead', in_channels=p.get('in_channels', 8),
        num_classes=p['classes'], clip=clip,
        clip_input_size=p['clip']['vision_cfg']['image_size'],
        text_source=dict(type='QACorpusTextSource'),
        losses=QACLIMS_LOSSES)).to(device)
    head.clip_on(device)
    return head


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--preset', choices=sorted(PRESETS), default='small')
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available()
                        else 'cpu')
    parser.add_argument('--repeats', type=int, default=3)
    parser.add_argument('--bf16', action='store_true',
                        help='also time ours with bf16 autocast of CLIP')
    parser.add_argument('--checkpointing', action='store_true',
                        help='also time ours with activation checkpointing')
    args = parser.parse_args()
    init_default_scope('mmseg')
    torch.manual_seed(0)
    p = PRESETS[args.preset]
    device = torch.device(args.device)

    def head_with(**opts):
        return build_ritc_head(p, device, **opts)

    head = head_with()
    clip = head.clip_on(device)
    cams, images, labels, samples, qa = make_batch(p, device)
    num_pairs = int(labels.sum())

    def step_ours(h=head):
        x = cams.clone().requires_grad_(True)
        losses = h.loss_by_feat(x, samples, images)
        total = sum(losses.values())
        total.backward()
        return total.detach()

    def step_ref():
        x = cams.clone().requires_grad_(True)
        losses = reference_ritc_losses(
            x, images, labels, qa, clip,
            clip_input_size=p['clip']['vision_cfg']['image_size'])
        total = sum(losses.values())
        total.backward()
        return total.detach()

    t_ref, m_ref, loss_ref = timed(step_ref, args.repeats, device)
    t_ours, m_ours, loss_ours = timed(step_ours, args.repeats, device)
    rel = abs(loss_ours.item() - loss_ref.item()) / abs(loss_ref.item())
    print(f'preset {args.preset} on {device}: batch {p["batch"]} x '
          f'{p["classes"]} classes, {num_pairs} positive pairs, CLIP '
          f'{p["clip"]["vision_cfg"]}')
    print(f'reference (loops, 2K CLIP calls): {t_ref * 1e3:8.1f} ms/iter, '
          f'peak {fmt_mb(m_ref)}')
    print(f'ours (vectorised, 1 CLIP call):   {t_ours * 1e3:8.1f} ms/iter, '
          f'peak {fmt_mb(m_ours)}')
    print(f'loss: reference {loss_ref.item():.6f}, ours '
          f'{loss_ours.item():.6f}, relative difference {rel:.2e}')
    assert rel < 1e-5, f'losses differ by {rel:.2e} (fp32 parity is < 1e-5)'
    for flag, opts in (('bf16', dict(autocast_dtype='bf16')),
                       ('checkpointing', dict(checkpointing=True))):
        if getattr(args, flag):
            h = head_with(**opts)
            t, m, _ = timed(lambda: step_ours(h), args.repeats, device)
            print(f'ours with {flag}: {t * 1e3:8.1f} ms/iter '
                  f'({t_ref / t:.2f}x vs reference), peak {fmt_mb(m)} '
                  f'({m / m_ref:.2f}x of reference)')
    print(f'speedup: {t_ref / t_ours:.2f}')


if __name__ == '__main__':
    main()
