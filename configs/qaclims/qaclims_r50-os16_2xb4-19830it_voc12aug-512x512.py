# QA-CLIMS on VOC 2012 train_aug (spec §3-§5): the baseline CAM ResNet-50
# (load_from) trained against a frozen OV-Seg mask-prompted CLIP ViT-L/14 with
# the QAPE corpus: 10 * L_FRC + 8 * L_BRC + 0.2 * L_REG, FAT alpha 0.1,
# tau 0.7. BatchNorm trainable (SyncBN under DDP, plain BN otherwise).
# Launch: bash tools/dist_train.sh <this config> 2
_base_ = [
    '../_base_/models/cam_r50-os16.py', '../_base_/datasets/voc12_wsss.py',
    '../_base_/schedules/schedule_ritc_19830it.py',
    '../_base_/default_runtime.py'
]
# Files you provide (nothing is downloaded; see README "QA-CLIMS"):
baseline_cam = 'data/pretrained/res50_cam_mmseg.pth'  # converted res50_cam.pth
clip_weights = 'data/pretrained/ViT-L-14.pt'  # OpenAI CLIP ViT-L/14
ovseg_checkpoint = 'data/pretrained/ovseg_swinbase_vitL14_ft_mpt.pth'
qa_cache = 'data/VOCdevkit/VOC2012/qape/voc_blip_ViT-L-14'  # build_text_cache

load_from = baseline_cam
model = dict(
    backbone=dict(
        norm_cfg=dict(type='SyncBN', requires_grad=True),
        norm_eval=False,  # BN statistics are updated in stage 2 (spec §3.1)
        frozen_stages=-1,  # stem BN in train mode; its params: lr 0 (sched.)
        init_cfg=None),  # weights come from load_from
    cam_head=dict(
        _delete_=True,
        type='RegionTextHead',
        in_channels=2048,
        num_classes=20,
        clip=dict(
            type='build_mask_clip',
            model_name='ViT-L-14',
            weights=clip_weights,
            ovseg_checkpoint=ovseg_checkpoint,
            mask_prompt_depth=3,
            checkpointing=False,  # True: less memory, same maths
            autocast_dtype=None),  # 'bf16' on GPU: faster, not parity
        clip_input_size=224,
        region_mask='prompt',  # FAT masks as mask prompts; 'pixels': ablation
        fat_alpha=0.1,
        clip_renormalize=False,  # parity: CLIP sees ImageNet-normalised input
        # the texts of each pair come with the samples (LoadQACorpus)
        text_source=dict(type='QACorpusTextSource', label_weight=0.5),
        losses=dict(
            loss_frc=dict(type='FGRegionContrastiveLoss', tau=0.7,
                          loss_weight=10.),
            loss_brc=dict(type='BGRegionContrastiveLoss', tau=0.7,
                          loss_weight=8.),
            loss_reg=dict(type='AreaRegularizationLoss', loss_weight=0.2))))
# the inherited training pipeline, with the QA corpus of each image loaded
# right after the image (its features travel in the data sample)
train_pipeline = [
    *_base_.train_pipeline[:1],
    dict(type='LoadQACorpus', cache_prefix=qa_cache, classes='voc'),
    *_base_.train_pipeline[1:],
]
train_dataloader = dict(batch_size=4, dataset=dict(pipeline=train_pipeline))
custom_hooks = [
    dict(type='SaveCAMHook', out_dir='cams/train', vis_dir='cam_vis',
         num_vis=20)
]
