# DeepLabV3+ (mmseg's model, ResNet-101-V1c) on MS COCO 2014 pseudo masks
# (81 classes), validated on val2014: the VOC DeepLabV3+ recipe with 80k
# iterations (mmseg's schedule for COCO-sized data).
_base_ = ['./deeplabv3plus_r101-d8_4xb4-40k_voc12aug-pseudo-512x512.py']
model = dict(
    decode_head=dict(num_classes=81), auxiliary_head=dict(num_classes=81))
# COCO 2014 (tools/dataset_converters/coco14_wsss.py): train2014 pseudo masks
# (images without any object label skipped, as in CAM training), val2014
# semantic GT
dataset_type = 'COCO14WSSSDataset'
data_root = 'data/coco2014'
train_dataloader = dict(
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='wsss/train.txt',
        labels_file='wsss/cls_labels_train.json',
        data_prefix=dict(
            img_path='train2014', seg_map_path=_base_.pseudo_mask_dir),
        skip_unlabeled=True))
val_dataloader = dict(
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='wsss/val.txt',
        labels_file='wsss/cls_labels_val.json',
        data_prefix=dict(
            img_path='val2014', seg_map_path='wsss/mask/val2014'),
        skip_unlabeled=False))
test_dataloader = val_dataloader
# 80k iterations, validation and checkpoints every 8k
max_iters = 80000
param_scheduler = [
    dict(type='PolyLR', eta_min=1e-4, power=0.9, begin=0, end=max_iters,
         by_epoch=False)
]
train_cfg = dict(max_iters=max_iters, val_interval=8000)
default_hooks = dict(checkpoint=dict(interval=8000))
