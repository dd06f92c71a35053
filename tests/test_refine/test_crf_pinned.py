"""Pins both dense-CRF entry points (they share ``_mean_field``) to the
values computed before they shared it."""
import hashlib

import numpy as np
import pytest

pytest.importorskip('pydensecrf')

from qaclims_mm.structures.crf import crf_from_labels, crf_from_probs  # noqa


def _inputs():
    rng = np.random.default_rng(7)
    img = rng.integers(0, 256, (23, 31, 3), dtype=np.uint8)
    labels = rng.integers(0, 3, (23, 31))
    probs = rng.random((4, 23, 31)).astype(np.float32)
    return img, labels, probs / probs.sum(0)


def _sha(a: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()


def test_crf_from_labels_pinned():
    img, labels, _ = _inputs()
    out = crf_from_labels(img, labels, 3)
    assert out.dtype == np.int64 and out.shape == (23, 31)
    assert _sha(out) == ('62bf1c51f272833a6761d5a02ad3bfab'
                         '138d63f17cd5287afb0e134e6a1b22a9')


def test_crf_from_probs_pinned():
    img, _, probs = _inputs()
    out = crf_from_probs(img, probs)
    assert out.dtype == np.float32 and out.shape == (4, 23, 31)
    assert _sha(out.argmax(0).astype(np.int64)) == (
        'db01e8d641b430716ac80b87fae3bee9518b28fa6323a70a8601ab9a6279ce57')
    np.testing.assert_allclose(
        out[:, 5, 7], [0.00185126, 0.0014415, 0.9946115, 0.00209574],
        rtol=1e-5)
