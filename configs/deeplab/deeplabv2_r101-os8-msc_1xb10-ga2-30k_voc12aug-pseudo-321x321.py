# DeepLab v2 (ResNet-101, MSC) on VOC 2012 train_aug pseudo masks, the
# ImageNet-pretrained setting of CLIMS / QA-CLIMS (spec §6.7;
# CL:segmentation/deeplabv2/configs/voc12_imagenet_pretrained.yaml + main_v2.py):
# crop 321, scales 0.5-2.0, flip, caffe BGR mean; balanced CE on every MSC
# output; batch 10 x gradient accumulation 2; 30k optimiser steps of SGD
# (momentum 0.9, wd 5e-4) with poly 0.9; test on VOC val at full resolution
# with max fusion (+ dCRF with --cfg-options model.test_cfg.crf=True).
#
# Init: deeplabv1_resnet101-imagenet.pth from the CLIMS README, converted with
#   python tools/model_converters/deeplabv1_resnet101_to_mmseg.py \
#     deeplabv1_resnet101-imagenet.pth \
#     data/pretrained/deeplabv1_resnet101-imagenet_mmseg.pth
_base_ = [
    '../_base_/models/deeplabv2_r101-os8.py',
    '../_base_/datasets/voc12_pseudo_seg.py',
    '../_base_/schedules/schedule_deeplabv2_30k.py',
    '../_base_/default_runtime.py'
]
model = dict(
    decode_head=dict(
        num_classes=21,
        loss_decode=dict(
            _delete_=True, type='BalancedCrossEntropyLoss', loss_weight=1.0)))
# --tta: softmax mean over scales x flips, then the dCRF once if enabled
tta_model = dict(type='DenseCRFSegTTAModel')
