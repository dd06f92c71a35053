# The paper's COCO 2014 pipeline (spec §7): the VOC pipeline's stages with the
# COCO configs. CAMs are scored on val2014 (wsss/mask/val2014, as the COCO CAM
# config does); the CAMs of train2014 feed the IR labels, IRNet and the random
# walk; DeepLab trains on the train2014 pseudo masks and is tested on val2014.
#   bash tools/dist_train.sh configs/pipelines/qaclims_r50_coco14.py 8
_base_ = ['./qaclims_r50_voc12aug.py']
# the VOC pipeline's files, with COCO in place of VOC
files = dict(
    {k: v for k, v in _base_.files.items() if k != 'voc'},
    _delete_=True,
    coco=dict(path='data/coco2014',
              help='docs/data.md#ms-coco-2014 (converted with '
              'tools/dataset_converters/coco14_wsss.py)'))
coco = '{coco}'
data_keys = {
    'train_dataloader.dataset.data_root': coco,
    'test_dataloader.dataset.data_root': coco,
}
# the test loop of a CAM config switched to train2014 (CAMs for refinement)
train_cams = {
    'test_dataloader.dataset.ann_file': 'wsss/train.txt',
    'test_dataloader.dataset.labels_file': 'wsss/cls_labels_train.json',
    'test_dataloader.dataset.data_prefix': dict(img_path='train2014'),
    'test_dataloader.dataset.with_seg_map': False,
}
cam_config = '../cam/cam_r50-os16_1xb16-5e_coco14-512x512.py'
qaclims_config = '../qaclims/qaclims_r50-os16_2xb4-155205it_coco14-512x512.py'
irn_config = '../irn/irn_r50_1xb32-3e_coco14-512x512.py'
deeplab_config = ('../deeplab/deeplabv2_r101-os8-msc_1xb10-ga2-30k_'
                  'coco14-pseudo-321x321.py')
stages = [
    dict(name='qape', type='QAPEStage', engine='blip', image_size=480,
         classes='coco',
         inputs=dict(images=coco + '/train2014',
                     labels=coco + '/wsss/cls_labels_train.json',
                     model='{blip}'),
         outputs=dict(corpus='qape/corpus')),
    dict(name='text_cache', type='TextCacheStage',
         model_name='ViT-L-14-quickgelu', classes='coco',
         inputs=dict(corpus='qape/corpus', clip='{clip}'),
         outputs=dict(cache='text_cache/coco_blip_ViT-L-14')),
    dict(name='cam', type='TrainStage', config=cam_config,
         inputs={**data_keys,
                 'model.backbone.init_cfg.checkpoint': '{resnet50}'},
         outputs=dict(checkpoint='cam/final.pth')),
    dict(name='cam_cams', type='InferCAMsStage', config=cam_config,
         inputs=dict(checkpoint='cam/final.pth', **data_keys),
         outputs=dict(cams='cam_cams/cams')),
    dict(name='cam_eval', type='EvalCAMsStage', dataset='coco',
         inputs=dict(cams='cam_cams/cams', gt=coco + '/wsss/mask/val2014',
                     split=coco + '/wsss/val.txt')),
    dict(name='qaclims', type='TrainStage', config=qaclims_config,
         inputs={
             **data_keys, 'load_from': 'cam/final.pth',
             'model.cam_head.clip.weights': '{clip}',
             'model.cam_head.clip.ovseg_checkpoint': '{ovseg}',
             'train_dataloader.dataset.pipeline.1.cache_prefix':
             'text_cache/coco_blip_ViT-L-14'},
         outputs=dict(checkpoint='qaclims/final.pth')),
    dict(name='qaclims_val_cams', type='InferCAMsStage', config=cam_config,
         inputs=dict(checkpoint='qaclims/final.pth', **data_keys),
         outputs=dict(cams='qaclims_val_cams/cams')),
    dict(name='qaclims_eval', type='EvalCAMsStage', dataset='coco',
         inputs=dict(cams='qaclims_val_cams/cams',
                     gt=coco + '/wsss/mask/val2014',
                     split=coco + '/wsss/val.txt')),
    dict(name='qaclims_cams', type='InferCAMsStage', config=cam_config,
         cfg_options=train_cams,
         inputs=dict(checkpoint='qaclims/final.pth', **data_keys),
         outputs=dict(cams='qaclims_cams/cams')),
    dict(name='ir_labels', type='IRLabelsStage', dataset='coco',
         inputs=dict(cams='qaclims_cams/cams', images=coco + '/train2014',
                     split=coco + '/wsss/train.txt'),
         outputs=dict(labels='ir_labels/labels')),
    dict(name='irn', type='TrainStage', config=irn_config,
         inputs={
             'train_dataloader.dataset.data_root': coco,
             'train_dataloader.dataset.data_prefix.seg_map_path':
             'ir_labels/labels',
             'model.backbone.init_cfg.checkpoint': '{resnet50}'},
         outputs=dict(checkpoint='irn/final.pth')),
    dict(name='random_walk', type='RandomWalkStage', config=irn_config,
         dataset='coco',
         inputs=dict(cams='qaclims_cams/cams', images=coco + '/train2014',
                     split=coco + '/wsss/train.txt',
                     irn_checkpoint='irn/final.pth'),
         outputs=dict(labels='random_walk/labels')),
    dict(name='pseudo_eval', type='EvalPseudoMasksStage', dataset='coco',
         inputs=dict(labels='random_walk/labels',
                     gt=coco + '/wsss/mask/train2014',
                     split=coco + '/wsss/train.txt')),
    dict(name='deeplab', type='TrainStage', config=deeplab_config,
         inputs={
             'train_dataloader.dataset.data_root': coco,
             'train_dataloader.dataset.data_prefix.seg_map_path':
             'random_walk/labels',
             'val_dataloader.dataset.data_root': coco,
             'test_dataloader.dataset.data_root': coco,
             'model.backbone.init_cfg.checkpoint': '{deeplab_init}'},
         outputs=dict(checkpoint='deeplab/final.pth')),
    dict(name='deeplab_test', type='TestStage', config=deeplab_config,
         inputs={'checkpoint': 'deeplab/final.pth',
                 'test_dataloader.dataset.data_root': coco},
         outputs=dict(predictions='deeplab_test/predictions')),
]
report = dict(
    _delete_=True,
    variants=[
        dict(name='baseline CAM', cams='cam_eval'),
        dict(name='QA-CLIMS', cams='qaclims_eval', pseudo='pseudo_eval',
             test='deeplab_test'),
    ],
    classes='coco',
    num_images=6,
    split_file=coco + '/wsss/val.txt',
    columns=dict(
        image=dict(kind='image', path=coco + '/val2014'),
        baseline_CAM=dict(kind='cam', path='cam_cams/cams'),
        QA_CLIMS_CAM=dict(kind='cam', path='qaclims_val_cams/cams'),
        GT=dict(kind='label', path=coco + '/wsss/mask/val2014')))
