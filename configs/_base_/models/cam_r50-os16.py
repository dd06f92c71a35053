# ResNet-50 at output stride 16 (strides 1/2/2/1 after the stride-4 stem, no
# dilation), pytorch-style bottlenecks, torchvision weight names; stem
# conv1/bn1 frozen (frozen_stages=0); BatchNorm statistics frozen
# (norm_eval=True) for the baseline, affine parameters trained (spec §3.4).
# Inputs: RGB, ImageNet mean/std (qaclims_mm.structures.normalization),
# normalised by the model; 0 (the mean colour) outside the training crop.
model = dict(
    type='CAMClassifier',
    data_preprocessor=dict(
        type='WSSSDataPreProcessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True,
        pad_val=0),
    backbone=dict(
        type='ResNet',
        depth=50,
        num_stages=4,
        strides=(1, 2, 2, 1),
        dilations=(1, 1, 1, 1),
        out_indices=(3, ),
        style='pytorch',
        frozen_stages=0,
        norm_cfg=dict(type='BN', requires_grad=True),
        norm_eval=True,
        contract_dilation=False,
        # torchvision's resnet50-19c8e357.pth, downloaded by you (no hub
        # access at run time): see README "Weights".
        init_cfg=dict(
            type='Pretrained',
            checkpoint='data/pretrained/resnet50-19c8e357.pth')),
    cam_head=dict(
        type='CAMHead',
        in_channels=2048,
        num_classes=20,
        loss_cls=dict(type='MultiLabelSoftMarginLoss')),
    # unlabelled_keys: an image without labels (mmseg.apis.inference_model)
    # gets the CAMs of the classes the network predicts
    test_cfg=dict(flip=True, threshold=0.15, unlabelled_keys='predicted'))
