"""The on-disk CAM format shared by inference, evaluation and refinement.

One file per image, ``<cam_dir>/<img_id>.npz`` (``numpy.savez``, no pickle), with:

========== ======================== ==============================================
key        array                    meaning
========== ======================== ==============================================
``keys``   int64 ``[K]``            0-based object-class indices of the K maps
                                    (the image's labelled classes, ascending)
``cam``    float32 ``[K, h, w]``    stride-4 CAMs, ``h = ceil(H/4)``,
                                    ``w = ceil(W/4)``
``high_res`` float32 ``[K, H, W]``  full-resolution CAMs
``version`` int64 scalar            format version (:data:`CAM_FORMAT_VERSION`)
========== ======================== ==============================================

Each map is divided by its own spatial maximum (+1e-5), so values lie in [0, 1)
(spec §6.1). Class ``keys[k]`` is label ``keys[k] + 1`` in a segmentation map
(0 is background). The official QA-CLIMS ``cam_mask/<id>.npy`` pickled dicts
(``keys``, ``cam``, ``high_res``) are read only on explicit opt-in
(``trust_pickle=True``): unpickling a file can run code from it. Convert such a
folder once into this format with ``tools/convert_official_cams.py`` and score
or refine the converted CAMs.

Example::

    >>> cam = load_cam('work_dirs/cams/2007_000032.npz')
    >>> cam['keys'], cam['high_res'].shape
    (array([0, 14]), (2, 281, 500))
"""
import io
import os.path as osp
import zipfile
from typing import Dict, Optional, Sequence

import numpy as np

from .io import atomic_write_bytes
from .safe_load import UntrustedPickleError, load_pickled_npy

CAM_FORMAT_VERSION = 1
CAM_SUFFIXES = ('.npz', '.npy')


def save_cam(path: str, keys: np.ndarray, cam: Optional[np.ndarray],
             high_res: Optional[np.ndarray]) -> None:
    """Write one image's CAMs atomically in the format above.

    Args:
        path (str): Output ``.npz`` path.
        keys (np.ndarray): ``[K]`` 0-based class indices.
        cam (np.ndarray, optional): ``[K, h, w]`` stride-4 CAMs.
        high_res (np.ndarray, optional): ``[K, H, W]`` full-resolution CAMs.
    """
    keys = np.asarray(keys, dtype=np.int64).reshape(-1)
    arrays = dict(keys=keys, version=np.int64(CAM_FORMAT_VERSION))
    for name, arr in (('cam', cam), ('high_res', high_res)):
        if arr is None:
            continue
        arr = np.asarray(arr, dtype=np.float32)
        if arr.ndim != 3 or arr.shape[0] != keys.shape[0]:
            raise ValueError(f'{path}: {name!r} must have shape [K={len(keys)}, '
                             f'h, w], got {arr.shape}')
        arrays[name] = arr
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    atomic_write_bytes(path, buf.getvalue())


def find_cam_file(cam_dir: str, img_id: str) -> str:
    """Return the CAM file of ``img_id`` in ``cam_dir`` (``.npz`` or ``.npy``).

    Raises:
        FileNotFoundError: naming the image id and the folder.
    """
    for suffix in CAM_SUFFIXES:
        path = osp.join(cam_dir, img_id + suffix)
        if osp.isfile(path):
            return path
    raise FileNotFoundError(
        f'no CAM file for image {img_id!r} in {cam_dir} '
        f'(looked for {img_id}.npz and {img_id}.npy); was inference run on '
        f'this split?')


def _to_numpy(value) -> np.ndarray:
    if hasattr(value, 'detach'):  # a torch tensor in an official file
        value = value.detach().cpu().numpy()
    return np.asarray(value)


def _read_cam_entries(path: str, fields: Sequence[str],
                      trust_pickle: bool) -> Dict[str, np.ndarray]:
    """The raw entries of a CAM file (no shape checks)."""
    if path.endswith('.npy'):
        raw = load_pickled_npy(
            path, trust_pickle, 'python tools/convert_official_cams.py '
            f'{osp.dirname(path) or "."} OUT_DIR --trust-pickle')
        return _cam_entries(raw, fields)
    with np.load(path, allow_pickle=False) as raw:
        return _cam_entries(raw, fields)


def _cam_entries(raw, fields: Sequence[str]) -> Dict[str, np.ndarray]:
    out = {'keys': _to_numpy(raw['keys']).astype(np.int64).reshape(-1)}
    for name in fields:
        if name not in raw:
            raise KeyError(name)
        out[name] = _to_numpy(raw[name]).astype(np.float32, copy=False)
    return out


def load_cam(path: str, num_classes: Optional[int] = None,
             fields=('cam', 'high_res'),
             trust_pickle: bool = False) -> Dict[str, np.ndarray]:
    """Read a CAM file written by :func:`save_cam` (or by the official code).

    Args:
        path (str): A ``.npz`` file (ours), or with ``trust_pickle`` an
            official ``.npy`` pickled dict.
        num_classes (int, optional): When given, every key must lie in
            ``[0, num_classes)``.
        fields (tuple[str]): The map entries to load. Defaults to both.
        trust_pickle (bool): Unpickle an official ``.npy`` file. Unpickling
            can run code from the file: only for files you trust (better,
            convert them once with ``tools/convert_official_cams.py``).
            Defaults to False (a ``.npy`` is refused, naming the file).

    Returns:
        dict: ``keys`` plus the requested map entries (float32 arrays).

    Raises:
        FileNotFoundError, ValueError: naming the file and what is wrong
            (also for a truncated or corrupt file).
    """
    if not osp.isfile(path):
        raise FileNotFoundError(f'CAM file not found: {path}')
    try:
        out = _read_cam_entries(path, fields, trust_pickle)
    except UntrustedPickleError:
        raise
    except KeyError as e:
        raise ValueError(f'{path}: missing entry {e.args[0]!r} (expected keys '
                         f'{("keys",) + tuple(fields)})') from None
    except (OSError, ValueError, AttributeError, EOFError, TypeError,
            zipfile.BadZipFile) as e:
        raise ValueError(f'{path}: not a readable CAM file (truncated or '
                         f'corrupt?): {type(e).__name__}: {e}') from e
    keys = out['keys']
    if num_classes is not None and keys.size and (
            keys.min() < 0 or keys.max() >= num_classes):
        bad = keys[(keys < 0) | (keys >= num_classes)].tolist()
        raise ValueError(f'{path}: class keys {bad} are outside the '
                         f'{num_classes} classes of the dataset')
    for name in fields:
        if out[name].ndim != 3 or out[name].shape[0] != keys.size:
            raise ValueError(f'{path}: {name!r} has shape {out[name].shape}, '
                             f'expected [K={keys.size}, h, w]')
    return out
