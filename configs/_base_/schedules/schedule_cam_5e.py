# Baseline CAM schedule (spec §3.4): 5 epochs, SGD lr 0.1 (backbone) / 1.0
# (CAM head), weight decay 1e-4, poly decay with power 0.9, per iteration.
# momentum=1e-4 reproduces the official PolyOptimizer, which passes the weight
# decay as SGD's positional `momentum` argument (spec §3.2, PSA issue #28).
_base_ = ['../default_hooks.py']
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.1, momentum=1e-4, weight_decay=1e-4),
    paramwise_cfg=dict(custom_keys={'cam_head': dict(lr_mult=10.)}))
param_scheduler = [
    dict(type='PolyLR', power=0.9, eta_min=0., begin=0, end=5, by_epoch=True,
         convert_to_iter_based=True)
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=5, val_interval=1000)
test_cfg = dict(type='TestLoop')
# epoch-based logging and checkpoints (every epoch, the last two kept)
log_processor = dict(by_epoch=True)
default_hooks = dict(
    logger=dict(log_metric_by_epoch=True),
    checkpoint=dict(by_epoch=True, interval=1))
