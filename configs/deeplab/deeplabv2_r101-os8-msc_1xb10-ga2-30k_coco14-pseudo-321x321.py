# DeepLab v2 (ResNet-101, MSC, ImageNet init, balanced CE) on MS COCO 2014
# pseudo masks (81 classes), validated on val2014. CLIMS / QA-CLIMS ship no
# COCO DeepLab recipe (spec §7): this is the VOC ImageNet-pretrained recipe
# unchanged apart from the data and the class count. (There is deliberately no
# COCO-init variant for COCO: that init was trained on COCO masks.)
_base_ = ['./deeplabv2_r101-os8-msc_1xb10-ga2-30k_voc12aug-pseudo-321x321.py']
model = dict(decode_head=dict(num_classes=81))
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
