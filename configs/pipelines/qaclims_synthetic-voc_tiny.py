# The tests' preset of qaclims_synthetic-voc.py: the same stages and
# hand-offs on the tiny synthetic world ('test': 24 train / 12 val / 24
# aug-only images), with quickly trained world models and a few training
# iterations per stage (numbers from it say that the pipeline works, not how
# well the method does: the main job measures that).
_base_ = ['./qaclims_synthetic-voc.py']
_tiny = {
    'data': dict(preset='test'),
    'world': dict(preset='test'),
    'qape': dict(image_size=32),  # the test preset's VQA input size
    'cam': dict(cfg_options={'train_cfg.max_epochs': 8,
                             'param_scheduler.0.end': 8,
                             'default_hooks.checkpoint.interval': 4,
                             'default_hooks.logger.interval': 1}),
    'qaclims': dict(cfg_options={
        'train_cfg.max_iters': 6, 'train_cfg.val_interval': 7,
        'param_scheduler.0.end': 6, 'default_hooks.checkpoint.interval': 3,
        'default_hooks.logger.interval': 1,
        'train_dataloader.batch_size': 4}),
    'clims': dict(cfg_options={'train_cfg.max_epochs': 1,
                               'param_scheduler.0.end': 1,
                               'default_hooks.logger.interval': 1}),
    'irn': dict(cfg_options={'train_cfg.max_epochs': 1,
                             'default_hooks.logger.interval': 1}),
    'deeplab': dict(cfg_options={'train_cfg.max_iters': 8,
                                 'train_cfg.val_interval': 8,
                                 'param_scheduler.0.end': 8,
                                 'default_hooks.logger.interval': 2}),
}
stages = [
    {**s, **{k: ({**s.get(k, {}), **v} if isinstance(v, dict) else v)
             for k, v in _tiny.get(s['name'], {}).items()}}
    for s in _base_.stages
]
