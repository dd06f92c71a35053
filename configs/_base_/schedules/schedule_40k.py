# MMSegmentation's schedule_40k (SGD 0.01, momentum 0.9, wd 5e-4, poly 0.9 to
# 1e-4, 40k iterations, validation and checkpoints every 4k), keeping the
# last two checkpoints.
_base_ = ['../default_hooks.py']
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.01, momentum=0.9, weight_decay=0.0005),
    clip_grad=None)
max_iters = 40000
param_scheduler = [
    dict(type='PolyLR', eta_min=1e-4, power=0.9, begin=0, end=max_iters,
         by_epoch=False)
]
train_cfg = dict(
    type='IterBasedTrainLoop', max_iters=max_iters, val_interval=4000)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
# checkpoints every 4k, the last two kept
default_hooks = dict(checkpoint=dict(interval=4000))
