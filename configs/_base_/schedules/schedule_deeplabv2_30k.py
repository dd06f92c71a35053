# DeepLab v2 schedule of CLIMS / QA-CLIMS (spec §6.7; deeplab-pytorch
# main.py): batch x gradient accumulation 2, 30k optimiser steps of SGD
# (momentum 0.9, wd 5e-4) with poly 0.9.
#
# Learning rates as CLIMS `get_params` (caffe lr_mult): backbone convs 1x =
# 2.5e-4, ASPP weights 10x = 2.5e-3, ASPP biases 20x = 5e-3 without weight
# decay. MMEngine's DefaultOptimWrapperConstructor lets a matching custom key
# override the bias rules, so the optimiser lr is the head-weight lr (10x)
# and the backbone gets lr_mult 0.1; bias_lr_mult/bias_decay_mult then reach
# exactly the head biases (the backbone has no trainable bias: conv bias=False,
# BN frozen, and frozen parameters are left out of the optimiser).
_base_ = ['../default_hooks.py']
base_lr = 2.5e-4
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(
        type='SGD', lr=10 * base_lr, momentum=0.9, weight_decay=5e-4),
    # ITER_SIZE 2: the loss is divided by 2 and the step taken every 2nd
    # iteration
    accumulative_counts=2,
    paramwise_cfg=dict(
        custom_keys={'backbone': dict(lr_mult=0.1)},
        bias_lr_mult=2.0,
        bias_decay_mult=0.0))
# With gradient accumulation an MMEngine iteration is one mini-batch: 30k
# optimiser steps = 60k iterations. deeplab-pytorch updates the poly lr every
# 10 steps; PolyLR here updates every iteration.
max_iters = 60000
param_scheduler = [
    dict(type='PolyLR', power=0.9, eta_min=0., begin=0, end=max_iters,
         by_epoch=False)
]
train_cfg = dict(
    type='IterBasedTrainLoop', max_iters=max_iters, val_interval=10000)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
# checkpoints every 10k, the last two kept
default_hooks = dict(checkpoint=dict(interval=10000))
