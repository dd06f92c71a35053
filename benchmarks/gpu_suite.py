"""One command for every GPU benchmark of qaclims-mm (issue 14).

Each benchmark runs a reference implementation and ours on the same inputs in
the same run, checks that the results are equal, and reports time, peak memory
and the ratios; everything is written to ``--out`` as ``results.json`` and
``results.md`` and the table is printed. The process exits with status 1 when
a comparison failed (files are written first).

1. ``ritc_step`` — one RITC training iteration at VOC shapes with random
   weights of the real architectures: ResNet-50 at output stride 16 on
   ``batch x 3 x 512 x 512`` (torchvision, :mod:`bench_models`), the CAM
   classifier, and a ViT-L/14 mask-prompted CLIP (224 input, depth-3 mask
   prompts) on the 2K FG/BG regions of the K positive pairs. Reference: the
   official-style loop (:func:`reference_ritc_losses`: per-map FAT, per-pair
   losses, 2K CLIP calls of batch 1). Ours: :class:`RegionTextHead` in fp32, then
   with bf16 autocast (backbone and CLIP), then with activation
   checkpointing of the CLIP blocks. fp32 parity: same total loss and same
   gradient of the CAMs (TF32 off for the fp32 runs).

   **FLOPs counted** (``torch.utils.flop_counter.FlopCounterMode`` on one
   fp32 step of ours, i.e. the work of the step, not of any recomputation):
   matrix products and convolutions (2 FLOPs per multiply-add) of the R50
   forward and backward (input and weight gradients), of the CAM classifier,
   and of the frozen CLIP forward plus its *input* backward (no weight
   gradients: CLIP is frozen), attention included. At VOC shapes (counted
   on the meta device): R50-OS16 at 512² is 32.4 GMAC per image forward,
   i.e. 0.26 TFLOP forward and 0.51 TFLOP backward for the 4 images; a
   ViT-L/14 at 224 is 81.0 GMAC per region forward and 84.3 GMAC for the
   input backward, i.e. 0.33 TFLOP per region and 5.3 TFLOP for 2K = 16
   regions (K = 8 pairs): about 6.1 TFLOP per iteration, CLIP 87 %.
   Achieved TFLOP/s = counted FLOPs / measured time; the stretch goal is
   30 % of the chip's dense bf16 peak (``--peak-tflops``, else looked up
   from the device name) in the bf16 step. When it is missed (or cannot be
   assessed, e.g. on a CPU) a ``torch.profiler`` table of the top ops of one
   bf16 step is reported.
2. ``qape`` — a random BLIP VQA of the real size (ViT-B/16 at 480 px,
   BERT-base text encoder and decoder, 30,524-token vocabulary; beam 3, at
   most 10 tokens): the official loop (:meth:`BlipVQAEngine.answer_naive`,
   batch 1, image re-encoded per question) vs :meth:`BlipVQAEngine.answer`
   (one ViT pass per image, questions batched); answers compared, pairs/s,
   and the whole-VOC estimate: 18,605 (image, class) pairs of train_aug ∪ val
   (12,031 images, spec §2) × 16 questions at the measured pairs/s.
3. ``random_walk_<H>x<W>`` — the official dense walk
   (:func:`dense_random_walk_reference`) vs :func:`propagate_cams` on a
   500×375 and a 1000×750 image (3 maps); same labels
   (:func:`rw_to_label`). The dense walk is skipped when its estimated time
   exceeds the budget left.
4. ``cam_inference`` — multi-scale (1, 0.5, 1.5, 2) + flip CAMs of R50-OS16
   (images/s): the official ``make_cam`` arithmetic (every class resized,
   then the labelled ones kept) vs :func:`aggregate_multiscale_cams`, on the
   same network outputs. ``deeplabv2_msc`` — training-iteration time of a
   DeepLabV2-R101 (OS 8, ASPP v2, MSC 1/0.75/0.5) stand-in built from
   torchvision (``mmseg.models`` needs mmcv's compiled ops), batch 10, 321²;
   a reference point without a second implementation.

Only modules that import without ``mmseg.models`` / ``mmcv.ops`` are used
(see ``tests/test_core_imports.py``). Every benchmark takes a share of
``--budget-s`` (default 420 s: the command ends within 8 minutes on one
H100/H200); one that cannot start in time is reported as skipped.

Usage::

    python benchmarks/gpu_suite.py --out work_dirs/gpu_suite          # GPU
    python benchmarks/gpu_suite.py --smoke --device cpu --out /tmp/s  # CI
"""
import argparse
import datetime
import json
import math
import os
import os.path as osp
import platform
import sys
import tempfile
import time
import traceback
from typing import Any, Callable, Dict, List, Optional

