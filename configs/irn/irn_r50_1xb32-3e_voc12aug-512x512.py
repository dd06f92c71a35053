# IRNet on VOC 2012 train_aug (spec §6.4; IRN step/train_irn.py, identical in
# CLIMS and QA-CLIMS): a frozen ImageNet ResNet-50 at output stride 16 (stem +
# 4 stages), an edge branch and a displacement branch trained from the IR
# labels (tools/make_ir_labels.py) with pixel-pair affinities of radius 10 on
# the stride-4 grid. Batch 32, 3 epochs, SGD lr 0.1 (edge) / 1.0
# (displacement), weight decay 1e-4, poly 0.9.
# Then: tools/make_sem_seg_labels.py (edges + random walk -> pseudo masks).
custom_imports = dict(imports=['qaclims_mm'], allow_failed_imports=False)
_base_ = ['../_base_/default_runtime.py']

dataset_type = 'VOC12WSSSDataset'
data_root = 'data/VOCdevkit/VOC2012'
# the IR labels (spec §6.3), relative to data_root
ir_label_dir = 'ir_label'
crop_size = 512
num_classes = 21  # background + 20; IR label 255 (and anything >= 21) ignored

model = dict(
    type='IRNet',
    data_preprocessor=dict(type='WSSSDataPreProcessor'),
    # IRN's resnet50(strides=[2, 2, 2, 1]): conv1 stride 2, layer2/3 stride 2,
    # layer4 stride 1 -> mmseg strides (1, 2, 2, 1), OS16. Entirely frozen
    # (frozen_stages=4 + norm_eval; IRNet also detaches the features).
    backbone=dict(
        type='ResNet',
        depth=50,
        num_stages=4,
        strides=(1, 2, 2, 1),
        dilations=(1, 1, 1, 1),
        out_indices=(0, 1, 2, 3),
        style='pytorch',
        frozen_stages=4,
        norm_cfg=dict(type='BN', requires_grad=False),
        norm_eval=True,
        contract_dilation=False,
        # torchvision's resnet50-19c8e357.pth, downloaded by you (no hub
        # access at run time): see README "Weights".
        init_cfg=dict(
            type='Pretrained',
            checkpoint='data/pretrained/resnet50-19c8e357.pth')),
    edge_head=dict(
        type='IRNEdgeHead', in_channels=(64, 256, 512, 1024, 2048)),
    displacement_head=dict(
        type='IRNDisplacementHead', in_channels=(64, 256, 512, 1024, 2048)),
    train_cfg=dict(radius=10),
    # edge inference without padding, as QA-CLIMS / CLIMS EdgeDisplacement
    # (F.pad commented out); pad_size=512 gives the original IRN padding
    test_cfg=dict(flip=True, stride=4, pad_size=None))

# IRN VOC12AffinityDataset: rescale U(0.5, 1.5) (bicubic / nearest),
# normalise, flip, random 512 crop (image pad 0 after normalisation, label pad
# 255), labels downsampled x0.25 (nearest) -> pair labels of radius 10.
train_pipeline = [
    dict(type='LoadImageFromFile', color_type='color_ignore_orientation'),
    dict(type='LoadAnnotations'),
    dict(type='RandomRescale', scale_range=(0.5, 1.5)),
    dict(type='NormalizeImage'),
    dict(type='RandomFlip', prob=0.5),
    dict(type='RandomCropWithPad', crop_size=crop_size, seg_pad_val=255),
    dict(type='AffinityLabels', radius=10, downsample=4,
         num_classes=num_classes),
    dict(type='PackWSSSInputs', extra_fields=('aff_labels', )),
]
train_dataloader = dict(
    batch_size=32,
    num_workers=8,
    persistent_workers=True,
    drop_last=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='ImageSets/Segmentation/train_aug.txt',
        labels_file='cls_labels.json',
        with_seg_map=True,
        data_prefix=dict(img_path='JPEGImages', seg_map_path=ir_label_dir),
        pipeline=train_pipeline))

# Edge inference for the random walk (RandomWalkRefiner,
# tools/make_sem_seg_labels.py; also what mmseg.apis.inference_model reads):
# the full image at scale 1.0, the model adds the flip (IRN EdgeDisplacement).
# The walk's settings (spec §6.5: radius 5, beta 10, 2**8 steps, background
# 0.20; IRN: 0.25) are RandomWalkRefiner's arguments.
test_pipeline = [
    dict(type='LoadImageFromFile', color_type='color_ignore_orientation'),
    dict(type='NormalizeImage'),
    dict(type='PackWSSSInputs'),
]

# IRN's PolyOptimizer passes the weight decay as SGD's positional `momentum`
# (momentum=1e-4), with weight_decay=1e-4 set per group; lr 0.1 for the edge
# branch, 10x for the displacement branch; poly decay per iteration.
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.1, momentum=1e-4, weight_decay=1e-4),
    paramwise_cfg=dict(
        custom_keys={'displacement_head': dict(lr_mult=10.)}))
param_scheduler = [
    dict(type='PolyLR', power=0.9, eta_min=0., begin=0, end=3, by_epoch=True,
         convert_to_iter_based=True)
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=3)
default_hooks = dict(
    checkpoint=dict(type='CheckpointHook', by_epoch=True, interval=3,
                    max_keep_ckpts=1),
    visualization=dict(type='SegVisualizationHook', draw=False))
