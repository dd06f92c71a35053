# QA-CLIMS on COCO 2014 (spec §7): lr 1e-5 (classifier 1e-4), loss weights
# 30 / 24 / 0.2, 15 epochs = floor(floor(82783 / 4) / 2) x 15 = 155,205
# iterations per GPU at 2 GPUs x batch 4.
# Images without labels are kept, as the official run (all 82,783 train2014
# images): a batch whose images all lack labels gets zero losses (L_REG
# included), and in a mixed batch they still count in L_REG. To skip them
# instead, set train_dataloader.dataset.skip_unlabeled=True AND size the
# schedule from the labelled images: N = the length of the dataset (logged at
# start-up), max_iters = floor(floor(N / 4) / 2) x 15 for 2 GPUs x batch 4.
_base_ = ['./qaclims_r50-os16_2xb4-19830it_voc12aug-512x512.py']
data_root = 'data/coco2014'
baseline_cam = 'data/pretrained/res50_cam_coco_mmseg.pth'
qa_cache = 'data/coco2014/qape/coco_blip_ViT-L-14'
load_from = baseline_cam
max_iters = 155205
model = dict(
    cam_head=dict(
        num_classes=80,
        losses=dict(
            loss_frc=dict(loss_weight=30.), loss_brc=dict(loss_weight=24.))))
optim_wrapper = dict(optimizer=dict(lr=1e-5))
param_scheduler = [
    dict(type='PolyLR', power=0.9, eta_min=0., begin=0, end=max_iters,
         by_epoch=False)
]
train_cfg = dict(max_iters=max_iters, val_interval=max_iters + 1)
# the VOC pipeline with the COCO corpus
train_pipeline = [
    dict(t, cache_prefix=qa_cache, classes='coco')
    if t['type'] == 'LoadQACorpus' else t for t in _base_.train_pipeline
]
train_dataloader = dict(
    batch_size=4,
    dataset=dict(
        type='COCO14WSSSDataset',
        data_root=data_root,
        ann_file='wsss/train.txt',
        labels_file='wsss/cls_labels_train.json',
        data_prefix=dict(img_path='train2014'),
        # official: keep label-less images (see the top of this file)
        skip_unlabeled=False,
        pipeline=train_pipeline))
test_dataloader = dict(
    dataset=dict(
        type='COCO14WSSSDataset',
        data_root=data_root,
        ann_file='wsss/val.txt',
        labels_file='wsss/cls_labels_val.json',
        data_prefix=dict(
            img_path='val2014', seg_map_path='wsss/mask/val2014'),
        skip_unlabeled=False))
test_evaluator = dict(split='val2014')
custom_hooks = [
    dict(type='SaveCAMHook', out_dir='cams/val2014', vis_dir='cam_vis',
         num_vis=20)
]
