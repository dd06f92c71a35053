# The CAM stage with another backbone, by config alone: mmpretrain's ConvNeXt
# (atto; any arch works, set in_channels to its last stage width) through the
# `mmpretrain.` scope prefix. Output stride 32; CAM inference and scoring are
# unchanged. Weights: an mmpretrain ConvNeXt checkpoint in data/pretrained/.
_base_ = ['./cam_r50-os16_1xb16-5e_voc12aug-512x512.py']
model = dict(
    backbone=dict(
        _delete_=True,
        type='mmpretrain.ConvNeXt',
        arch='atto',
        out_indices=(3, ),
        drop_path_rate=0.1,
        gap_before_final_norm=False,
        init_cfg=dict(
            type='Pretrained',
            checkpoint='data/pretrained/convnext-atto_3rdparty_in1k.pth',
            prefix='backbone.')),
    cam_head=dict(in_channels=320))
# ConvNeXt trains with AdamW; BatchNorm-specific settings do not apply.
optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-4, weight_decay=0.05),
    paramwise_cfg=dict(custom_keys={'cam_head': dict(lr_mult=10.)}))
