# QA-CLIMS on the synthetic VOC-format dataset (issue 13), on CPU: the RITC
# stage of the VOC config (same losses 10 * L_FRC + 8 * L_BRC + 0.2 * L_REG,
# tau 0.7, FAT alpha 0.1, lambda 0.5, mask prompts, SGD with the official
# lr / momentum / weight decay, head 10x, stem fixed) with only these changes:
# * backbone: the random-init ResNet-18 of the synthetic CAM demo
#   (configs/cam/cam_r18-os16_1xb16-12e_synthetic-voc-160x160.py), whose
#   checkpoint is load_from; plain BN (one CPU process, no SyncBN);
# * CLIP: the world CLIP trained on the synthetic world
#   (qaclims_mm.synthetic.world.clip, docs/world_models_clip.md): its
#   architecture from the local-dir folder, weights.pth + ovseg.pth, input
#   size 64 (clip_input_size);
# * data: the synthetic dataset (160 px crops) and its QA text cache;
# * schedule: 300 iterations of batch 8 instead of 19,830 of 2 x 4.
_base_ = ['./qaclims_r50-os16_2xb4-19830it_voc12aug-512x512.py']
# Files the pipeline fills (placeholders; relative to the working directory):
data_root = 'data/synthetic_voc/VOC2012'
world_clip = 'data/pretrained/synthetic/clip'  # train_world_clip out_dir
qa_cache = 'data/pretrained/synthetic/qa_cache/synthetic_blip_world-clip'
baseline_cam = 'data/pretrained/synthetic/cam_r18_baseline.pth'
load_from = baseline_cam
# Config keys to set when the paths change (the variables above are read when
# the file is parsed): load_from, model.cam_head.clip.model_dir,
# train_dataloader.dataset.pipeline.1.cache_prefix,
# train_dataloader.dataset.data_root, test_dataloader.dataset.data_root.

crop_size = 160
model = dict(
    backbone=dict(depth=18, norm_cfg=dict(type='BN', requires_grad=True)),
    cam_head=dict(
        in_channels=512,
        clip=dict(
            model_name=None,  # the architecture comes from model_dir
            model_dir=world_clip,  # architecture + the files below
            weights='weights.pth',
            ovseg_checkpoint='ovseg.pth'),
        clip_input_size=64))
train_pipeline = [
    dict(type='LoadImageFromFile', color_type='color_ignore_orientation'),
    dict(type='LoadQACorpus', cache_prefix=qa_cache, classes='voc'),
    dict(type='RandomLongSideResize', long_range=(128, 224)),
    dict(type='RandomFlip', prob=0.5),
    dict(type='RandomCropWithPad', crop_size=crop_size),
    dict(type='PackWSSSInputs'),
]
train_dataloader = dict(
    batch_size=8,
    num_workers=2,
    persistent_workers=False,
    dataset=dict(data_root=data_root, pipeline=train_pipeline))
test_dataloader = dict(
    num_workers=2, persistent_workers=False,
    dataset=dict(data_root=data_root))
max_iters = 300
param_scheduler = [
    dict(type='PolyLR', power=0.9, eta_min=0., begin=0, end=max_iters,
         by_epoch=False)
]
train_cfg = dict(max_iters=max_iters, val_interval=max_iters + 1)
default_hooks = dict(
    logger=dict(interval=10),
    checkpoint=dict(interval=max_iters),
    visualization=dict(draw=False))
custom_hooks = [
    dict(type='SaveCAMHook', out_dir='cams/train', vis_dir='cam_vis',
         num_vis=8)
]
randomness = dict(seed=0)