HERE = osp.dirname(osp.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(1, osp.dirname(HERE))

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from bench_models import (DeepLabV2MSC, random_segmentation_batch,  # noqa
                          resnet50_os16)
from bench_utils import Budget, PeakMemory, measure, sync  # noqa: E402

#: Shapes of the real run and of the CPU smoke run.
SHAPES = {
    'full': dict(
        ritc=dict(
            clip=dict(embed_dim=768, vision_cfg=dict(
                image_size=224, patch_size=14, width=1024, layers=24,
                head_width=64)),
            batch=4, classes=20, cam=32, image=512, pairs_per_image=2,
            in_channels=2048, repeats=5),
        qape=dict(image_size=480, patch_size=16, hidden_size=768,
                  vision_layers=12, text_layers=12, vision_heads=12,
                  text_heads=12, vocab_size=30524, num_images=16, classes=1),
        random_walk=[(375, 500), (750, 1000)],
        cam=dict(sizes=[(375, 500), (500, 375), (333, 500)], num_images=12,
                 scales=(1.0, 0.5, 1.5, 2.0), classes=20, labels=2),
        deeplab=dict(batch=10, size=321, depth=101, num_classes=21,
                     repeats=5)),
    'smoke': dict(
        ritc=dict(
            clip=dict(embed_dim=32, vision_cfg=dict(
                image_size=32, patch_size=8, width=64, layers=3,
                head_width=32)),
            batch=2, classes=5, cam=4, image=64, pairs_per_image=2,
            in_channels=2048, repeats=2),
        qape=dict(image_size=64, patch_size=16, hidden_size=32,
                  vision_layers=1, text_layers=1, vision_heads=2,
                  text_heads=2, vocab_size=None, num_images=2, classes=1),
        random_walk=[(48, 64)],
        cam=dict(sizes=[(48, 64), (64, 48)], num_images=2,
                 scales=(1.0, 0.5), classes=5, labels=2),
        deeplab=dict(batch=2, size=48, depth=50, num_classes=21, repeats=2)),
}

#: Budget shares (fractions of --budget-s) of the benchmarks' timed loops.
SHARES = dict(ritc_step=0.25, qape=0.22, random_walk=0.25, cam_inference=0.08,
              deeplabv2_msc=0.08)

#: Dense bf16 tensor-core peaks (TFLOP/s, without sparsity) by device name.
BF16_PEAKS = (('H200', 989.4), ('H100 PCIe', 756.5), ('H100 NVL', 835.5),
              ('H100', 989.4), ('H800', 989.4), ('A100', 312.0),
              ('L40S', 362.1), ('A10G', 70.0))

#: (image, class) pairs of VOC train_aug ∪ val (12,031 images; spec §2).
VOC_PAIRS = 18605
QUESTIONS_PER_PAIR = 16


# --------------------------------------------------------------- helpers
def bf16_peak_tflops(device: torch.device) -> Optional[float]:
    """The dense bf16 peak of the CUDA device, None if unknown / CPU."""
    if device.type != 'cuda':
        return None
    name = torch.cuda.get_device_name(device)
    for key, peak in BF16_PEAKS:
        if all(part in name for part in key.split()):
            return peak
    return None


def variant(name: str, seconds: Optional[float], peak_mb: Optional[float],
            ref: Optional[dict] = None, **extra) -> dict:
    """A result row; ``speedup`` and ``mem_ratio`` relative to ``ref``."""
    row = dict(name=name, ms=None if seconds is None else seconds * 1e3,
               peak_mb=peak_mb, speedup=None, mem_ratio=None)
    if ref is not None and seconds:
        row['speedup'] = ref['ms'] / (seconds * 1e3)
        if ref.get('peak_mb') and peak_mb is not None:
            row['mem_ratio'] = peak_mb / ref['peak_mb']
    row.update(extra)
    return row


def target(name: str, value: Optional[float], goal: float,
           higher_is_better: bool = True) -> dict:
    """A target check; ``met`` is None when ``value`` is unknown."""
    met = None
    if value is not None:
        met = value >= goal if higher_is_better else value <= goal
    return dict(name=name, value=value, goal=goal,
                op='>=' if higher_is_better else '<=', met=met)


def rel_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    """``max |a - b| / max |b|`` (0 for two zero tensors)."""
    a, b = a.detach().double().cpu(), b.detach().double().cpu()
    scale = b.abs().max().item()
    diff = (a - b).abs().max().item()
    return diff / scale if scale > 0 else diff


def profile_table(fn: Callable[[], Any], device: torch.device,
                  rows: int = 15) -> str:
    """``torch.profiler`` table of the top ops of one call of ``fn``."""
    from torch.profiler import ProfilerActivity, profile
    activities = [ProfilerActivity.CPU]
    if device.type == 'cuda':
        activities.append(ProfilerActivity.CUDA)
    with profile(activities=activities) as prof:
        fn()
        sync(device)
    events = prof.key_averages()
    keys = (['self_device_time_total', 'self_cuda_time_total']
            if device.type == 'cuda' else ['self_cpu_time_total'])
    for key in keys:
        try:
            return events.table(sort_by=key, row_limit=rows,
                                max_name_column_width=60)
        except (AttributeError, KeyError, ValueError):
            continue
    return events.table(row_limit=rows)


class tf32_disabled:
    """Context: plain fp32 matrix products and convolutions (no TF32)."""

    def __enter__(self):
        self.saved = (torch.backends.cuda.matmul.allow_tf32,
                      torch.backends.cudnn.allow_tf32)
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False

    def __exit__(self, *exc):
        (torch.backends.cuda.matmul.allow_tf32,
         torch.backends.cudnn.allow_tf32) = self.saved


# ------------------------------------------------------------ 1. RITC
def bench_ritc(p: dict, device: torch.device, seconds: float,
               peak_tflops: Optional[float]) -> dict:
    """RITC step: official loop vs ours (fp32, bf16, checkpointing)."""
    from mmengine.registry import init_default_scope
    from ritc_step import build_ritc_head, make_batch
    from torch.utils.flop_counter import FlopCounterMode

    from qaclims_mm.testing import reference_ritc_losses
    init_default_scope('mmseg')
    torch.manual_seed(0)
    with torch.device(device):
        backbone = resnet50_os16()
        head = build_ritc_head(p, device)
    head.train()
    clip = head.clip_on(device)
    _, images, labels, samples, qa = make_batch(p, device)
    size = p['clip']['vision_cfg']['image_size']
    num_pairs = int(labels.sum())
    use_amp = device.type == 'cuda'

    def forward_cams(amp: bool) -> torch.Tensor:
        with torch.autocast(device.type, dtype=torch.bfloat16,
                            enabled=amp and use_amp):
            logits = head.forward(backbone(images))
        cams = torch.sigmoid(logits.float())
        cams.retain_grad()
        return cams

    def step(losses_fn: Callable, amp: bool = False):
        backbone.zero_grad(set_to_none=True)
        head.zero_grad(set_to_none=True)
        cams = forward_cams(amp)
        total = sum(losses_fn(cams).values())
        total.backward()
        return total.detach(), cams.grad.detach()

    def ours(cams):
        return head.loss_by_feat(cams, samples, images)

    def ref(cams):
        return reference_ritc_losses(cams, images, labels, qa, clip,
                                     clip_input_size=size)

    reps, share = p['repeats'], seconds / 4
    with tf32_disabled():
        r_ref = measure(lambda: step(ref), device, reps, share)
        r_ours = measure(lambda: step(ours), device, reps, share)
        clip.checkpointing = True
        r_ckpt = measure(lambda: step(ours), device, reps, share)
        clip.checkpointing = False
        with FlopCounterMode(display=False) as counter:
            step(ours)
        flops = counter.get_total_flops()
    clip.autocast_dtype = 'bf16'
    r_bf16 = measure(lambda: step(ours, amp=True), device, reps, share)

    loss_rel = rel_diff(r_ours['out'][0], r_ref['out'][0])
    grad_rel = rel_diff(r_ours['out'][1], r_ref['out'][1])
    ckpt_rel = rel_diff(r_ckpt['out'][1], r_ours['out'][1])
    bf16_rel = rel_diff(r_bf16['out'][0], r_ref['out'][0])
    tol = 1e-4
    equal = loss_rel < tol and grad_rel < 1e-3 and ckpt_rel < 1e-3

    def tflops(r):
        return flops / r['seconds'] / 1e12

    ref_row = variant('reference: per-pair loop, fp32', r_ref['seconds'],
                      r_ref['peak_mb'], tflops=tflops(r_ref))
    rows = [
        ref_row,
        variant('ours: vectorised, fp32', r_ours['seconds'],
                r_ours['peak_mb'], ref_row, tflops=tflops(r_ours)),
        variant('ours: bf16 autocast', r_bf16['seconds'], r_bf16['peak_mb'],
                ref_row, tflops=tflops(r_bf16)),
        variant('ours: fp32 + activation checkpointing', r_ckpt['seconds'],
                r_ckpt['peak_mb'], ref_row, tflops=tflops(r_ckpt)),
    ]
    frac = (tflops(r_bf16) / peak_tflops) if peak_tflops else None
    targets = [
        target('fp32 speed vs loop (x)', rows[1]['speedup'], 1.5),
        target('bf16 speed vs loop (x)', rows[2]['speedup'], 3.0),
        target('checkpointing peak memory vs loop (x)', rows[3]['mem_ratio'],
               0.6, higher_is_better=False),
        target('bf16 share of the bf16 peak (stretch)', frac, 0.30),
    ]
    result = dict(
        equal=equal, reference='official-style per-pair loop',
        checks=dict(loss_rel_diff=loss_rel, cam_grad_rel_diff=grad_rel,
                    checkpointing_grad_rel_diff=ckpt_rel,
                    bf16_loss_rel_diff=bf16_rel, tolerance=tol),
        shapes=dict(batch=p['batch'], classes=p['classes'],
                    image=p['image'], positive_pairs=num_pairs,
                    clip_regions=2 * num_pairs,
                    clip=p['clip']['vision_cfg'], mask_prompt_depth=3),
        flops_per_iter=flops, peak_bf16_tflops=peak_tflops,
        variants=rows, targets=targets)
    if targets[-1]['met'] is not True:
        result['profile_bf16'] = profile_table(
            lambda: step(ours, amp=True), device)
    clip.autocast_dtype = None
    return result


# ------------------------------------------------------------ 2. QAPE
def bench_qape(p: dict, device: torch.device, seconds: float,
               max_mismatch_rate: float) -> dict:
    """QAPE: the official one-question loop vs the batched BLIP engine."""
    from qape_throughput import compare_paths, make_images, make_questions

    from qaclims_mm.qape.engines.blip import BlipVQAEngine
    from qaclims_mm.testing import build_tiny_blip_vqa
    with tempfile.TemporaryDirectory() as tmp:
        path = build_tiny_blip_vqa(
            osp.join(tmp, 'blip'), image_size=p['image_size'],
            patch_size=p['patch_size'], hidden_size=p['hidden_size'],
            vision_layers=p['vision_layers'], text_layers=p['text_layers'],
            vision_heads=p['vision_heads'], text_heads=p['text_heads'],
            vocab_size=p['vocab_size'])
        engine = BlipVQAEngine(path, device=str(device), dtype='auto',
                               image_size=p['image_size'], batch_size=64)
    images = make_images(p['num_images'])
    questions = make_questions(p['num_images'], p['classes'])
    r = compare_paths(engine, images, questions, max_seconds=seconds * 0.8)
    n = r['images']
    memory = PeakMemory(device)
    memory.reset()
    engine.answer_naive(images[0], questions[0][0])
    naive_mb = memory.read()
    memory.reset()
    engine.answer(images[:n], questions[:n])
    batched_mb = memory.read()
    pairs = n * p['classes']
    equal = r['mismatches'] <= max_mismatch_rate * r['questions']
    ref_row = variant('reference: official loop (batch 1, image re-encoded)',
                      r['t_naive'], naive_mb,
                      pairs_per_s=pairs / r['t_naive'])
    ours_row = variant('ours: batched engine (one ViT pass per image)',
                       r['t_batched'], batched_mb, ref_row,
                       pairs_per_s=pairs / r['t_batched'])
    voc = {name: VOC_PAIRS / row['pairs_per_s']
           for name, row in (('reference_s', ref_row), ('ours_s', ours_row))}
    return dict(
        equal=equal, reference='official one-question loop',
        checks=dict(mismatches=r['mismatches'], questions=r['questions'],
                    identical=r['mismatches'] == 0,
                    max_mismatch_rate=max_mismatch_rate),
        shapes=dict(p, images_timed=n, pairs=pairs,
                    dtype=str(engine.dtype).replace('torch.', '')),
        variants=[ref_row, ours_row],
        targets=[target('speed vs loop (x)', ours_row['speedup'], 10.0)],
        voc_estimate=dict(pairs=VOC_PAIRS, questions=VOC_PAIRS *
                          QUESTIONS_PER_PAIR, **voc))


# ------------------------------------------------------ 3. random walk
def bench_random_walk(hw, device: torch.device, seconds: float,
                      classes: int = 3) -> dict:
    """Dense official walk vs the sparse walk on one image."""
    from random_walk import make_inputs

    from qaclims_mm.refine.random_walk import propagate_cams, rw_to_label
    from qaclims_mm.testing import dense_random_walk_reference
    height, width = hw
    cams, edge = make_inputs(height, width, classes)
    cams, edge = cams.to(device), edge.to(device)
    nodes = cams.shape[-2] * cams.shape[-1]
    r_ours = measure(lambda: propagate_cams(cams, edge), device, 3,
                     seconds / 4)
    ours_row = dict(name='ours: sparse, 256 products')
    # 8 squarings of an N x N matrix; assumed fp32 rates (no TF32) for the
    # go / no-go decision only
    dense_flops = 8 * 2 * float(nodes)**3
    rate = 45e12 if device.type == 'cuda' else 5e10
    estimate = dense_flops / rate
    shapes = dict(image=[height, width], grid=list(cams.shape[-2:]),
                  nodes=nodes, maps=classes)
    if estimate > seconds:
        row = variant('ours: sparse, 256 products', r_ours['seconds'],
                      r_ours['peak_mb'])
        return dict(status='partial', equal=None, reference=None,
                    reason=f'dense reference skipped: about '
                    f'{estimate:.0f} s estimated > {seconds:.0f} s left',
                    shapes=shapes, variants=[row], targets=[])
    with tf32_disabled():
        r_ref = measure(lambda: dense_random_walk_reference(cams, edge),
                        device, 1, warmup=0)
    keys = np.arange(classes)
    lab_ours = rw_to_label(r_ours['out'], keys, (height, width))
    lab_ref = rw_to_label(r_ref['out'], keys, (height, width))
    differ = int((lab_ours != lab_ref).sum())
    ref_row = variant('reference: dense, 8 squarings (official)',
                      r_ref['seconds'], r_ref['peak_mb'])
    ours_row = variant(ours_row['name'], r_ours['seconds'],
                       r_ours['peak_mb'], ref_row)
    tol = 1e-4  # near-tied pixels: the two sum in different orders
    return dict(
        equal=differ <= tol * lab_ref.size,
        reference='official dense propagate_to_edge',
        checks=dict(pixels_differ=differ, pixels=int(lab_ref.size),
                    max_map_rel_diff=rel_diff(r_ours['out'], r_ref['out']),
                    tolerance=tol),
        shapes=shapes, variants=[ref_row, ours_row],
        targets=[target('speed vs dense (x)', ours_row['speedup'], 100.0),
                 target('peak memory vs dense (x)', ours_row['mem_ratio'],
                        0.2, higher_is_better=False)])


# ---------------------------------------------------- 4. CAM inference
def _official_make_cam(outputs: List[torch.Tensor], image_hw, keys,
                       stride: int = 4):
    """IRN ``make_cam`` arithmetic: every class map is resized per scale
    and summed, then the labelled classes are kept and max-normalised."""
    h, w = image_hw
    small = (math.ceil(h / stride), math.ceil(w / stride))
    up = (math.ceil(h / 16) * 16, math.ceil(w / 16) * 16)
    strided = torch.stack([
        F.interpolate(o[None], small, mode='bilinear', align_corners=False)[0]
        for o in outputs
    ]).sum(0)
    high = torch.stack([
        F.interpolate(o[:, None], up, mode='bilinear', align_corners=False)
        for o in outputs
    ]).sum(0)[:, 0, :h, :w]
    strided, high = strided[keys], high[keys]
    strided = strided / (F.adaptive_max_pool2d(strided, (1, 1)) + 1e-5)
    high = high / (F.adaptive_max_pool2d(high, (1, 1)) + 1e-5)
    return strided, high


def bench_cam_inference(p: dict, device: torch.device,
                        seconds: float) -> dict:
    """Multi-scale + flip CAMs of R50-OS16: official arithmetic vs ours."""
    from qaclims_mm.models.heads.cam_head import CAMHead
    from qaclims_mm.models.utils.cam_ops import (aggregate_multiscale_cams,
                                                 flip_fused_cams)
    torch.manual_seed(0)
    with torch.device(device):
        backbone = resnet50_os16().eval()
        head = CAMHead(in_channels=2048, num_classes=p['classes'],
                       loss_cls=None).eval()
    g = torch.Generator().manual_seed(0)
    batch = []
    for i in range(p['num_images']):
        h, w = p['sizes'][i % len(p['sizes'])]
        img = torch.randn(1, 3, h, w, generator=g)
        scales = [
            F.interpolate(img, scale_factor=s, mode='bilinear',
                          align_corners=False)[0].to(device)
            if s != 1.0 else img[0].to(device) for s in p['scales']
        ]
        keys = torch.randperm(p['classes'], generator=g)[:p['labels']]
        batch.append((scales, (h, w), keys.sort()[0].to(device)))

    def scale_maps(scales):
        return [
            flip_fused_cams(head.predict(
                backbone(torch.stack([x, x.flip(-1)])))) for x in scales
        ]

    @torch.inference_mode()
    def ours():
        return [aggregate_multiscale_cams(scale_maps(s), hw, k)
                for s, hw, k in batch]

    @torch.inference_mode()
    def ref():
        return [_official_make_cam(scale_maps(s), hw, k)
                for s, hw, k in batch]

    r_ref = measure(ref, device, 2, seconds / 2)
    r_ours = measure(ours, device, 2, seconds / 2)
    worst = max(
        max(rel_diff(a[0], b[0]), rel_diff(a[1], b[1]))
        for a, b in zip(r_ours['out'], r_ref['out']))
    n = len(batch)
    ref_row = variant('reference: official make_cam arithmetic, fp32',
                      r_ref['seconds'], r_ref['peak_mb'],
                      images_per_s=n / r_ref['seconds'])
    ours_row = variant('ours: aggregate_multiscale_cams, fp32',
                       r_ours['seconds'], r_ours['peak_mb'], ref_row,
                       images_per_s=n / r_ours['seconds'])
    return dict(equal=worst < 1e-4, reference='official make_cam arithmetic',
                checks=dict(max_rel_diff=worst, tolerance=1e-4),
                shapes=dict(p, images_timed=n), variants=[ref_row, ours_row],
                targets=[])


def bench_deeplab(p: dict, device: torch.device, seconds: float) -> dict:
    """Training iteration (forward, backward, SGD) of the DeepLabV2-MSC
    stand-in; a reference point, no second implementation."""
    torch.manual_seed(0)
    with torch.device(device):
        model = DeepLabV2MSC(num_classes=p['num_classes'], depth=p['depth'])
    model.train()
    params = [q for q in model.parameters() if q.requires_grad]
    optim = torch.optim.SGD(params, lr=2.5e-4, momentum=0.9,
                            weight_decay=5e-4)
    images, labels = random_segmentation_batch(p['batch'], p['size'],
                                               p['num_classes'], device)

    def step():
        optim.zero_grad(set_to_none=True)
        loss = model.loss(images, labels)
        loss.backward()
        optim.step()
        return loss.detach()

    r = measure(step, device, p['repeats'], seconds)
    finite = bool(torch.isfinite(r['out']).item())
    row = variant('DeepLabV2-R101-MSC stand-in (torchvision), fp32',
                  r['seconds'], r['peak_mb'],
                  images_per_s=p['batch'] / r['seconds'])
    return dict(equal=None, reference=None, checks=dict(loss_finite=finite),
                note='reference point: mmseg.models (the real '
                'MSCEncoderDecoder) needs mmcv ops; the stand-in has the '
                'same layers and FLOPs up to the bottleneck stride placement',
                shapes=p, variants=[row], targets=[])


# ---------------------------------------------------------- the suite
def run_suite(args: argparse.Namespace,
              on_result: Optional[Callable[[dict], None]] = None) -> dict:
    """Run the selected benchmarks within the budget; return the results.

    Args:
        args (argparse.Namespace): From :func:`parse_args`.
        on_result (Callable, optional): Called with the results so far after
            every benchmark (e.g. to write them, so that a run killed by a
            time-out keeps what it measured).
    """
    device = torch.device(args.device)
    shapes = SHAPES['smoke' if args.smoke else 'full']
    budget = Budget(args.budget_s)
    peak = args.peak_tflops or bf16_peak_tflops(device)
    jobs = [('ritc_step', 'ritc_step',
             lambda s: bench_ritc(shapes['ritc'], device, s, peak))]
    jobs.append(('qape', 'qape', lambda s: bench_qape(
        shapes['qape'], device, s, args.qape_max_mismatch_rate)))
    walks = shapes['random_walk']
    for h, w in walks:
        jobs.append((f'random_walk_{w}x{h}', 'random_walk',
                     lambda s, hw=(h, w): bench_random_walk(hw, device, s)))
    jobs.append(('cam_inference', 'cam_inference',
                 lambda s: bench_cam_inference(shapes['cam'], device, s)))
    jobs.append(('deeplabv2_msc', 'deeplabv2_msc',
                 lambda s: bench_deeplab(shapes['deeplab'], device, s)))
    selected = set(args.only.split(',')) if args.only else None
    results: Dict[str, dict] = {}
    for name, share_key, fn in jobs:
        if selected and name not in selected and share_key not in selected:
            continue
        left = budget.remaining()
        if left < 5:
            results[name] = dict(status='skipped', reason='time budget '
                                 f'exhausted ({args.budget_s:.0f} s)')
            continue
        start = time.perf_counter()
        print(f'[gpu_suite] {name} ...', flush=True)
        try:
            res = fn(budget.slice(SHARES[share_key]))
            res.setdefault('status', 'ok')
        except Exception as e:  # keep the other benchmarks' results
            res = dict(status='error', equal=False,
                       reason=f'{type(e).__name__}: {e}',
                       traceback=traceback.format_exc()[-3000:])
        res['wall_s'] = time.perf_counter() - start
        results[name] = res
        if device.type == 'cuda':
            torch.cuda.empty_cache()
        if on_result is not None:
            on_result(dict(meta=_meta(args, device, budget, peak),
                           benchmarks=results))
    return dict(meta=_meta(args, device, budget, peak), benchmarks=results)


def _meta(args: argparse.Namespace, device: torch.device, budget: Budget,
          peak: Optional[float]) -> dict:
    """Run information for the report."""
    return dict(
        date=datetime.datetime.now(datetime.timezone.utc).strftime(
            '%Y-%m-%d %H:%M UTC'),
        device=str(device),
        chip=(torch.cuda.get_device_name(device) if device.type == 'cuda'
              else platform.processor() or platform.machine()),
        torch=torch.__version__, cuda=torch.version.cuda,
        python=platform.python_version(), smoke=bool(args.smoke),
        budget_s=args.budget_s, wall_s=budget.elapsed(),
        peak_bf16_tflops=peak,
        memory=PeakMemory(device).kind,
        command=' '.join([osp.relpath(sys.argv[0])] + sys.argv[1:]))


def _fmt(value, spec: str = '.1f', suffix: str = '') -> str:
    if value is None:
        return '–'
    if isinstance(value, bool):
        return 'yes' if value else 'NO'
    return f'{value:{spec}}{suffix}'


def to_markdown(res: dict) -> str:
    """The results as a markdown table plus targets, estimates, profiles."""
    m = res['meta']
    lines = [
        f"Chip: {m['chip']} ({m['device']}), torch {m['torch']}, "
        f"{m['date']}, {m['wall_s']:.0f} s in all"
        + (' (smoke shapes)' if m['smoke'] else '') + '.',
        f"Command: `{m['command']}`. Memory: {m['memory']}.", '',
        '| benchmark | variant | ms / iter | throughput | peak MB | '
        'speed vs ref | memory vs ref | equal |',
        '|---|---|---|---|---|---|---|---|'
    ]
    notes: List[str] = []
    for name, b in res['benchmarks'].items():
        if b['status'] in ('skipped', 'error'):
            lines.append(f"| {name} | {b['status']}: {b['reason']} "
                         f'| | | | | | |')
            continue
        for v in b['variants']:
            thr = ''
            for key, unit in (('pairs_per_s', 'pairs/s'),
                              ('images_per_s', 'img/s'),
                              ('tflops', 'TFLOP/s')):
                if v.get(key) is not None:
                    thr = _fmt(v[key], '.2f', ' ' + unit)
            lines.append(
                f"| {name} | {v['name']} | {_fmt(v['ms'])} | {thr} | "
                f"{_fmt(v['peak_mb'], '.0f')} | "
                f"{_fmt(v['speedup'], '.2f', '×')} | "
                f"{_fmt(v['mem_ratio'], '.2f', '×')} | "
                f"{_fmt(b.get('equal'))} |")
        for t in b.get('targets', []):
            verdict = {True: 'met', False: 'MISSED'}.get(t['met'], 'n/a')
            if m['smoke']:  # the targets are for the real shapes
                verdict = 'not assessed (smoke shapes)'
            notes.append(f"- {name}: {t['name']} = {_fmt(t['value'], '.2f')}"
                         f" (target {t['op']} {t['goal']}): {verdict}")
        if b.get('reason'):
            notes.append(f"- {name}: {b['reason']}")
        if 'voc_estimate' in b:
            e = b['voc_estimate']
            notes.append(
                f"- {name}: whole VOC ({e['pairs']:,} pairs × 16 questions) "
                f"≈ {e['ours_s'] / 3600:.2f} h batched vs "
                f"{e['reference_s'] / 3600:.2f} h with the official loop")
        if 'flops_per_iter' in b:
            notes.append(f"- {name}: {b['flops_per_iter'] / 1e12:.3f} TFLOP "
                         f'counted per iteration; bf16 peak '
                         f"{_fmt(b['peak_bf16_tflops'])} TFLOP/s")
    lines += [''] + notes
    for name, b in res['benchmarks'].items():
        if b.get('profile_bf16'):
            lines += ['', f'Top ops of one bf16 step ({name}):', '```',
                      b['profile_bf16'].rstrip(), '```']
    return '\n'.join(lines) + '\n'


def finite_or_none(obj):
    """``obj`` with every NaN / infinity replaced by None (strict JSON)."""
    if isinstance(obj, dict):
        return {k: finite_or_none(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite_or_none(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def write_atomic(path: str, text: str) -> None:
    tmp = path + '.tmp'
    with open(tmp, 'w', encoding='utf-8') as f:
        f.write(text)
    os.replace(tmp, path)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--out', default='work_dirs/gpu_suite',
                        help='folder for results.json and results.md')
    parser.add_argument('--smoke', action='store_true',
                        help='tiny shapes (CPU, seconds)')
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available()
                        else 'cpu')
    parser.add_argument('--budget-s', type=float, default=None,
                        help='overall time budget (default 420, smoke 120)')
    parser.add_argument('--only', default=None,
                        help='comma-separated benchmarks to run')
    parser.add_argument('--peak-tflops', type=float, default=None,
                        help='dense bf16 peak of the chip (default: looked '
                        'up from the device name)')
    parser.add_argument('--qape-max-mismatch-rate', type=float, default=None,
                        help='tolerated share of differing answers (default '
                        '0 on CPU; 0.02 on GPU, where fp16 kernels picked '
                        'for other batch shapes may flip a near-tied beam)')
    args = parser.parse_args(argv)
    if args.budget_s is None:
        args.budget_s = 120. if args.smoke else 420.
    if args.qape_max_mismatch_rate is None:
        args.qape_max_mismatch_rate = (0.02 if args.device.startswith('cuda')
                                       else 0.0)
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.smoke:
        torch.set_num_threads(1)  # tiny shapes: threads only contend
    os.makedirs(args.out, exist_ok=True)

    def write(res: dict) -> str:
        res = finite_or_none(res)
        write_atomic(osp.join(args.out, 'results.json'),
                     json.dumps(res, indent=2, allow_nan=False))
        table = to_markdown(res)
        write_atomic(osp.join(args.out, 'results.md'), table)
        return table

    res = run_suite(args, on_result=write)
    print(write(res))
    failed = [n for n, b in res['benchmarks'].items()
              if b['status'] == 'error' or b.get('equal') is False]
    if failed:
        print(f'[gpu_suite] FAILED: {failed}', file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
