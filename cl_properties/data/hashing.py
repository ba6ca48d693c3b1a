"""Seeded, platform-independent hashes for per-image fixed properties.

Per-image properties of the controlled datasets (the RandBit code, the pasted digit) must be
the same in both views, in every epoch and at evaluation, and the same whether a dataset is
built with numpy or inside `tf.data.Dataset.map` (graph mode). Both needs are met by
`tf.fingerprint` (FarmHash Fingerprint64), which is stateless, runs in graph mode and writes
its 8 output bytes in little-endian order on every platform. Everything fed to it here is
first turned into explicit little-endian bytes, so results do not depend on the host.
"""

from __future__ import annotations

import tensorflow as tf


def seed_bytes(seed: int) -> tf.Tensor:
    """The 8 little-endian bytes of `seed mod 2**64`, as a uint8 [8] tensor."""
    if not isinstance(seed, int):
        raise ValueError(f"seed must be a Python int, got {type(seed).__name__}")
    return tf.constant(list((seed % (1 << 64)).to_bytes(8, "little")), dtype=tf.uint8)


def int64_bytes(values: tf.Tensor) -> tf.Tensor:
    """Little-endian bytes of int64 values: [...] -> uint8 [..., 8], byte j = (v >> 8j) & 255."""
    values = tf.cast(values, tf.int64)
    shifts = tf.range(0, 64, 8, dtype=tf.int64)
    return tf.cast(
        tf.bitwise.bitwise_and(tf.bitwise.right_shift(values[..., None], shifts), 255), tf.uint8
    )


def fingerprint_rows(rows: tf.Tensor, seed: int) -> tf.Tensor:
    """Fingerprint64 of each row of uint8 `rows` [N, L] followed by the seed's 8 bytes.

    Returns uint8 [N, 8]: the 64-bit fingerprint, little-endian.
    """
    rows = tf.convert_to_tensor(rows)
    if rows.dtype != tf.uint8:
        raise ValueError(f"rows must be uint8, got {rows.dtype.name}")
    n = tf.shape(rows)[0]
    salt = tf.tile(seed_bytes(seed)[None, :], [n, 1])
    return tf.fingerprint(tf.concat([rows, salt], axis=1))


def fingerprint_bits(fingerprints: tf.Tensor, num_bits: int) -> tf.Tensor:
    """The first `num_bits` bits (0/1, int32) of uint8 [..., 8] fingerprints, LSB of byte 0 first.

    Bit j = (byte[j // 8] >> (j % 8)) & 1, for 0 <= j < num_bits <= 64.
    """
    if not 0 <= num_bits <= 64:
        raise ValueError(f"num_bits must be in 0..64, got {num_bits}")
    j = tf.range(num_bits, dtype=tf.int32)
    byte = tf.gather(tf.cast(fingerprints, tf.int32), j // 8, axis=-1)
    return tf.bitwise.bitwise_and(tf.bitwise.right_shift(byte, j % 8), 1)


def index_hash(indices: tf.Tensor, seed: int, salt: int = 0) -> tf.Tensor:
    """A seeded hash of integer ids: int64 [...] -> int64 [...] uniform-looking in [0, 2**56).

    h = low 56 bits of Fingerprint64(le_bytes(index) || le_bytes(salt) || le_bytes(seed)).
    Different `salt` values give independent-looking hashes of the same (index, seed).
    """
    indices = tf.cast(indices, tf.int64)
    flat = tf.reshape(indices, [-1])
    salt_bytes = tf.tile(seed_bytes(salt)[None, :], [tf.shape(flat)[0], 1])
    fp = fingerprint_rows(tf.concat([int64_bytes(flat), salt_bytes], axis=1), seed)
    # Seven bytes fit a non-negative int64, so the value is exact and platform independent.
    shifts = tf.range(0, 56, 8, dtype=tf.int64)
    value = tf.reduce_sum(tf.bitwise.left_shift(tf.cast(fp[:, :7], tf.int64), shifts), axis=1)
    return tf.reshape(value, tf.shape(indices))
