# The paper's VOC 2012 pipeline (spec §2-§6, ImageNet-initialised recipe):
# QAPE (BLIP VQA) -> text cache (CLIP ViT-L/14 text tower) -> baseline CAM
# ResNet-50 -> QA-CLIMS RITC (OV-Seg mask-prompted CLIP ViT-L/14) -> CAMs of
# train_aug -> IR labels -> IRNet -> random-walk pseudo masks -> DeepLab v2
# (ResNet-101, MSC) -> val mIoU with and without the dense CRF.
#   python <mmseg>/.mim/tools/train.py configs/pipelines/qaclims_r50_voc12aug.py
#   bash tools/dist_train.sh configs/pipelines/qaclims_r50_voc12aug.py 2
# The baseline CAM's numbers are reported next to QA-CLIMS's (cam_eval).
_base_ = ['../_base_/default_runtime.py']
runner_type = 'WSSSPipelineRunner'
optim_wrapper = dict(type='OptimWrapper')  # --amp flips this: AMP training
# The files you provide (nothing is downloaded); a missing one stops the run
# before any stage starts, naming the docs section that says where to get it.
files = dict(
    voc=dict(path='data/VOCdevkit/VOC2012',
             help='docs/data.md#pascal-voc-2012--sbd (converted with '
             'tools/dataset_converters/voc12_wsss.py)'),
    resnet50=dict(path='data/pretrained/resnet50-19c8e357.pth',
                  help='docs/cam.md (torchvision ImageNet ResNet-50)'),
    blip=dict(path='data/pretrained/blip-vqa-capfilt-large',
              help='docs/qape.md (BLIP VQA ViT-B CapFilt-L, HF folder)'),
    clip=dict(path='data/pretrained/ViT-L-14.pt',
              help='docs/ritc.md (OpenAI CLIP ViT-L/14)'),
    ovseg=dict(path='data/pretrained/ovseg_swinbase_vitL14_ft_mpt.pth',
               help='docs/ritc.md (OV-Seg mask-prompt-tuned CLIP)'),
    deeplab_init=dict(
        path='data/pretrained/deeplabv1_resnet101-imagenet_mmseg.pth',
        help='docs/segmentation.md (converted deeplab-pytorch ImageNet '
        'ResNet-101)'),
)
voc = '{voc}'
splits = voc + '/ImageSets/Segmentation'
data_keys = {
    'train_dataloader.dataset.data_root': voc,
    'test_dataloader.dataset.data_root': voc,
}
cam_config = '../cam/cam_r50-os16_1xb16-5e_voc12aug-512x512.py'
qaclims_config = '../qaclims/qaclims_r50-os16_2xb4-19830it_voc12aug-512x512.py'
irn_config = '../irn/irn_r50_1xb32-3e_voc12aug-512x512.py'
deeplab_config = ('../deeplab/deeplabv2_r101-os8-msc_1xb10-ga2-30k_'
                  'voc12aug-pseudo-321x321.py')
