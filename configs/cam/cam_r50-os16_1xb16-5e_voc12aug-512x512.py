# Baseline CAM network on VOC 2012 train_aug (spec §3.4): ResNet-50 OS16,
# GAP + 1x1 classifier, multilabel soft-margin loss, frozen BN statistics,
# SGD 0.1 / 1.0, batch 16, 5 epochs. Testing writes multi-scale + flip CAMs of
# VOC train to <work_dir>/cams/train and scores them (CAM mIoU, threshold 0.15
# and the best of the 0.05-0.59 sweep).
_base_ = [
    '../_base_/models/cam_r50-os16.py', '../_base_/datasets/voc12_wsss.py',
    '../_base_/schedules/schedule_cam_5e.py', '../_base_/default_runtime.py'
]
custom_hooks = [
    dict(type='SaveCAMHook', out_dir='cams/train', vis_dir='cam_vis',
         num_vis=20)
]
