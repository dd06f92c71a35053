"""Config loading shared by our command-line tools."""
import os.path as osp
from typing import Optional

from mmengine.config import Config


def load_config(path: str,
                cfg_options: Optional[dict] = None,
                work_dir: Optional[str] = None,
                launcher: str = 'none') -> Config:
    """Load ``path`` the way MMSegmentation's tools do.

    ``cfg_options`` are merged in; the work dir is ``work_dir`` if given, else
    the config's own, else ``./work_dirs/<config name>``.
    """
    if not osp.isfile(path):
        raise FileNotFoundError(f'config not found: {path}')
    cfg = Config.fromfile(path)
    cfg.launcher = launcher
    if cfg_options is not None:
        cfg.merge_from_dict(cfg_options)
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(path))[0])
    return cfg


def set_cam_dir(cfg: Config, cam_dir: str) -> None:
    """Point the config's ``SaveCAMHook`` at ``cam_dir`` (add one if missing).

    Args:
        cfg (Config): The test config, changed in place.
        cam_dir (str): A command-line path: made absolute against the
            current directory (the hook would join a relative one to the
            work dir).
    """
    cam_dir = osp.abspath(cam_dir)
    hooks = list(cfg.get('custom_hooks', []) or [])
    for hook in hooks:
        if hook.get('type') == 'SaveCAMHook':
            hook['out_dir'] = cam_dir
            break
    else:
        hooks.append(dict(type='SaveCAMHook', out_dir=cam_dir))
    cfg.custom_hooks = hooks


def set_test_outputs(cfg: Config,
                     out: Optional[str] = None,
                     cam_dir: Optional[str] = None) -> None:
    """Where a test run writes its predictions (``--out`` / ``--cam-dir``).

    A CAM model (its evaluator is ``CAMIoUMetric``) predicts CAMs: both
    options set the ``SaveCAMHook`` folder. Any other model keeps mmseg's
    ``--out`` meaning: the evaluator keeps its result PNGs there.

    Args:
        cfg (Config): The test config, changed in place.
        out (str, optional): The ``--out`` folder.
        cam_dir (str, optional): The ``--cam-dir`` folder.
    """
    if cam_dir:
        set_cam_dir(cfg, cam_dir)
    if out is None:
        return
    if cfg.test_evaluator.get('type') == 'CAMIoUMetric':
        set_cam_dir(cfg, out)
    else:
        cfg.test_evaluator['output_dir'] = out
        cfg.test_evaluator['keep_results'] = True
