"""Image normalisation constants, in one place.

Every reader takes its numbers from here: the data pre-processor configs
(``WSSSDataPreProcessor``, checked by ``tests/test_configs``), the legacy
:class:`~qaclims_mm.datasets.transforms.NormalizeImage`, the CLIP
re-normalisation of the RITC path (``imagenet_to_clip``) and the BLIP VQA
engine.

The 0-1 forms are written out, not derived from the 0-255 ones: the official
code uses the literals ``(0.485, 0.456, 0.406)`` / ``(0.229, 0.224, 0.225)``,
and ``123.675 / 255`` need not round to the same float32 as ``0.485``.
"""

#: ImageNet mean / std on the 0-255 scale, RGB order (the WSSS input).
IMAGENET_MEAN = (123.675, 116.28, 103.53)
IMAGENET_STD = (58.395, 57.12, 57.375)

#: The same statistics on the 0-1 scale (official literals).
IMAGENET_MEAN_01 = (0.485, 0.456, 0.406)
IMAGENET_STD_01 = (0.229, 0.224, 0.225)

#: OpenAI CLIP's mean / std on the 0-1 scale, RGB order (CLIP and BLIP).
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)

__all__ = [
    'IMAGENET_MEAN', 'IMAGENET_STD', 'IMAGENET_MEAN_01', 'IMAGENET_STD_01',
    'CLIP_MEAN', 'CLIP_STD'
]
