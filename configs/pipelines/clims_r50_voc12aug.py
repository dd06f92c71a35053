# CLIMS on VOC 2012 (spec §5 table) as a pipeline: the QA-CLIMS VOC pipeline
# with the RITC stage replaced by CLIMS (fixed background prompts encoded once
# by the CLIP ViT-B/32 text tower, plain CLIP on the soft CAM regions); no
# QAPE. Refinement and segmentation are the same stages.
_base_ = ['./qaclims_r50_voc12aug.py']
# the QA-CLIMS pipeline's files without BLIP and OV-Seg, and CLIMS's CLIP
files = dict(
    {k: v for k, v in _base_.files.items() if k not in ('blip', 'ovseg')},
    _delete_=True,
    clip=dict(path='data/pretrained/ViT-B-32.pt',
              help='docs/ritc.md#clims (OpenAI CLIP ViT-B/32)'))
clims_config = '../clims/clims_r50-os16_1xb16-15e_voc12aug-512x512.py'
voc, splits, data_keys = _base_.voc, _base_.splits, _base_.data_keys
by_name = {s['name']: s for s in _base_.stages}
stages = [
    # the CLIMS prompts (spec §5): class prompts + the fixed background ones
    dict(name='text_cache', type='PromptCacheStage',
         model_name='ViT-B-32-quickgelu', inputs=dict(clip='{clip}'),
         outputs=dict(cache='text_cache/clims_voc')),
    by_name['cam'], by_name['cam_cams'], by_name['cam_eval'],
    dict(name='clims', type='TrainStage', config=clims_config,
         inputs={
             **data_keys, 'load_from': 'cam/final.pth',
             'model.cam_head.clip.weights': '{clip}',
             'model.cam_head.text_source.cache': 'text_cache/clims_voc'},
         outputs=dict(checkpoint='clims/final.pth')),
    dict(by_name['qaclims_cams'], name='clims_cams',
         inputs=dict(checkpoint='clims/final.pth', **data_keys),
         outputs=dict(cams='clims_cams/cams')),
    dict(by_name['qaclims_eval'], name='clims_eval',
         inputs=dict(cams='clims_cams/cams', gt=voc + '/SegmentationClass',
                     split=splits + '/train.txt')),
    dict(by_name['ir_labels'],
         inputs=dict(cams='clims_cams/cams', images=voc + '/JPEGImages',
                     split=splits + '/train_aug.txt')),
    by_name['irn'],
    dict(by_name['random_walk'],
         inputs=dict(cams='clims_cams/cams', images=voc + '/JPEGImages',
                     split=splits + '/train_aug.txt',
                     irn_checkpoint='irn/final.pth')),
    by_name['pseudo_eval'], by_name['deeplab'], by_name['deeplab_test'],
]
report = dict(
    _delete_=True,
    variants=[
        dict(name='baseline CAM', cams='cam_eval'),
        dict(name='CLIMS', cams='clims_eval', pseudo='pseudo_eval',
             test='deeplab_test'),
    ],
    num_images=6,
    split_file=splits + '/train.txt',
    columns=dict(
        image=dict(kind='image', path=voc + '/JPEGImages'),
        baseline_CAM=dict(kind='cam', path='cam_cams/cams'),
        CLIMS_CAM=dict(kind='cam', path='clims_cams/cams'),
        pseudo_mask=dict(kind='label', path='random_walk/labels'),
        DeepLab=dict(kind='label', path='deeplab_test/vis_predictions'),
        GT=dict(kind='label', path=voc + '/SegmentationClass')))
