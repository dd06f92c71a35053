"""Safe loading: tensors through ``weights_only``, pickles only on opt-in.

``torch.load`` is always called with ``weights_only=True`` and never retried
with full unpickling (:func:`load_torch_weights` names the file when torch
refuses it). TorchScript archives (OpenAI's CLIP release) are read for their
tensors only, without running their code (:func:`load_torchscript_tensors`).

The official code stores its CAMs (``cam_mask/<id>.npy``), image labels
(``voc12/cls_labels.npy``) and VQA answers (``voc_vqa_{fg,bg}_blip.npy``) as
pickled Python dicts inside ``.npy`` files. Unpickling a file can run arbitrary
code from it, so the loaders refuse such files unless the caller passes
``trust_pickle=True``; the error names the file and the converter that turns it
once into our pickle-free format (``.npz`` CAMs, labels JSON, corpus JSON).
"""
import io
import pickle
from typing import Optional

import numpy as np

__all__ = [
    'UntrustedPickleError', 'load_pickled_npy', 'load_torch_weights',
    'is_torchscript_archive', 'load_torchscript_tensors'
]


class UntrustedPickleError(ValueError):
    """A pickled file was to be read without ``trust_pickle=True``."""


def load_pickled_npy(path: str,
                     trust_pickle: bool,
                     converter: str,
                     what: Optional[str] = None) -> object:
    """Unpickle the object stored in an official ``.npy`` file, if trusted.

    Args:
        path (str): The ``.npy`` file (an existing file).
        trust_pickle (bool): The caller's explicit opt-in to unpickling.
        converter (str): The command line that converts the file once into a
            safe format, quoted in the error.
        what (str, optional): What the file is (e.g. ``'an official VQA
            npy'``); when given, any failure to read a trusted file becomes
            a ``ValueError`` naming ``path`` and ``what`` (the cause kept).
            Defaults to None (errors pass through).

    Returns:
        object: The object stored in the file.

    Raises:
        UntrustedPickleError: when ``trust_pickle`` is False, naming ``path``,
            ``converter`` and the opt-in.
        ValueError: with ``what``, when a trusted file cannot be read.
    """
    if not trust_pickle:
        raise UntrustedPickleError(
            f'{path}: this is a pickled file (the official QA-CLIMS format); '
            'unpickling can run code from the file, so it is not read by '
            'default. Convert it once into the safe format with\n    '
            f'{converter}\nor, if you trust the file, opt in with '
            'trust_pickle=True (--trust-pickle in the converters).')
    try:
        return np.load(path, allow_pickle=True).item()
    except Exception as e:  # noqa: BLE001 - report the file, keep the cause
        if what is None:
            raise
        raise ValueError(f'{path}: cannot read {what} '
                         f'({type(e).__name__}: {e})') from e


def load_torch_weights(path: str, hint: str = '') -> object:
    """``torch.load(path, map_location='cpu', weights_only=True)``.

    Never falls back to full unpickling.

    Args:
        path (str): A ``torch.save`` file.
        hint (str): What to do when the file is refused, appended to the
            error. Defaults to ''.

    Returns:
        object: The loaded object (tensors, containers, allow-listed types).

    Raises:
        pickle.UnpicklingError: naming ``path`` when the file needs more than
            the safe loader allows.
    """
    import torch
    try:
        return torch.load(path, map_location='cpu', weights_only=True)
    except pickle.UnpicklingError as e:
        raise pickle.UnpicklingError(
            f'{path}: refused by the safe loader (torch.load with '
            f'weights_only=True; full unpickling could run code from the '
            f'file): {e}' + (f'\n{hint}' if hint else '')) from e


#: Legacy storage classes a TorchScript ``data.pkl`` names, by dtype.
_STORAGE_DTYPES = {
    'DoubleStorage': 'float64', 'FloatStorage': 'float32',
    'HalfStorage': 'float16', 'BFloat16Storage': 'bfloat16',
    'LongStorage': 'int64', 'IntStorage': 'int32', 'ShortStorage': 'int16',
    'CharStorage': 'int8', 'ByteStorage': 'uint8', 'BoolStorage': 'bool'
}


#: ``torch.jit._pickle`` helpers that return their first argument (typed
#: lists and type tags of TorchScript attributes).
_JIT_IDENTITY = ('build_intlist', 'build_tensorlist', 'build_doublelist',
                 'build_boollist', 'restore_type_tag')


def _first_arg(value, *args):
    return value


class _ScriptObject:
    """Inert stand-in for a TorchScript module or object: keeps its state."""

    def __setstate__(self, state) -> None:
        self.__dict__['_state'] = state


class _StorageType:
    """The dtype of a storage class named in the pickle (never called)."""

    def __init__(self, dtype) -> None:
        self.dtype = dtype


