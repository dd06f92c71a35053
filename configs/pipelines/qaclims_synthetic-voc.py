# The main job: QA-CLIMS end to end on the synthetic VOC-format world, on CPU
# (README command 1). Nothing is downloaded: the world's own tiny VQA and CLIP
# are trained here (cached under data/pretrained/synthetic/), then
#   data -> world models -> QAPE corpus -> text caches -> baseline CAM
#   -> QA-CLIMS RITC (from the baseline) and CLIMS (from the baseline)
#   -> CAMs of all three, scored side by side
#   -> IR labels -> IRNet -> random-walk pseudo masks -> DeepLab v2 -> test
# for QA-CLIMS's CAMs. The method's hyper-parameters are the paper's (the
# synthetic QA-CLIMS / CLIMS configs only shrink the backbone, the CLIP and
# the schedule, as their comments say).
#   python <mmseg>/.mim/tools/train.py configs/pipelines/qaclims_synthetic-voc.py
_base_ = ['./wsss_baseline_synthetic-voc.py']
voc = _base_.voc
splits = _base_.splits
data_keys = _base_.data_keys
base = {s['name']: s for s in _base_.stages}
qaclims_config = ('../qaclims/qaclims_r18-os16_1xb8-300it_'
                  'synthetic-voc-160x160.py')
clims_config = '../clims/clims_r18-os16_1xb16-3e_synthetic-voc-160x160.py'
cam_config = base['cam']['config']
world_clip = 'world/clip'
stages = [
    base['data'],
    # the world's VQA and CLIP (trained once, then reused from the cache)
    dict(name='world', type='WorldModelsStage',
         cache_root='data/pretrained/synthetic', seed=0,
         outputs=dict(vqa='world/vqa', clip=world_clip)),
    # QAPE (spec §2) with the world VQA at its native 64 px
    dict(name='qape', type='QAPEStage', engine='blip', image_size=64,
         batch_size=64,
         inputs=dict(images=voc + '/JPEGImages',
                     labels=voc + '/cls_labels.json', model='world/vqa'),
         outputs=dict(corpus='qape/corpus')),
    dict(name='text_cache', type='TextCacheStage',
         inputs=dict(corpus='qape/corpus', clip=world_clip),
         outputs=dict(cache='text_cache/qa')),
    dict(name='clims_prompts', type='PromptCacheStage',
         inputs=dict(clip=world_clip),
         outputs=dict(cache='clims_prompts/clims')),
    base['cam'], base['cam_cams'], base['cam_eval'],
    # QA-CLIMS: RITC from the baseline CAM (spec §3-§4)
    dict(name='qaclims', type='TrainStage', config=qaclims_config,
         cfg_options={'default_hooks.checkpoint.interval': 100,
                      'default_hooks.checkpoint.max_keep_ckpts': 2},
         inputs={
             **data_keys, 'load_from': 'cam/final.pth',
             'model.cam_head.clip.model_dir': world_clip,
             'train_dataloader.dataset.pipeline.1.cache_prefix':
             'text_cache/qa'},
         outputs=dict(checkpoint='qaclims/final.pth')),
    dict(name='qaclims_cams', type='InferCAMsStage', config=cam_config,
         cfg_options={'custom_hooks': []}, split='train_aug',
         inputs=dict(checkpoint='qaclims/final.pth', **data_keys),
         outputs=dict(cams='qaclims_cams/cams')),
    dict(name='qaclims_eval', type='EvalCAMsStage',
         inputs=dict(cams='qaclims_cams/cams', gt=voc + '/SegmentationClass',
                     split=splits + '/train.txt')),
    # CLIMS: fixed background prompts, from the same baseline (spec §5)
    dict(name='clims', type='TrainStage', config=clims_config,
         cfg_options={'default_hooks.checkpoint.interval': 1,
                      'default_hooks.checkpoint.max_keep_ckpts': 2},
         inputs={
             **data_keys, 'load_from': 'cam/final.pth',
             'model.cam_head.clip.model_dir': world_clip,
             'model.cam_head.text_source.cache': 'clims_prompts/clims'},
         outputs=dict(checkpoint='clims/final.pth')),
    dict(name='clims_cams', type='InferCAMsStage', config=cam_config,
         cfg_options={'custom_hooks': []},
         inputs=dict(checkpoint='clims/final.pth', **data_keys),
         outputs=dict(cams='clims_cams/cams')),
    dict(name='clims_eval', type='EvalCAMsStage',
         inputs=dict(cams='clims_cams/cams', gt=voc + '/SegmentationClass',
                     split=splits + '/train.txt')),
    # refinement and segmentation of QA-CLIMS's CAMs
    dict(base['ir_labels'],
         inputs=dict(base['ir_labels']['inputs'], cams='qaclims_cams/cams')),
    base['irn'],
    dict(base['random_walk'],
         inputs=dict(base['random_walk']['inputs'],
                     cams='qaclims_cams/cams')),
    base['pseudo_eval'], base['deeplab'], base['deeplab_test'],
]
report = dict(
    _delete_=True,
    variants=[
        dict(name='baseline CAM', cams='cam_eval'),
        dict(name='CLIMS', cams='clims_eval'),
        dict(name='QA-CLIMS', cams='qaclims_eval', pseudo='pseudo_eval',
             test='deeplab_test'),
    ],
    num_images=6,
    split_file=splits + '/train.txt',
    columns=dict(
        image=dict(kind='image', path=voc + '/JPEGImages'),
        baseline_CAM=dict(kind='cam', path='cam_cams/cams'),
        CLIMS_CAM=dict(kind='cam', path='clims_cams/cams'),
        QA_CLIMS_CAM=dict(kind='cam', path='qaclims_cams/cams'),
        IR_labels=dict(kind='label', path='ir_labels/labels'),
        pseudo_mask=dict(kind='label', path='random_walk/labels'),
        DeepLab=dict(kind='label', path='deeplab_test/vis_predictions'),
        GT=dict(kind='label', path=voc + '/SegmentationClass')))
