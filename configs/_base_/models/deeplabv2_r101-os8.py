# DeepLab v2 (spec §6.7): caffe-layout ResNet-101 at output stride 8 + the
# v2 ASPP (sum of four dilated 3x3 classifiers), multi-scale inputs 1.0 /
# 0.75 / 0.5 with max fusion (MSCEncoderDecoder).
#
# Backbone = deeplab-pytorch's libs/models/resnet.py: MSRA/caffe bottlenecks
# (stride on the first 1x1 conv: style='caffe'), strides (1, 2, 1, 1),
# dilations (1, 1, 2, 4) on every block of a stage (contract_dilation=False),
# BatchNorm frozen (statistics: norm_eval=True; affine: requires_grad=False;
# CLIMS optimises only conv weights, `get_params`). The stem conv is trained
# (frozen_stages=-1): CLIMS's 1x group holds every conv under "layer*",
# including deeplab-pytorch's stem `layer1.conv1`.
# deeplab-pytorch's stem max-pool uses ceil_mode=True, mmseg's ResNet does
# not: stem_pool_ceil_mode=True restores it (it changes the output sizes,
# e.g. 31 vs 30 for the 0.75 branch of a 321 crop).
#
# Inputs: caffe BGR, minus the mean (104.008, 116.669, 122.675), no std;
# padding after normalisation with 0 (= the mean) and 255 in the labels.
norm_cfg = dict(type='BN', requires_grad=False)
data_preprocessor = dict(
    type='SegDataPreProcessor',
    mean=[104.008, 116.669, 122.675],
    std=[1., 1., 1.],
    bgr_to_rgb=False,
    pad_val=0,
    seg_pad_val=255,
    size=(321, 321))  # the training crop
model = dict(
    type='MSCEncoderDecoder',
    stem_pool_ceil_mode=True,
    scales=(0.5, 0.75),
    data_preprocessor=data_preprocessor,
    backbone=dict(
        type='ResNet',
        depth=101,
        num_stages=4,
        out_indices=(3, ),
        strides=(1, 2, 1, 1),
        dilations=(1, 1, 2, 4),
        style='caffe',
        deep_stem=False,
        avg_down=False,
        contract_dilation=False,
        frozen_stages=-1,
        norm_cfg=norm_cfg,
        norm_eval=True,
        # no zero-initialised last BN per block (the caffe model has none;
        # with frozen BN it would switch the residual branches off for good)
        zero_init_residual=False,
        # deeplabv1_resnet101-imagenet.pth converted by
        # tools/model_converters/deeplabv1_resnet101_to_mmseg.py (no download
        # at run time: see the converter's docstring)
        init_cfg=dict(
            type='Pretrained',
            checkpoint=(
                'data/pretrained/deeplabv1_resnet101-imagenet_mmseg.pth'),
            prefix='backbone.')),
    decode_head=dict(
        type='ASPPV2Head',
        in_channels=2048,
        num_classes=21,
        dilations=(6, 12, 18, 24),
        align_corners=False,
        loss_decode=dict(
            # mean over non-ignored pixels, as torch's CrossEntropyLoss
            # (ignore_index=255) in deeplab-pytorch / CLIMS main.py
            type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0,
            avg_non_ignore=True)),
    train_cfg=dict(),
    # dCRF (10 iterations; pos_w 3, pos_xy 1, bi_w 4, bi_xy 67, bi_rgb 3):
    # switch on with --cfg-options model.test_cfg.crf=True
    test_cfg=dict(
        mode='whole',
        crf=False,
        crf_cfg=dict(n_iters=10, pos_xy_std=1, pos_w=3, bi_xy_std=67,
                     bi_rgb_std=3, bi_w=4)))