stages = [
    # QAPE (spec §2): every labelled image of cls_labels.json, 6 + 10
    # questions per (image, class) pair, then the CLIP text features
    dict(name='qape', type='QAPEStage', engine='blip', image_size=480,
         inputs=dict(images=voc + '/JPEGImages',
                     labels=voc + '/cls_labels.json', model='{blip}'),
         outputs=dict(corpus='qape/corpus')),
    dict(name='text_cache', type='TextCacheStage',
         model_name='ViT-L-14-quickgelu',
         inputs=dict(corpus='qape/corpus', clip='{clip}'),
         outputs=dict(cache='text_cache/voc_blip_ViT-L-14')),
    # stage 1: the baseline CAM network (spec §3.1)
    dict(name='cam', type='TrainStage', config=cam_config,
         inputs={**data_keys,
                 'model.backbone.init_cfg.checkpoint': '{resnet50}'},
         outputs=dict(checkpoint='cam/final.pth')),
    dict(name='cam_cams', type='InferCAMsStage', config=cam_config,
         inputs=dict(checkpoint='cam/final.pth', **data_keys),
         outputs=dict(cams='cam_cams/cams')),
    dict(name='cam_eval', type='EvalCAMsStage',
         inputs=dict(cams='cam_cams/cams', gt=voc + '/SegmentationClass',
                     split=splits + '/train.txt')),
    # stage 2: QA-CLIMS region-text training from the baseline (spec §3-§5)
    dict(name='qaclims', type='TrainStage', config=qaclims_config,
         inputs={
             **data_keys, 'load_from': 'cam/final.pth',
             'model.cam_head.clip.weights': '{clip}',
             'model.cam_head.clip.ovseg_checkpoint': '{ovseg}',
             'train_dataloader.dataset.pipeline.1.cache_prefix':
             'text_cache/voc_blip_ViT-L-14'},
         outputs=dict(checkpoint='qaclims/final.pth')),
    dict(name='qaclims_cams', type='InferCAMsStage', config=cam_config,
         split='train_aug',
         inputs=dict(checkpoint='qaclims/final.pth', **data_keys),
         outputs=dict(cams='qaclims_cams/cams')),
    dict(name='qaclims_eval', type='EvalCAMsStage',
         inputs=dict(cams='qaclims_cams/cams', gt=voc + '/SegmentationClass',
                     split=splits + '/train.txt')),
    # refinement (spec §6.3-§6.5)
    dict(name='ir_labels', type='IRLabelsStage',
         inputs=dict(cams='qaclims_cams/cams', images=voc + '/JPEGImages',
                     split=splits + '/train_aug.txt'),
         outputs=dict(labels='ir_labels/labels')),
    dict(name='irn', type='TrainStage', config=irn_config,
         inputs={
             'train_dataloader.dataset.data_root': voc,
             'train_dataloader.dataset.data_prefix.seg_map_path':
             'ir_labels/labels',
             'model.backbone.init_cfg.checkpoint': '{resnet50}'},
         outputs=dict(checkpoint='irn/final.pth')),
    dict(name='random_walk', type='RandomWalkStage', config=irn_config,
         inputs=dict(cams='qaclims_cams/cams', images=voc + '/JPEGImages',
                     split=splits + '/train_aug.txt',
                     irn_checkpoint='irn/final.pth'),
         outputs=dict(labels='random_walk/labels')),
    dict(name='pseudo_eval', type='EvalPseudoMasksStage',
         inputs=dict(labels='random_walk/labels',
                     gt=voc + '/SegmentationClass',
                     split=splits + '/train.txt')),
    # segmentation (spec §6.7)
    dict(name='deeplab', type='TrainStage', config=deeplab_config,
         inputs={
             'train_dataloader.dataset.data_root': voc,
             'train_dataloader.dataset.data_prefix.seg_map_path':
             'random_walk/labels',
             'val_dataloader.dataset.data_root': voc,
             'test_dataloader.dataset.data_root': voc,
             'model.backbone.init_cfg.checkpoint': '{deeplab_init}'},
         outputs=dict(checkpoint='deeplab/final.pth')),
    dict(name='deeplab_test', type='TestStage', config=deeplab_config,
         num_vis=6,  # the report's image rows
         inputs={
             'checkpoint': 'deeplab/final.pth',
             'vis_split': splits + '/train.txt',
             'test_dataloader.dataset.data_root': voc},
         outputs=dict(predictions='deeplab_test/predictions',
                      vis_predictions='deeplab_test/vis_predictions')),
]
report = dict(
    variants=[
        dict(name='baseline CAM', cams='cam_eval'),
        dict(name='QA-CLIMS', cams='qaclims_eval', pseudo='pseudo_eval',
             test='deeplab_test'),
    ],
    num_images=6,
    split_file=splits + '/train.txt',
    columns=dict(
        image=dict(kind='image', path=voc + '/JPEGImages'),
        baseline_CAM=dict(kind='cam', path='cam_cams/cams'),
        QA_CLIMS_CAM=dict(kind='cam', path='qaclims_cams/cams'),
        IR_labels=dict(kind='label', path='ir_labels/labels'),
        pseudo_mask=dict(kind='label', path='random_walk/labels'),
        DeepLab=dict(kind='label', path='deeplab_test/vis_predictions'),
        GT=dict(kind='label', path=voc + '/SegmentationClass')))
