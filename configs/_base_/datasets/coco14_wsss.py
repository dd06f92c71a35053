# MS COCO 2014 for WSSS (prepare with tools/dataset_converters/coco14_wsss.py).
# Training on train2014 with image-level labels (unlabelled images skipped
# here; the QA-CLIMS COCO config keeps them, as the official run);
# CAM evaluation on val2014 semantic masks by default.
_base_ = ['./voc12_wsss.py']
dataset_type = 'COCO14WSSSDataset'
data_root = 'data/coco2014'
train_dataloader = dict(
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='wsss/train.txt',
        labels_file='wsss/cls_labels_train.json',
        data_prefix=dict(img_path='train2014'),
        skip_unlabeled=True))
test_dataloader = dict(
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='wsss/val.txt',
        labels_file='wsss/cls_labels_val.json',
        data_prefix=dict(
            img_path='val2014', seg_map_path='wsss/mask/val2014'),
        skip_unlabeled=False))
test_evaluator = dict(split='val2014')
