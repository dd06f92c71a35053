# IRNet on VOC 2012 train_aug (spec §6.4; IRN step/train_irn.py, identical in
# CLIMS and QA-CLIMS): a frozen ImageNet ResNet-50 at output stride 16 (stem +
# 4 stages), an edge branch and a displacement branch trained from the IR
# labels (tools/make_ir_labels.py) with pixel-pair affinities of radius 10 on
# the stride-4 grid. Batch 32, 3 epochs, SGD lr 0.1 (edge) / 1.0
# (displacement), weight decay 1e-4, poly 0.9.
# Then: tools/make_sem_seg_labels.py (edges + random walk -> pseudo masks).
_base_ = [
    '../_base_/models/cam_r50-os16.py', '../_base_/datasets/voc12_wsss.py',
    '../_base_/schedules/schedule_irn_3e.py', '../_base_/default_runtime.py'
]

# the IR labels (spec §6.3), relative to data_root
ir_label_dir = 'ir_label'
num_classes = 21  # background + 20; IR label 255 (and anything >= 21) ignored

model = dict(
    _delete_=True,  # an IRNet, not a CAM classifier: only parts are reused
    type='IRNet',
    data_preprocessor=_base_.model.data_preprocessor,
    # IRN's resnet50(strides=[2, 2, 2, 1]): conv1 stride 2, layer2/3 stride 2,
    # layer4 stride 1 -> mmseg strides (1, 2, 2, 1), OS16: the CAM backbone
    # with every stage out and entirely frozen (frozen_stages=4 + norm_eval;
    # IRNet also detaches the features).
    backbone=dict(
        _base_.model.backbone,
        out_indices=(0, 1, 2, 3),
        frozen_stages=4,
        norm_cfg=dict(type='BN', requires_grad=False)),
    edge_head=dict(
        type='IRNEdgeHead', in_channels=(64, 256, 512, 1024, 2048)),
    displacement_head=dict(
        type='IRNDisplacementHead', in_channels=(64, 256, 512, 1024, 2048)),
    train_cfg=dict(radius=10),
    # edge inference without padding, as QA-CLIMS / CLIMS EdgeDisplacement
    # (F.pad commented out); pad_size=512 gives the original IRN padding
    test_cfg=dict(flip=True, stride=4, pad_size=None))

# IRN VOC12AffinityDataset: rescale U(0.5, 1.5) (bicubic / nearest), flip,
# random 512 crop (label pad 255; the image is normalised and padded with 0 by
# the data preprocessor), labels downsampled x0.25 (nearest) -> pair labels of
# radius 10.
train_pipeline = [
    dict(type='LoadImageFromFile', color_type='color_ignore_orientation'),
    dict(type='LoadAnnotations'),
    dict(type='RandomRescale', scale_range=(0.5, 1.5)),
    dict(type='RandomFlip', prob=0.5),
    dict(
        type='RandomCropWithPad', crop_size=_base_.crop_size,
        seg_pad_val=255),
    dict(type='AffinityLabels', radius=10, downsample=4,
         num_classes=num_classes),
    dict(type='PackWSSSInputs', extra_fields=('aff_labels', )),
]
train_dataloader = dict(
    batch_size=32,
    dataset=dict(
        with_seg_map=True,
        data_prefix=dict(img_path='JPEGImages', seg_map_path=ir_label_dir),
        pipeline=train_pipeline))
# no CAM testing for IRNet (the random walk uses test_pipeline below)
test_dataloader = None
test_evaluator = None

# Edge inference for the random walk (RandomWalkRefiner,
# tools/make_sem_seg_labels.py; also what mmseg.apis.inference_model reads):
# the full image at scale 1.0, the model adds the flip (IRN EdgeDisplacement).
# The walk's settings (spec §6.5: radius 5, beta 10, 2**8 steps, background
# 0.20; IRN: 0.25) are RandomWalkRefiner's arguments.
test_pipeline = [
    dict(type='LoadImageFromFile', color_type='color_ignore_orientation'),
    dict(type='PackWSSSInputs'),
]

default_hooks = dict(
    visualization=dict(draw=False))
