# CLIMS (the repo's improved version, spec §5 table) on VOC in the same
# framework: plain OpenAI CLIP ViT-B/32 on the soft CAM regions, class prompts
# 'a photo of {class}.' (person -> player), losses OTM / BTM / CBS / REG with
# weights 10 / 24 / 1 / 0.2, CBS threshold 0.26; lr 2.5e-4 (head 10x),
# batch 16 on one GPU, 15 epochs.
_base_ = [
    '../_base_/models/cam_r50-os16.py', '../_base_/datasets/voc12_wsss.py',
    '../_base_/schedules/schedule_cam_5e.py', '../_base_/default_runtime.py'
]
clip_weights = 'data/pretrained/ViT-B-32.pt'  # OpenAI CLIP ViT-B/32
# the class and background prompts encoded once by the CLIP text tower (see
# README "CLIMS"): python tools/build_text_cache.py --clims-prompts \
#   --classes voc --model ViT-B-32-quickgelu --pretrained <clip_weights> \
#   --out data/pretrained/clims_voc_ViT-B-32
clims_text_cache = 'data/pretrained/clims_voc_ViT-B-32'
load_from = 'data/pretrained/res50_cam_mmseg.pth'
model = dict(
    # stem BN in train mode (statistics update), its parameters fixed below
    backbone=dict(norm_eval=False, frozen_stages=-1, init_cfg=None),
    cam_head=dict(
        _delete_=True,
        type='RegionTextHead',
        in_channels=2048,
        num_classes=20,
        # official CLIMS runs CLIP in fp16 on the GPU (clip.load); no-op on
        # CPU
        clip=dict(type='build_mask_clip', model_name='ViT-B-32',
                  weights=clip_weights, autocast_dtype='fp16'),
        clip_input_size=224,
        region_mask='none',  # plain CLIP on the soft regions, no FAT
        text_source=dict(type='PromptTextSource', cache=clims_text_cache),
        losses=dict(
            loss_otm=dict(type='CLIMSObjectLoss', loss_weight=10.),
            loss_btm=dict(type='CLIMSBackgroundLoss', loss_weight=24.),
            loss_cbs=dict(type='CLIMSContextSuppressionLoss', threshold=0.26,
                          loss_weight=1.),
            loss_reg=dict(type='AreaRegularizationLoss', loss_weight=0.2))))
optim_wrapper = dict(
    optimizer=dict(lr=2.5e-4),
    paramwise_cfg=dict(
        custom_keys={
            'cam_head': dict(lr_mult=10.),
            'backbone.conv1': dict(lr_mult=0., decay_mult=0.),
            'backbone.bn1': dict(lr_mult=0., decay_mult=0.),
        }))
param_scheduler = [
    dict(type='PolyLR', power=0.9, eta_min=0., begin=0, end=15, by_epoch=True,
         convert_to_iter_based=True)
]
train_cfg = dict(max_epochs=15)
