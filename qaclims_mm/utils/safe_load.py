"""Safe loading: tensors through ``weights_only``, pickles only on opt-in.

``torch.load`` is always called with ``weights_only=True`` and never retried
with full unpickling (:func:`load_torch_weights` names the file when torch
refuses it).


The official code stores its CAMs (``cam_mask/<id>.npy``), image labels
(``voc12/cls_labels.npy``) and VQA answers (``voc_vqa_{fg,bg}_blip.npy``) as
pickled Python dicts inside ``.npy`` files. Unpickling a file can run arbitrary
code from it, so the loaders refuse such files unless the caller passes
``trust_pickle=True``; the error names the file and the converter that turns it
once into our pickle-free format (``.npz`` CAMs, labels JSON, corpus JSON).
"""
import pickle

import numpy as np

__all__ = ['UntrustedPickleError', 'load_pickled_npy', 'load_torch_weights']


class UntrustedPickleError(ValueError):
    """A pickled file was to be read without ``trust_pickle=True``."""


def load_pickled_npy(path: str, trust_pickle: bool, converter: str) -> object:
    """Unpickle the object stored in an official ``.npy`` file, if trusted.

    Args:
        path (str): The ``.npy`` file (an existing file).
        trust_pickle (bool): The caller's explicit opt-in to unpickling.
        converter (str): The command line that converts the file once into a
            safe format, quoted in the error.

    Returns:
        object: The object stored in the file.

    Raises:
        UntrustedPickleError: when ``trust_pickle`` is False, naming ``path``,
            ``converter`` and the opt-in.
    """
    if not trust_pickle:
        raise UntrustedPickleError(
            f'{path}: this is a pickled file (the official QA-CLIMS format); '
            'unpickling can run code from the file, so it is not read by '
            'default. Convert it once into the safe format with\n    '
            f'{converter}\nor, if you trust the file, opt in with '
            'trust_pickle=True (--trust-pickle in the converters).')
    return np.load(path, allow_pickle=True).item()


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
