"""Local-feature scoring pipeline: taps, raw patches, probe grid, scores and checkpoints."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from cl_properties.evaluation import cluster_maps, downsample_masks
from cl_properties.evaluation.local_features import (
    RAW_PATCHES,
    LocalFeatureConfig,
    local_feature_scores,
    match_channels,
    overlay_maps,
    raw_patch_maps,
    resize_nearest,
    score_feature_maps,
    tap_feature_maps,
)
from cl_properties.models import build_encoder, feature_taps

NUM_CLASSES = 10


def _images(n: int, size: int, channels: int = 1, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random((n, size, size, channels)).astype(np.float32)


def _digit_masks(n: int, size: int, seed: int) -> np.ndarray:
    """Masks [n, size, size]: a q x q and a q x 2q digit (q = size / 4), distinct classes."""
    rng = np.random.default_rng(seed)
    masks = np.zeros((n, size, size), np.int32)
    q = size // 4
    for mask in masks:
        first, second = rng.choice(NUM_CLASSES, size=2, replace=False) + 1
        mask[:q, :q], mask[2 * q : 3 * q, q : 3 * q] = first, second
    return masks


# Documented tap shapes (cl_properties.models.taps) for a 32 x 32 input, width 0.25.
@pytest.mark.parametrize(
    "name, cifar_stem, expected",
    [
        ("resnet18", True, [(32, 16), (16, 32), (8, 64), (4, 128)]),
        ("resnet34", False, [(8, 16), (4, 32), (2, 64), (1, 128)]),
        ("resnet50", True, [(32, 64), (16, 128), (8, 256), (4, 512)]),
        ("resnet_small", None, [(32, 4), (16, 8), (8, 16)]),  # None: CIFAR stem for 32 px
        ("convn", None, [(16, 8), (8, 16), (4, 16)]),
    ],
)
def test_tap_feature_maps_have_the_documented_shapes(name, cifar_stem, expected):
    encoder = build_encoder(
        name, input_shape=(32, 32, 3), width_multiplier=0.25, cifar_stem=cifar_stem
    )
    maps = tap_feature_maps(encoder, _images(3, 32, 3), batch_size=2)
    assert [value.shape for value in maps.values()] == [(3, s, s, c) for s, c in expected]


def test_tap_feature_maps_batches_equal_one_call_and_grey_is_repeated():
    encoder = build_encoder("resnet_small", input_shape=(16, 16, 3))
    grey = _images(5, 16)
    batched = tap_feature_maps(encoder, grey, batch_size=2)
    whole = feature_taps(encoder)(np.repeat(grey, 3, axis=-1), training=False)
    assert list(batched) == ["block_group1", "block_group2", "block_group3"]
    for name, value in batched.items():
        np.testing.assert_allclose(
            value, keras.ops.convert_to_numpy(whole[name]), rtol=1e-4, atol=1e-5
        )
    assert list(tap_feature_maps(encoder, grey, names=["block_group2"])) == ["block_group2"]


def test_match_channels():
    grey = _images(2, 4)
    np.testing.assert_array_equal(match_channels(grey, 3), np.repeat(grey, 3, axis=-1))
    np.testing.assert_array_equal(match_channels(grey, 1), grey)
    with pytest.raises(ValueError, match="channels"):
        match_channels(_images(2, 4, 2), 3)


def test_raw_patch_maps_equal_space_to_depth_on_dividing_grids():
    images = _images(2, 24, 3, seed=1)
    for cells in (1, 3, 6, 12):
        np.testing.assert_array_equal(
            raw_patch_maps(images, (cells, cells)),
            tf.nn.space_to_depth(images, 24 // cells).numpy(),
        )
    np.testing.assert_array_equal(raw_patch_maps(images, (24, 24)), images)


def test_raw_patch_maps_windows_are_centred_and_zero_padded():
    image = np.arange(1, 50, dtype=np.float32).reshape(1, 7, 7, 1) / 49
    # Two cells per axis: centres at 1.75 and 5.25; a 3-pixel window starts at floor(c - 1.5).
    patches = raw_patch_maps(image, (2, 2), window=3)
    assert patches.shape == (1, 2, 2, 9)
    np.testing.assert_array_equal(patches[0, 0, 0], image[0, 0:3, 0:3, 0].ravel())
    np.testing.assert_array_equal(patches[0, 1, 1], image[0, 3:6, 3:6, 0].ravel())
    # A window larger than the image: zeros outside it.
    whole = raw_patch_maps(image, (1, 1), window=9)[0, 0, 0].reshape(9, 9)
    np.testing.assert_array_equal(whole[1:8, 1:8], image[0, ..., 0])
    assert whole[0].sum() == whole[:, 0].sum() == 0
    # Default window on a non-dividing grid: the cell size ceil(7 / 2) = 4.
    assert raw_patch_maps(image, (2, 2)).shape == (1, 2, 2, 16)
    with pytest.raises(ValueError, match="grid"):
        raw_patch_maps(image, (8, 8))


@pytest.mark.parametrize("h, out", [(4, 14), (7, 14), (14, 14), (3, 10), (14, 4)])
def test_resize_nearest_uses_the_containing_cell_rule_of_cluster_maps(h, out):
    maps = np.random.default_rng(2).normal(size=(2, h, h, 3)).astype(np.float32)
    resized = resize_nearest(maps, (out, out))
    index = np.floor((np.arange(out) + 0.5) * h / out).astype(int)
    np.testing.assert_array_equal(resized, maps[:, index][:, :, index])
    # The rule overlays are drawn with: resizing the native cluster map = cluster_maps at `out`.
    native = cluster_maps(maps, 2, image_size=h, seed=0).numpy()
    np.testing.assert_array_equal(
        resize_nearest(native[..., None], (out, out))[..., 0],
        cluster_maps(maps, 2, image_size=out, seed=0).numpy(),
    )


def test_scores_are_perfect_on_features_encoding_the_class_map():
    masks = _digit_masks(40, 16, seed=3)
    # One-hot of the majority label of each 4 x 4 cell: the class map, exactly.
    features = np.eye(NUM_CLASSES + 1, dtype=np.float32)[
        downsample_masks(masks, (4, 4), num_labels=NUM_CLASSES + 1)
    ]
    config = LocalFeatureConfig(ari_k=3, probe_epochs=10)
    scores = score_feature_maps(
        features[:30],
        masks[:30],
        features[30:],
        masks[30:],
        num_classes=NUM_CLASSES,
        probe_grid=(8, 8),
        config=config,
    )
    assert scores["dense_probe"] >= 0.98 and scores["dense_probe_train"] >= 0.98
    assert scores["ari_all"] == pytest.approx(1.0) and scores["ari_foreground"] == pytest.approx(
        1.0
    )
    assert scores["probe_locations"] == 10 * (4 + 8)  # 2 x 2 and 2 x 4 cells of the 8 x 8 grid


def test_local_feature_scores_rows_and_determinism():
    encoder = build_encoder("convn", input_shape=(16, 16, 1))
    keras.utils.set_random_seed(1)
    other = keras.models.clone_model(encoder)
    images, masks = _images(12, 16, seed=4), _digit_masks(12, 16, seed=5)
    config = LocalFeatureConfig(ari_k=2, probe_epochs=1, kmeans_iterations=3)

    def rows(encoders, raw_patches=True):
        return local_feature_scores(
            encoders,
            images[:8],
            masks[:8],
            images[8:],
            masks[8:],
            num_classes=NUM_CLASSES,
            config=config,
            raw_patches=raw_patches,
        )

    first = rows({"a": encoder, "b": other})
    assert [(r["model"], r["tap"], r["depth"], r["grid"]) for r in first] == [
        (model, f"stage{d}", d, f"{16 // 2**d}x{16 // 2**d}")
        for model in ("a", "b", RAW_PATCHES)
        for d in (1, 2, 3)
    ]
    raw = [r for r in first if r["model"] == RAW_PATCHES]
    assert [r["channels"] for r in raw] == [4, 16, 64]  # cells of 2, 4 and 8 pixels
    for row in first:
        assert 0.0 <= row["dense_probe"] <= 1.0 and -1.0 <= row["ari_all"] <= 1.0
        # Every tap is probed on the finest (8 x 8) grid: 2 x 2 + 2 x 4 cells per image.
        assert row["probe_locations"] == 4 * (4 + 8)
    assert rows({"a": encoder}, raw_patches=False) == first[:3]  # deterministic
    with pytest.raises(ValueError, match="empty"):
        rows({})


def test_overlay_maps_cover_every_tap_and_k():
    encoder = build_encoder("convn", input_shape=(16, 16, 1))
    maps = overlay_maps(encoder, _images(2, 16), [2, 3], iterations=2)
    assert list(maps) == [(f"stage{s}", k) for s in (1, 2, 3) for k in (2, 3)]
    for (_, k), ids in maps.items():
        assert ids.shape == (2, 16, 16) and ids.min() >= 0 and ids.max() < k


def test_bad_config():
    for field in ("ari_k", "probe_epochs", "batch_size"):
        with pytest.raises(ValueError, match=field):
            LocalFeatureConfig(**{field: 0})
    with pytest.raises(ValueError, match="probe_grid"):
        LocalFeatureConfig(probe_grid=0)
    with pytest.raises(ValueError, match="kmeans_iterations"):
        LocalFeatureConfig(kmeans_iterations=-1)


def test_tf_nearest_resize_agrees_with_resize_nearest():
    maps = np.random.default_rng(6).normal(size=(1, 4, 4, 2)).astype(np.float32)
    expected = tf.image.resize(maps, (14, 14), method="nearest").numpy()
    np.testing.assert_array_equal(resize_nearest(maps, (14, 14)), expected)
