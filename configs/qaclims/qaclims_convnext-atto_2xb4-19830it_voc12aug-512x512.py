# QA-CLIMS with another backbone, by config alone: mmpretrain's ConvNeXt
# (atto; set cam_head.in_channels to the last stage width of your arch)
# trained with the RITC losses. Start from a CAM checkpoint of the same
# backbone (configs/cam/cam_convnext-atto_1xb16-5e_voc12aug-512x512.py).
_base_ = ['./qaclims_r50-os16_2xb4-19830it_voc12aug-512x512.py']
load_from = 'work_dirs/cam_convnext-atto_1xb16-5e_voc12aug-512x512/epoch_5.pth'
model = dict(
    backbone=dict(
        _delete_=True,
        type='mmpretrain.ConvNeXt',
        arch='atto',
        out_indices=(3, ),
        drop_path_rate=0.1,
        gap_before_final_norm=False,
        init_cfg=None),
    cam_head=dict(in_channels=320))
optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-5, weight_decay=0.05),
    paramwise_cfg=dict(custom_keys={'cam_head': dict(lr_mult=10.)}))
