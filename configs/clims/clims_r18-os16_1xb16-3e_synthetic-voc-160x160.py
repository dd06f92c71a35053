# CLIMS on the synthetic VOC-format dataset (issue 13), on CPU: the VOC CLIMS
# config (losses OTM / BTM / CBS / REG with weights 10 / 24 / 1 / 0.2, CBS
# threshold 0.26, class prompts with person -> player, the fixed VOC
# background prompts, plain CLIP on the soft regions, lr 2.5e-4 with the head
# 10x, batch 16) with only these changes:
# * backbone: the random-init ResNet-18 of the synthetic CAM demo, whose
#   checkpoint is load_from; plain BN;
# * CLIP: the world CLIP (qaclims_mm.synthetic.world.clip): its architecture
#   from the local-dir folder, weights.pth, input size 64; no fp16 autocast
#   (CPU);
# * prompt cache: the CLIMS prompts encoded by the world CLIP's text tower
#   (qaclims_mm.qape.text_cache.build_prompt_text_cache);
# * data: the synthetic dataset (160 px crops);
# * schedule: 3 epochs instead of 15.
_base_ = ['./clims_r50-os16_1xb16-15e_voc12aug-512x512.py']
# Files the pipeline fills (placeholders; relative to the working directory):
data_root = 'data/synthetic_voc/VOC2012'
world_clip = 'data/pretrained/synthetic/clip'  # train_world_clip out_dir
clims_text_cache = 'data/pretrained/synthetic/clims_prompts_world-clip'
baseline_cam = 'data/pretrained/synthetic/cam_r18_baseline.pth'
load_from = baseline_cam
# Config keys to set when the paths change: load_from,
# model.cam_head.clip.model_dir,
# model.cam_head.text_source.cache, {train,test}_dataloader.dataset.data_root.

crop_size = 160
model = dict(
    backbone=dict(depth=18),
    cam_head=dict(
        in_channels=512,
        clip=dict(
            model_name=None,  # the architecture comes from model_dir
            model_dir=world_clip,  # architecture + the file below
            weights='weights.pth',
            autocast_dtype=None),
        clip_input_size=64,
        text_source=dict(cache=clims_text_cache)))
train_pipeline = [
    dict(type='LoadImageFromFile', color_type='color_ignore_orientation'),
    dict(type='RandomLongSideResize', long_range=(128, 224)),
    dict(type='RandomFlip', prob=0.5),
    dict(type='RandomCropWithPad', crop_size=crop_size),
    dict(type='PackWSSSInputs'),
]
train_dataloader = dict(
    num_workers=2,
    persistent_workers=False,
    dataset=dict(data_root=data_root, pipeline=train_pipeline))
test_dataloader = dict(
    num_workers=2, persistent_workers=False,
    dataset=dict(data_root=data_root))
max_epochs = 3
param_scheduler = [
    dict(type='PolyLR', power=0.9, eta_min=0., begin=0, end=max_epochs,
         by_epoch=True, convert_to_iter_based=True)
]
train_cfg = dict(max_epochs=max_epochs)
default_hooks = dict(
    logger=dict(interval=10),
    checkpoint=dict(interval=max_epochs),
    visualization=dict(draw=False))
custom_hooks = [
    dict(type='SaveCAMHook', out_dir='cams/train', vis_dir='cam_vis',
         num_vis=8)
]
randomness = dict(seed=0)
