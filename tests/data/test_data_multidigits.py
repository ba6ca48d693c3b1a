import numpy as np
import pytest

from cl_properties.data.digits import DigitArrays
from cl_properties.data.multidigits import SIDES_JITTER, make_multidigits, make_two_digits


def _squares(label=7, size=8):
    """A digit source of one solid square: masks must equal the pasted boxes exactly."""
    return DigitArrays(np.ones((1, size, size, 1), np.float32), np.array([label], np.int32))


def _check_masks(data, threshold=0.3):
    names = list(data.labels)
    n, canvas = data.images.shape[:2]
    for i in range(n):
        inside = np.zeros((canvas, canvas), bool)
        for j, name in enumerate(names):
            top, left, h, w = data.boxes[i, j]
            assert 0 <= top and top + h <= canvas and 0 <= left and left + w <= canvas
            box = (slice(top, top + h), slice(left, left + w))
            assert not inside[box].any()  # squares are disjoint
            inside[box] = True
            foreground = data.images[i][box][..., 0] > threshold
            np.testing.assert_array_equal(data.instance_masks[i][box] == j + 1, foreground)
            classes = np.unique(data.semantic_masks[i][box][foreground])
            np.testing.assert_array_equal(classes, [data.labels[name][i] + 1])
        assert not data.images[i][~inside].any() and not data.instance_masks[i][~inside].any()
        np.testing.assert_array_equal(data.semantic_masks[i] > 0, data.instance_masks[i] > 0)


def test_grid_positions_masks_and_labels():
    data = make_multidigits(6, canvas=56, num_digits=4, digit_size=20, seed=0)
    assert data.images.shape == (6, 56, 56, 1) and data.images.dtype == np.float32
    assert list(data.labels) == ["digit0", "digit1", "digit2", "digit3"]
    assert data.instance_masks.dtype == np.int32 and data.semantic_masks.dtype == np.int32
    # 2x2 cells of 28 px, digits centred: offsets 4 and 32, in reading order.
    expected = [[4, 4, 20, 20], [4, 32, 20, 20], [32, 4, 20, 20], [32, 32, 20, 20]]
    np.testing.assert_array_equal(data.boxes, np.broadcast_to(expected, (6, 4, 4)))
    _check_masks(data)
    assert all(len(np.unique(data.instance_masks[i])) == 5 for i in range(6))


def test_grid_with_free_cells_and_exact_square_masks():
    data = make_multidigits(10, canvas=60, num_digits=3, digit_size=8, seed=1, digits=_squares())
    cells = {tuple(b[:2]) for boxes in data.boxes for b in boxes}
    # Cells of 30 px, 8 px digits centred at offsets 11 and 41.
    assert cells == {(11, 11), (11, 41), (41, 11), (41, 41)}
    for i in range(10):
        for j in range(3):
            top, left, h, w = data.boxes[i, j]
            expected = np.zeros((60, 60), bool)
            expected[top : top + h, left : left + w] = True
            np.testing.assert_array_equal(data.instance_masks[i] == j + 1, expected)
        assert set(np.unique(data.semantic_masks[i])) == {0, 8}


def test_random_layout_is_disjoint_ordered_and_seeded():
    data = make_multidigits(8, canvas=56, num_digits=3, digit_size=16, layout="random", seed=2)
    _check_masks(data)
    for boxes in data.boxes:  # reading order: by top, then left
        keys = [tuple(b[:2]) for b in boxes]
        assert keys == sorted(keys)
    again = make_multidigits(8, canvas=56, num_digits=3, digit_size=16, layout="random", seed=2)
    np.testing.assert_array_equal(data.images, again.images)
    np.testing.assert_array_equal(data.instance_masks, again.instance_masks)
    other = make_multidigits(8, canvas=56, num_digits=3, digit_size=16, layout="random", seed=3)
    assert not np.array_equal(data.boxes, other.boxes)


def test_digits_that_do_not_fit_raise():
    with pytest.raises(ValueError, match="do not fit"):
        make_multidigits(2, canvas=56, num_digits=4, digit_size=30)
    with pytest.raises(ValueError, match="do not fit"):
        make_multidigits(2, canvas=56, num_digits=5, digit_size=20, layout="random")
    with pytest.raises(ValueError, match="does not fit"):
        make_multidigits(2, canvas=56, num_digits=1, digit_size=60, layout="random")
    with pytest.raises(ValueError, match="layout"):
        make_multidigits(2, layout="spiral")
    with pytest.raises(ValueError, match="do not fit side by side"):
        make_two_digits(2, canvas=90, fixed_size=20, variable_size=(20, 80))
    with pytest.raises(ValueError, match="variable_size"):
        make_two_digits(2, variable_size=(50, 40))
    with pytest.raises(ValueError, match="layout"):
        make_two_digits(2, layout="grid")
    # "sides" keeps the jitter and a gap free: 12 + 5 + 24 > 40.
    with pytest.raises(ValueError, match="with the sides layout"):
        make_two_digits(2, canvas=40, fixed_size=12, variable_size=24, layout="sides")


def test_two_digits_sizes_labels_and_masks():
    data = make_two_digits(30, canvas=112, fixed_size=20, variable_size=(20, 80), seed=0)
    assert list(data.labels) == ["fixed", "variable"]
    assert np.all(data.boxes[:, 0, 2:] == 20)
    variable = data.boxes[:, 1, 2]
    assert np.all((variable >= 20) & (variable <= 80)) and np.all(data.boxes[:, 1, 3] == variable)
    assert variable.max() - variable.min() > 30  # sizes really vary
    _check_masks(data)
    squares = make_two_digits(
        5, canvas=64, fixed_size=10, variable_size=40, seed=1, digits=_squares(3)
    )
    assert np.all(squares.boxes[:, 1, 2] == 40)
    np.testing.assert_array_equal((squares.instance_masks == 1).sum(axis=(1, 2)), [100] * 5)
    np.testing.assert_array_equal((squares.instance_masks == 2).sum(axis=(1, 2)), [1600] * 5)


def test_two_digits_sides_layout_fixes_the_fixed_digit_and_moves_the_other():
    data = make_two_digits(
        200, canvas=40, fixed_size=12, variable_size=(6, 23), seed=0, layout="sides"
    )
    fixed, variable = data.boxes[:, 0], data.boxes[:, 1]
    jitter = SIDES_JITTER
    assert fixed[:, 0].min() == 14 - jitter and fixed[:, 0].max() == 14 + jitter  # centred
    assert fixed[:, 1].min() == 0 and fixed[:, 1].max() == jitter  # at the left edge
    assert np.all(variable[:, 1] >= 12 + jitter + 1)  # right of it, never overlapping
    assert np.all(variable[:, :2] + variable[:, 2:] <= 40)  # inside the canvas
    assert len(np.unique(variable[:, 0])) > 10 and len(np.unique(variable[:, 1])) > 5
    _check_masks(data)
    again = make_two_digits(
        200, canvas=40, fixed_size=12, variable_size=(6, 23), seed=0, layout="sides"
    )
    np.testing.assert_array_equal(data.images, again.images)