class _TensorsOnlyUnpickler(pickle.Unpickler):
    """Reads a TorchScript ``data.pkl`` without running any of its code.

    Only tensors (``torch._utils._rebuild_tensor_v2`` over the archive's
    storages), ``OrderedDict`` and inert stand-ins for ``__torch__`` classes
    are built; any other global is refused.
    """

    def __init__(self, data: bytes, zf, prefix: str, path: str) -> None:
        super().__init__(io.BytesIO(data))
        self._zf, self._prefix, self._path = zf, prefix, path

    def find_class(self, module: str, name: str):
        import collections

        import torch
        if module == '__torch__' or module.startswith('__torch__.'):
            return _ScriptObject
        if (module, name) == ('torch._utils', '_rebuild_tensor_v2'):
            return torch._utils._rebuild_tensor_v2
        if (module, name) == ('collections', 'OrderedDict'):
            return collections.OrderedDict
        if module == 'torch' and name in _STORAGE_DTYPES:
            return _StorageType(getattr(torch, _STORAGE_DTYPES[name]))
        if module == 'torch.jit._pickle' and name in _JIT_IDENTITY:
            return _first_arg  # typed-list / type-tag wrappers: identities
        raise pickle.UnpicklingError(
            f'{self._path}: unsupported global {module}.{name} in a '
            'TorchScript archive (only tensors are read)')

    def persistent_load(self, pid):
        import torch
        if not (isinstance(pid, tuple) and len(pid) == 5
                and pid[0] == 'storage'
                and isinstance(pid[1], _StorageType)):
            raise pickle.UnpicklingError(
                f'{self._path}: unsupported persistent id {pid!r}')
        data = self._zf.read(f'{self._prefix}data/{pid[2]}')
        untyped = torch.UntypedStorage.from_buffer(
            bytearray(data), dtype=torch.uint8) if data else \
            torch.UntypedStorage(0)
        return torch.storage.TypedStorage(
            wrap_storage=untyped, dtype=pid[1].dtype, _internal=True)


def _flatten_script_object(obj: _ScriptObject, prefix: str,
                           out: dict) -> None:
    state = obj.__dict__.get('_state')
    if not isinstance(state, dict):
        return
    import torch
    for key, value in state.items():
        if isinstance(value, torch.Tensor):
            out[prefix + key] = value
        elif isinstance(value, _ScriptObject):
            _flatten_script_object(value, f'{prefix}{key}.', out)


def _torchscript_data_pkl(names) -> Optional[str]:
    """The ``<folder>/data.pkl`` of a TorchScript archive's member list."""
    pkl = [n for n in names if n.count('/') == 1 and n.endswith('/data.pkl')]
    if len(pkl) == 1 and any(n.endswith('/constants.pkl') for n in names):
        return pkl[0]
    return None


def is_torchscript_archive(path: str) -> bool:
    """Whether ``path`` is a ``torch.jit.save`` archive (not opened by torch).

    Args:
        path (str): A file.

    Returns:
        bool: True for a zip holding ``<folder>/data.pkl`` and
        ``<folder>/constants.pkl``.
    """
    import zipfile
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as zf:
        return _torchscript_data_pkl(zf.namelist()) is not None


def load_torchscript_tensors(path: str) -> dict:
    """The tensors of a TorchScript archive, read without running its code.

    ``torch.jit.load`` runs the archive's TorchScript (``__setstate__``
    methods) and torch refuses TorchScript under ``weights_only``. This reads
    the pickled module tree with an unpickler that builds only tensors and
    inert containers, and names every tensor attribute by its path, as
    ``state_dict()`` would (``visual.conv1.weight``).

    Args:
        path (str): A ``torch.jit.save`` archive (e.g. OpenAI's
            ``ViT-L-14.pt``).

    Returns:
        dict[str, torch.Tensor]: Attribute path -> tensor.

    Raises:
        ValueError: ``path`` is not a TorchScript archive.
        pickle.UnpicklingError: naming ``path`` when the archive needs more
            than tensors.
    """
    import zipfile
    try:
        zf = zipfile.ZipFile(path)
    except zipfile.BadZipFile as e:
        raise ValueError(f'{path}: not a TorchScript archive ({e})') from None
    with zf:
        pkl = _torchscript_data_pkl(zf.namelist())
        if pkl is None:
            raise ValueError(f'{path}: not a TorchScript archive')
        prefix = pkl[:-len('data.pkl')]
        root = _TensorsOnlyUnpickler(zf.read(pkl), zf, prefix, path).load()
    if not isinstance(root, _ScriptObject):
        raise pickle.UnpicklingError(
            f'{path}: the archive does not hold a TorchScript module')
    out: dict = {}
    _flatten_script_object(root, '', out)
    return out
