# The baseline WSSS pipeline on the synthetic VOC-format world, without any
# vision-language model: synthetic data -> baseline CAM (ResNet-18) -> CAMs ->
# IR labels -> IRNet -> random-walk pseudo masks -> DeepLab v2 (ResNet-18) ->
# val mIoU with / without CRF. Every stage is one of our configs or stage
# APIs; the QA-CLIMS pipeline (qaclims_synthetic-voc.py) adds QAPE, the text
# caches and RITC on top of it.
#   python tools/train.py configs/pipelines/wsss_baseline_synthetic-voc.py
_base_ = ['../_base_/default_runtime.py']
runner_type = 'WSSSPipelineRunner'
# read only for --amp (stock tools/train.py flips it to AmpOptimWrapper; the
# training stages then use AMP)
optim_wrapper = dict(type='OptimWrapper')
preset = 'demo'  # the synthetic world's size ('test': the tests' tiny one)
files = dict()  # nothing to provide: the data is generated
voc = 'data/VOC2012'
deeplab_config = ('../deeplab/deeplabv2_r18-os8-msc_1xb8-ga2-600it_'
                  'synthetic-voc-pseudo-128x128.py')
splits = voc + '/ImageSets/Segmentation'
data_keys = {
    'train_dataloader.dataset.data_root': voc,
    'test_dataloader.dataset.data_root': voc,
}
stages = [
    dict(name='data', type='SyntheticDataStage', preset=preset, seed=0,
         outputs=dict(data_root=voc)),
    # baseline CAM: the synthetic demo config (random-init ResNet-18)
    # (a checkpoint every 2 epochs, so that a killed run loses little)
    dict(name='cam', type='TrainStage',
         config='../cam/cam_r18-os16_1xb16-12e_synthetic-voc-160x160.py',
         cfg_options={'custom_hooks': [],
                      'default_hooks.checkpoint.interval': 2,
                      'default_hooks.checkpoint.max_keep_ckpts': 2},
         inputs=data_keys, outputs=dict(checkpoint='cam/final.pth')),
    dict(name='cam_cams', type='InferCAMsStage',
         config='../cam/cam_r18-os16_1xb16-12e_synthetic-voc-160x160.py',
         cfg_options={'custom_hooks': []}, split='train_aug',
         inputs=dict(checkpoint='cam/final.pth', **data_keys),
         outputs=dict(cams='cam_cams/cams')),
    dict(name='cam_eval', type='EvalCAMsStage',
         inputs=dict(cams='cam_cams/cams', gt=voc + '/SegmentationClass',
                     split=splits + '/train.txt')),
    # refinement (spec §6.3-§6.5)
    dict(name='ir_labels', type='IRLabelsStage',
         inputs=dict(cams='cam_cams/cams', images=voc + '/JPEGImages',
                     split=splits + '/train_aug.txt'),
         outputs=dict(labels='ir_labels/labels')),
    dict(name='irn', type='TrainStage',
         config='../irn/irn_r18_1xb8-3e_synthetic-voc-128x128.py',
         inputs={
             'train_dataloader.dataset.data_root': voc,
             'train_dataloader.dataset.data_prefix.seg_map_path':
             'ir_labels/labels',
             'load_from': 'cam/final.pth'},
         outputs=dict(checkpoint='irn/final.pth')),
    dict(name='random_walk', type='RandomWalkStage',
         inputs=dict(cams='cam_cams/cams', images=voc + '/JPEGImages',
                     split=splits + '/train_aug.txt',
                     irn_checkpoint='irn/final.pth'),
         config='../irn/irn_r18_1xb8-3e_synthetic-voc-128x128.py',
         outputs=dict(labels='random_walk/labels')),
    dict(name='pseudo_eval', type='EvalPseudoMasksStage',
         inputs=dict(labels='random_walk/labels',
                     gt=voc + '/SegmentationClass',
                     split=splits + '/train.txt')),
    # segmentation on the pseudo masks (spec §6.7)
    # No ImageNet weights here: as for IRN, the baseline CAM network's
    # backbone stands in for the pre-trained one (load_from; the ASPP head
    # starts from its init), which lets 300 iterations learn (from random
    # init, 600 did not get past predicting background: val mIoU 4.2).
    dict(name='deeplab', type='TrainStage',
         config=deeplab_config,
         cfg_options={'model.allow_missing_keys': ['decode_head.*'],
                      'train_cfg.max_iters': 300,
                      'train_cfg.val_interval': 300,
                      'param_scheduler.0.end': 300,
                      'default_hooks.checkpoint.interval': 100},
         inputs={
             'load_from': 'cam/final.pth',
             'train_dataloader.dataset.data_root': voc,
             'train_dataloader.dataset.data_prefix.seg_map_path':
             'random_walk/labels',
             'val_dataloader.dataset.data_root': voc,
             'test_dataloader.dataset.data_root': voc},
         outputs=dict(checkpoint='deeplab/final.pth')),
    dict(name='deeplab_test', type='TestStage',
         config=deeplab_config, num_vis=6,  # the report's image rows
         inputs={
             'checkpoint': 'deeplab/final.pth',
             'vis_split': splits + '/train.txt',
             'test_dataloader.dataset.data_root': voc},
         outputs=dict(predictions='deeplab_test/predictions',
                      vis_predictions='deeplab_test/vis_predictions')),
]
report = dict(
    num_images=6,
    split_file=splits + '/train.txt',
    columns=dict(
        image=dict(kind='image', path=voc + '/JPEGImages'),
        CAM=dict(kind='cam', path='cam_cams/cams'),
        IR_labels=dict(kind='label', path='ir_labels/labels'),
        pseudo_mask=dict(kind='label', path='random_walk/labels'),
        DeepLab=dict(kind='label', path='deeplab_test/vis_predictions'),
        GT=dict(kind='label', path=voc + '/SegmentationClass')))
