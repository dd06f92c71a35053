# Segmentation stage on MS COCO 2014 (80 classes + background): train on
# train2014 with PSEUDO MASKS (images without any object label skipped, as in
# CAM training), validate on val2014 with the semantic GT written by
# tools/dataset_converters/coco14_wsss.py. Same pipelines as VOC
# (voc12_pseudo_seg.py). There is no official DeepLab recipe for COCO in
# CLIMS / QA-CLIMS (spec §7).
_base_ = ['./voc12_pseudo_seg.py']
dataset_type = 'COCO14WSSSDataset'
data_root = 'data/coco2014'
pseudo_mask_dir = 'pseudo_labels/sem_seg'
train_dataloader = dict(
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='wsss/train.txt',
        labels_file='wsss/cls_labels_train.json',
        data_prefix=dict(img_path='train2014', seg_map_path=pseudo_mask_dir),
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
