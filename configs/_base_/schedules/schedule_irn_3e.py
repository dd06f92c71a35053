# IRNet schedule (spec §6.4; IRN step/train_irn.py): 3 epochs, poly decay
# with power 0.9 per iteration. IRN's PolyOptimizer passes the weight decay as
# SGD's positional `momentum` (momentum=1e-4), with weight_decay=1e-4 set per
# group; lr 0.1 for the edge branch, 10x for the displacement branch.
_base_ = ['../default_hooks.py']
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.1, momentum=1e-4, weight_decay=1e-4),
    paramwise_cfg=dict(
        custom_keys={'displacement_head': dict(lr_mult=10.)}))
param_scheduler = [
    dict(type='PolyLR', power=0.9, eta_min=0., begin=0, end=3, by_epoch=True,
         convert_to_iter_based=True)
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=3)
# epoch-based logging; one checkpoint, at the end
log_processor = dict(by_epoch=True)
default_hooks = dict(
    logger=dict(log_metric_by_epoch=True),
    checkpoint=dict(by_epoch=True, interval=3, max_keep_ckpts=1))
