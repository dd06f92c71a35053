"""Per-class foreground false activation against a hand-written formula."""
import numpy as np
import pytest

from qaclims_mm.evaluation import (confusion_to_scores,
                                   fg_false_activation_per_class)


def test_per_class_share_of_predicted_pixels_on_gt_background():
    # rows = GT (bg, boat, cow), columns = prediction
    conf = np.array([[50, 30, 10],
                     [5, 20, 0],
                     [0, 0, 0]])
    # boat: 30 of its 30 + 20 + 0 predicted pixels are GT background;
    # cow: 10 of 10; a class never predicted would be nan
    np.testing.assert_allclose(fg_false_activation_per_class(conf),
                               [30 / 50, 10 / 10])
    conf[:, 2] = 0
    values = fg_false_activation_per_class(conf)
    assert values[0] == pytest.approx(0.6) and np.isnan(values[1])
    # weighted by the predicted pixels, the classes give the overall rate
    assert confusion_to_scores(conf)['fg_false_activation'] == \
        pytest.approx(30 / 50)


def test_leading_axes_and_bad_shape():
    conf = np.stack([np.eye(3, dtype=np.int64), np.ones((3, 3), np.int64)])
    np.testing.assert_allclose(fg_false_activation_per_class(conf),
                               [[0, 0], [1 / 3, 1 / 3]])
    with pytest.raises(ValueError, match='N, N'):
        fg_false_activation_per_class(np.zeros((2, 3)))
