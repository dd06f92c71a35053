"""Dense CRF (Krähenbühl & Koltun) on ``pydensecrf2``, the two official uses.

* :func:`crf_from_labels`: refine a hard label map (IR labels, spec §6.3): the
  unary comes from the labels with ``gt_prob`` confidence, then a Gaussian and a
  bilateral pairwise term; the result is the argmax label map.
* :func:`crf_from_probs`: refine class probabilities (DeepLab test-time
  post-processing, spec §6.7): the unary is ``-log(prob)``; the result is the
  refined probability map.

``pydensecrf2`` (PyPI; imports as ``pydensecrf``) is an optional dependency,
installed by ``tools/install.sh`` unless ``--no-crf``; a clear error says how
to get it when it is missing. Images are uint8 RGB ``[H, W, 3]``.
"""
from typing import Any, Tuple

import numpy as np


def require_pydensecrf() -> Any:
    """Import ``pydensecrf.densecrf``, or raise a clear ImportError."""
    try:
        import pydensecrf.densecrf as dcrf
    except ImportError as e:
        raise ImportError(
            'the dense CRF needs pydensecrf2 (PyPI, imports as pydensecrf): '
            'pip install pydensecrf2==1.1, or re-run tools/install.sh without '
            f'--no-crf ({e})') from e
    return dcrf


def _check_image(image: np.ndarray, hw) -> np.ndarray:
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f'the CRF image must be uint8 [H, W, 3], got '
                         f'{image.dtype} {image.shape}')
    if image.shape[:2] != tuple(hw):
        raise ValueError(f'image size {image.shape[:2]} does not match the '
                         f'label/probability map size {tuple(hw)}')
    # pydensecrf needs a writeable C-contiguous buffer; np.asarray of a PIL
    # image is read-only, so copy unless the array already qualifies
    if not (image.flags.c_contiguous and image.flags.writeable):
        image = np.array(image, order='C', copy=True)
    return image


def _mean_field(dcrf, image: np.ndarray, unary: np.ndarray, num_labels: int,
                n_iters: int, gaussian: Tuple[float, float],
                bilateral: Tuple[float, float, float]):
    """Dense CRF with a Gaussian and a bilateral kernel, shared by both
    entry points.

    Args:
        dcrf (module): ``pydensecrf.densecrf``.
        image (np.ndarray): ``[H, W, 3]`` C-contiguous uint8 RGB image.
        unary (np.ndarray): ``[num_labels, H * W]`` float32 unary energy.
        num_labels (int): Number of labels.
        n_iters (int): Mean-field iterations.
        gaussian (tuple): Gaussian kernel ``(sxy, compat)``.
        bilateral (tuple): Bilateral kernel ``(sxy, srgb, compat)``.

    Returns:
        The ``[num_labels, H * W]`` marginals as pydensecrf returns them.
    """
    h, w = image.shape[:2]
    crf = dcrf.DenseCRF2D(w, h, num_labels)
    crf.setUnaryEnergy(unary)
    crf.addPairwiseGaussian(sxy=gaussian[0], compat=gaussian[1])
    crf.addPairwiseBilateral(sxy=bilateral[0], srgb=bilateral[1],
                             rgbim=image, compat=bilateral[2])
    return crf.inference(n_iters)


def crf_from_labels(image: np.ndarray,
                    labels: np.ndarray,
                    num_labels: int,
                    n_iters: int = 10,
                    gt_prob: float = 0.7,
                    gauss_sxy: float = 3,
                    gauss_compat: float = 3,
                    bilateral_sxy: float = 50,
                    bilateral_srgb: float = 5,
                    bilateral_compat: float = 10) -> np.ndarray:
    """Refine a label map with a dense CRF (the official IR-label CRF).

    Args:
        image (np.ndarray): ``[H, W, 3]`` uint8 RGB image.
        labels (np.ndarray): ``[H, W]`` integer labels in ``[0, num_labels)``.
        num_labels (int): Number of labels.
        n_iters (int): Mean-field iterations. Defaults to 10.
        gt_prob (float): Confidence of the given labels. Defaults to 0.7.
        gauss_sxy (float): Gaussian kernel spatial std. Defaults to 3.
        gauss_compat (float): Gaussian kernel weight. Defaults to 3.
        bilateral_sxy (float): Bilateral spatial std. Defaults to 50.
        bilateral_srgb (float): Bilateral colour std. Defaults to 5.
        bilateral_compat (float): Bilateral weight. Defaults to 10.

    Returns:
        np.ndarray: ``[H, W]`` int64 refined labels.
    """
    dcrf = require_pydensecrf()
    from pydensecrf.utils import unary_from_labels
    labels = np.asarray(labels)
    h, w = labels.shape
    image = _check_image(image, (h, w))
    if labels.min() < 0 or labels.max() >= num_labels:
        raise ValueError(f'labels must lie in [0, {num_labels}), got '
                         f'[{labels.min()}, {labels.max()}]')
    unary = unary_from_labels(labels, num_labels, gt_prob=gt_prob,
                              zero_unsure=False)
    q = _mean_field(dcrf, image, unary, num_labels, n_iters,
                    (gauss_sxy, gauss_compat),
                    (bilateral_sxy, bilateral_srgb, bilateral_compat))
    return np.asarray(q).reshape(num_labels, h, w).argmax(axis=0).astype(
        np.int64)


def crf_from_probs(image: np.ndarray,
                   probs: np.ndarray,
                   n_iters: int = 10,
                   pos_xy_std: float = 1,
                   pos_w: float = 3,
                   bi_xy_std: float = 67,
                   bi_rgb_std: float = 3,
                   bi_w: float = 4) -> np.ndarray:
    """Refine class probabilities with a dense CRF (DeepLab post-processing).

    Args:
        image (np.ndarray): ``[H, W, 3]`` uint8 RGB image.
        probs (np.ndarray): ``[C, H, W]`` class probabilities (softmax).
        n_iters (int): Mean-field iterations. Defaults to 10.
        pos_xy_std (float): Gaussian spatial std. Defaults to 1.
        pos_w (float): Gaussian weight. Defaults to 3.
        bi_xy_std (float): Bilateral spatial std. Defaults to 67.
        bi_rgb_std (float): Bilateral colour std. Defaults to 3.
        bi_w (float): Bilateral weight. Defaults to 4.

    Returns:
        np.ndarray: ``[C, H, W]`` float32 refined probabilities.
    """
    dcrf = require_pydensecrf()
    from pydensecrf.utils import unary_from_softmax
    probs = np.asarray(probs, dtype=np.float32)
    c, h, w = probs.shape
    image = _check_image(image, (h, w))
    unary = np.ascontiguousarray(unary_from_softmax(probs))
    q = _mean_field(dcrf, image, unary, c, n_iters, (pos_xy_std, pos_w),
                    (bi_xy_std, bi_rgb_std, bi_w))
    return np.asarray(q, dtype=np.float32).reshape(c, h, w)
