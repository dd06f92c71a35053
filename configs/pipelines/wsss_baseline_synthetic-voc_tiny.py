# The tests' preset of wsss_baseline_synthetic-voc.py: the tiny synthetic
# world ('test': 24 train / 12 val / 24 aug-only images) and a few training
# iterations per stage; same stages, same hand-offs.
_base_ = ['./wsss_baseline_synthetic-voc.py']
_tiny = {
    'data': dict(preset='test'),
    'cam': dict(cfg_options={'train_cfg.max_epochs': 2,
                             'default_hooks.checkpoint.interval': 1}),
    'irn': dict(cfg_options={'train_cfg.max_epochs': 1}),
    'deeplab': dict(cfg_options={'train_cfg.max_iters': 8,
                                 'train_cfg.val_interval': 8,
                                 'param_scheduler.0.end': 8}),
}
stages = [
    {**s, **{k: ({**s.get(k, {}), **v} if isinstance(v, dict) else v)
             for k, v in _tiny.get(s['name'], {}).items()}}
    for s in _base_.stages
]
