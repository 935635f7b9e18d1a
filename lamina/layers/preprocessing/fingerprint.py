"""The string hashes behind Keras's ``Hashing``, ``HashedCrossing`` and lookup OOV buckets.

Keras hashes through TensorFlow ops: ``tf.strings.to_hash_bucket_fast`` (FarmHash's 64-bit
``Fingerprint64`` of the UTF-8 bytes, modulo the bucket count), ``to_hash_bucket_strong``
(SipHash-2-4 keyed by the two salt integers) and ``tf.sparse.cross_hashed`` (the features'
fingerprints chained with ``FingerprintCat64`` from a fixed key). These are written here in
plain Python integer arithmetic, so lamina gives Keras's bucket numbers without TensorFlow.
Each distinct string is hashed once per call (``buckets`` hashes ``np.unique`` values), and
many strings at once with NumPy uint64 arithmetic (``fingerprints``, ``siphashes``).

Example:
    >>> from lamina.layers.preprocessing.fingerprint import fingerprint64, siphash24
    >>> fingerprint64(b"") == 0x9AE16A3B2F90404F           # FarmHash's k2 for empty input
    True
    >>> siphash24(0, 0, b"") == 0x1E924B9D737700D7          # the SipHash-2-4 reference value
    True
"""

from __future__ import annotations

import numpy as np

_MASK = (1 << 64) - 1
_K0 = 0xC3A5C85C97CB3127
_K1 = 0xB492B66FBE98F273
_K2 = 0x9AE16A3B2F90404F
_CAT_MUL = 0xC6A4A7935BD1E995
CROSS_HASH_KEY = 0xDECAFCAFFE  # tf.sparse.cross_hashed's default hash_key


def _fetch64(data, i):
    return int.from_bytes(data[i:i + 8], "little")


def _fetch32(data, i):
    return int.from_bytes(data[i:i + 4], "little")


def _rotate(value, shift):
    return ((value >> shift) | (value << (64 - shift))) & _MASK


def _shift_mix(value):
    return value ^ (value >> 47)


def _hash16(u, v, mul):
    a = ((u ^ v) * mul) & _MASK
    a ^= a >> 47
    b = ((v ^ a) * mul) & _MASK
    b ^= b >> 47
    return (b * mul) & _MASK


def _hash_0_to_16(data, n):
    if n >= 8:
        mul = _K2 + n * 2
        a = (_fetch64(data, 0) + _K2) & _MASK
        b = _fetch64(data, n - 8)
        c = (_rotate(b, 37) * mul + a) & _MASK
        d = ((_rotate(a, 25) + b) * mul) & _MASK
        return _hash16(c, d, mul)
    if n >= 4:
        mul = _K2 + n * 2
        return _hash16((n + (_fetch32(data, 0) << 3)) & _MASK, _fetch32(data, n - 4), mul)
    if n > 0:
        y = data[0] + (data[n >> 1] << 8)
        z = n + (data[n - 1] << 2)
        return (_shift_mix(((y * _K2) ^ (z * _K0)) & _MASK) * _K2) & _MASK
    return _K2


def _hash_17_to_32(data, n):
    mul = _K2 + n * 2
    a = (_fetch64(data, 0) * _K1) & _MASK
    b = _fetch64(data, 8)
    c = (_fetch64(data, n - 8) * mul) & _MASK
    d = (_fetch64(data, n - 16) * _K2) & _MASK
    return _hash16((_rotate((a + b) & _MASK, 43) + _rotate(c, 30) + d) & _MASK,
                   (a + _rotate((b + _K2) & _MASK, 18) + c) & _MASK, mul)


def _hash_33_to_64(data, n):
    mul = _K2 + n * 2
    a = (_fetch64(data, 0) * _K2) & _MASK
    b = _fetch64(data, 8)
    c = (_fetch64(data, n - 8) * mul) & _MASK
    d = (_fetch64(data, n - 16) * _K2) & _MASK
    y = (_rotate((a + b) & _MASK, 43) + _rotate(c, 30) + d) & _MASK
    z = _hash16(y, (a + _rotate((b + _K2) & _MASK, 18) + c) & _MASK, mul)
    e = (_fetch64(data, 16) * mul) & _MASK
    f = _fetch64(data, 24)
    g = ((y + _fetch64(data, n - 32)) * mul) & _MASK
    h = ((z + _fetch64(data, n - 24)) * mul) & _MASK
    return _hash16((_rotate((e + f) & _MASK, 43) + _rotate(g, 30) + h) & _MASK,
                   (e + _rotate((f + a) & _MASK, 18) + g) & _MASK, mul)


def _weak32(data, i, a, b):
    w, x, y, z = (_fetch64(data, i + k) for k in (0, 8, 16, 24))
    a = (a + w) & _MASK
    b = _rotate((b + a + z) & _MASK, 21)
    c = a
    a = (a + x + y) & _MASK
    b = (b + _rotate(a, 44)) & _MASK
    return (a + z) & _MASK, (b + c) & _MASK


def fingerprint64(data: bytes) -> int:
    """FarmHash ``Fingerprint64`` (farmhashna's ``Hash64``) of ``data``, as TensorFlow computes it."""
    n = len(data)
    if n <= 16:
        return _hash_0_to_16(data, n)
    if n <= 32:
        return _hash_17_to_32(data, n)
    if n <= 64:
        return _hash_33_to_64(data, n)
    seed = 81
    x = seed
    y = (seed * _K1 + 113) & _MASK
    z = (_shift_mix((y * _K2 + 113) & _MASK) * _K2) & _MASK
    v = (0, 0)
    w = (0, 0)
    x = (x * _K2 + _fetch64(data, 0)) & _MASK
    end = ((n - 1) // 64) * 64
    last64 = end + ((n - 1) & 63) - 63
    s = 0
    while True:
        x = (_rotate((x + y + v[0] + _fetch64(data, s + 8)) & _MASK, 37) * _K1) & _MASK
        y = (_rotate((y + v[1] + _fetch64(data, s + 48)) & _MASK, 42) * _K1) & _MASK
        x ^= w[1]
        y = (y + v[0] + _fetch64(data, s + 40)) & _MASK
        z = (_rotate((z + w[0]) & _MASK, 33) * _K1) & _MASK
        v = _weak32(data, s, (v[1] * _K1) & _MASK, (x + w[0]) & _MASK)
        w = _weak32(data, s + 32, (z + w[1]) & _MASK, (y + _fetch64(data, s + 16)) & _MASK)
        z, x = x, z
        s += 64
        if s == end:
            break
    mul = _K1 + ((z & 0xFF) << 1)
    s = last64
    w = ((w[0] + ((n - 1) & 63)) & _MASK, w[1])
    v = ((v[0] + w[0]) & _MASK, v[1])
    w = ((w[0] + v[0]) & _MASK, w[1])
    x = (_rotate((x + y + v[0] + _fetch64(data, s + 8)) & _MASK, 37) * mul) & _MASK
    y = (_rotate((y + v[1] + _fetch64(data, s + 48)) & _MASK, 42) * mul) & _MASK
    x ^= (w[1] * 9) & _MASK
    y = (y + v[0] * 9 + _fetch64(data, s + 40)) & _MASK
    z = (_rotate((z + w[0]) & _MASK, 33) * mul) & _MASK
    v = _weak32(data, s, (v[1] * mul) & _MASK, (x + w[0]) & _MASK)
    w = _weak32(data, s + 32, (z + w[1]) & _MASK, (y + _fetch64(data, s + 16)) & _MASK)
    z, x = x, z
    return _hash16((_hash16(v[0], w[0], mul) + _shift_mix(y) * _K0 + z) & _MASK,
                   (_hash16(v[1], w[1], mul) + x) & _MASK, mul)


def fingerprint_cat64(fp1: int, fp2: int) -> int:
    """TensorFlow's ``FingerprintCat64``: two fingerprints combined (order matters)."""
    result = fp1 ^ _CAT_MUL
    result ^= (_shift_mix((fp2 * _CAT_MUL) & _MASK) * _CAT_MUL) & _MASK
    result = (result * _CAT_MUL) & _MASK
    result = (_shift_mix(result) * _CAT_MUL) & _MASK
    return _shift_mix(result)


def _sip_round(v0, v1, v2, v3):
    v0 = (v0 + v1) & _MASK
    v1 = _rotate(v1, 64 - 13) ^ v0
    v0 = _rotate(v0, 64 - 32)
    v2 = (v2 + v3) & _MASK
    v3 = _rotate(v3, 64 - 16) ^ v2
    v0 = (v0 + v3) & _MASK
    v3 = _rotate(v3, 64 - 21) ^ v0
    v2 = (v2 + v1) & _MASK
    v1 = _rotate(v1, 64 - 17) ^ v2
    v2 = _rotate(v2, 64 - 32)
    return v0, v1, v2, v3


def siphash24(key0: int, key1: int, data: bytes) -> int:
    """SipHash-2-4 of ``data`` under the 128-bit key ``(key0, key1)`` (TensorFlow's
    ``StrongKeyedHash``, behind ``to_hash_bucket_strong``)."""
    key0 &= _MASK
    key1 &= _MASK
    v0 = key0 ^ 0x736F6D6570736575
    v1 = key1 ^ 0x646F72616E646F6D
    v2 = key0 ^ 0x6C7967656E657261
    v3 = key1 ^ 0x7465646279746573
    n = len(data)
    full = n - n % 8
    for i in range(0, full, 8):
        m = _fetch64(data, i)
        v3 ^= m
        v0, v1, v2, v3 = _sip_round(*_sip_round(v0, v1, v2, v3))
        v0 ^= m
    last = ((n & 0xFF) << 56) | int.from_bytes(data[full:], "little")
    v3 ^= last
    v0, v1, v2, v3 = _sip_round(*_sip_round(v0, v1, v2, v3))
    v0 ^= last
    v2 ^= 0xFF
    for _ in range(4):
        v0, v1, v2, v3 = _sip_round(v0, v1, v2, v3)
    return v0 ^ v1 ^ v2 ^ v3


# -- the same functions over many strings at once (NumPy uint64 arithmetic wraps mod 2**64) ----

_U = np.uint64


def _byte_matrix(datas: list, width: int) -> np.ndarray:
    """The byte strings as rows of a zero-padded ``(len(datas), width)`` uint8 matrix."""
    lengths = np.fromiter((len(d) for d in datas), dtype=np.int64, count=len(datas))
    matrix = np.zeros((len(datas), width), np.uint8)
    if lengths.sum():
        rows = np.repeat(np.arange(len(datas)), lengths)
        starts = np.repeat(np.cumsum(lengths) - lengths, lengths)
        matrix[rows, np.arange(lengths.sum()) - starts] = np.frombuffer(b"".join(datas), np.uint8)
    return matrix


def _fetch(matrix, offset, size=8):
    """Little-endian ``size``-byte words of each row at its own ``offset``."""
    picked = np.take_along_axis(matrix, offset[:, None] + np.arange(size), axis=1).astype(_U)
    return np.bitwise_or.reduce(picked << (_U(8) * np.arange(size, dtype=_U)), axis=1)


def _v_rotate(value, shift):
    return (value >> _U(shift)) | (value << _U(64 - shift))


def _v_shift_mix(value):
    return value ^ (value >> _U(47))


def _v_hash16(u, v, mul):
    a = (u ^ v) * mul
    a ^= a >> _U(47)
    b = (v ^ a) * mul
    b ^= b >> _U(47)
    return b * mul


def _v_upto64(m, n):
    """farmhashna's Hash64 for rows of 0 to 64 bytes (``m``: the byte matrix, ``n``: lengths)."""
    k0, k1, k2 = _U(_K0), _U(_K1), _U(_K2)
    out = np.full(n.shape, k2, _U)
    mul = k2 + n.astype(_U) * _U(2)
    zero = np.zeros_like(n)
    pick = (n > 0) & (n < 4)
    if pick.any():
        r, ln = m[pick], n[pick]
        y = r[:, 0].astype(_U) + (np.take_along_axis(r, (ln >> 1)[:, None], 1)[:, 0].astype(_U) << _U(8))
        z = ln.astype(_U) + (np.take_along_axis(r, (ln - 1)[:, None], 1)[:, 0].astype(_U) << _U(2))
        out[pick] = _v_shift_mix((y * k2) ^ (z * k0)) * k2
    pick = (n >= 4) & (n < 8)
    if pick.any():
        r, ln, mu = m[pick], n[pick], mul[pick]
        out[pick] = _v_hash16(ln.astype(_U) + (_fetch(r, zero[pick], 4) << _U(3)), _fetch(r, ln - 4, 4), mu)
    pick = (n >= 8) & (n <= 16)
    if pick.any():
        r, ln, mu = m[pick], n[pick], mul[pick]
        a = _fetch(r, zero[pick]) + k2
        b = _fetch(r, ln - 8)
        out[pick] = _v_hash16(_v_rotate(b, 37) * mu + a, (_v_rotate(a, 25) + b) * mu, mu)
    pick = (n > 16) & (n <= 64)
    if pick.any():
        r, ln, mu = m[pick], n[pick], mul[pick]
        first = zero[pick]
        a = _fetch(r, first) * k1
        b = _fetch(r, first + 8)
        c = _fetch(r, ln - 8) * mu
        d = _fetch(r, ln - 16) * k2
        short = _v_hash16(_v_rotate(a + b, 43) + _v_rotate(c, 30) + d, a + _v_rotate(b + k2, 18) + c, mu)
        a = _fetch(r, first) * k2  # the 33-64 branch scales the first word by k2, not k1
        y = _v_rotate(a + b, 43) + _v_rotate(c, 30) + d
        z = _v_hash16(y, a + _v_rotate(b + k2, 18) + c, mu)
        e = _fetch(r, first + 16) * mu
        f = _fetch(r, first + 24)
        g = (y + _fetch(r, np.maximum(ln - 32, 0))) * mu
        h = (z + _fetch(r, np.maximum(ln - 24, 0))) * mu
        long = _v_hash16(_v_rotate(e + f, 43) + _v_rotate(g, 30) + h, e + _v_rotate(f + a, 18) + g, mu)
        out[pick] = np.where(ln <= 32, short, long)
    return out


def fingerprints(datas: list) -> np.ndarray:
    """``fingerprint64`` of each byte string (uint64), vectorized up to 64 bytes."""
    n = np.fromiter((len(d) for d in datas), dtype=np.int64, count=len(datas))
    out = np.zeros(n.shape, _U)
    short = np.flatnonzero(n <= 64)
    with np.errstate(over="ignore"):
        if short.size:
            out[short] = _v_upto64(_byte_matrix([datas[i] for i in short], 72), n[short])
    for i in np.flatnonzero(n > 64).tolist():
        out[i] = fingerprint64(datas[i])
    return out


def _v_sip_round(v0, v1, v2, v3):
    v0 = v0 + v1
    v1 = _v_rotate(v1, 64 - 13) ^ v0
    v0 = _v_rotate(v0, 64 - 32)
    v2 = v2 + v3
    v3 = _v_rotate(v3, 64 - 16) ^ v2
    v0 = v0 + v3
    v3 = _v_rotate(v3, 64 - 21) ^ v0
    v2 = v2 + v1
    v1 = _v_rotate(v1, 64 - 17) ^ v2
    v2 = _v_rotate(v2, 64 - 32)
    return v0, v1, v2, v3


def siphashes(key0: int, key1: int, datas: list) -> np.ndarray:
    """``siphash24(key0, key1, d)`` of each byte string (uint64), all strings at once: row by
    row of 8-byte words, each string's state frozen after its last (length-tagged) word."""
    n = np.fromiter((len(d) for d in datas), dtype=np.int64, count=len(datas))
    last = n // 8  # the index of each string's final word
    words = _byte_matrix(datas, 8 * (int(last.max(initial=0)) + 1)).view("<u8").astype(_U)
    words[np.arange(len(datas)), last] |= (n.astype(_U) & _U(0xFF)) << _U(56)
    key0, key1 = _U(key0 & _MASK), _U(key1 & _MASK)
    state = [np.full(n.shape, key0 ^ _U(0x736F6D6570736575), _U), np.full(n.shape, key1 ^ _U(0x646F72616E646F6D), _U),
             np.full(n.shape, key0 ^ _U(0x6C7967656E657261), _U), np.full(n.shape, key1 ^ _U(0x7465646279746573), _U)]
    with np.errstate(over="ignore"):
        for j in range(words.shape[1]):
            m = words[:, j]
            v0, v1, v2, v3 = state
            v0, v1, v2, v3 = _v_sip_round(*_v_sip_round(v0, v1, v2, v3 ^ m))
            active = j <= last
            state = [np.where(active, new, old) for new, old in zip((v0 ^ m, v1, v2, v3), state)]
        v0, v1, v2, v3 = state
        v2 = v2 ^ _U(0xFF)
        for _ in range(4):
            v0, v1, v2, v3 = _v_sip_round(v0, v1, v2, v3)
    return v0 ^ v1 ^ v2 ^ v3


def fingerprint_cats(fp1: np.ndarray, fp2: np.ndarray) -> np.ndarray:
    """``fingerprint_cat64`` of each pair (uint64 arrays)."""
    mul = _U(_CAT_MUL)
    with np.errstate(over="ignore"):
        result = fp1 ^ mul
        result ^= _v_shift_mix(fp2 * mul) * mul
        result = result * mul
        result = _v_shift_mix(result) * mul
        return _v_shift_mix(result)


def salt_pair(owner: str, salt) -> list:
    """A ``salt`` argument as Keras keeps it: a list of two integers (one integer is doubled)."""
    if isinstance(salt, (tuple, list)) and len(salt) == 2:
        return [int(s) for s in salt]
    if isinstance(salt, (int, np.integer)):
        return [int(salt), int(salt)]
    raise ValueError(f"{owner}: `salt` must be an integer or a pair of integers; got {salt!r}.")


def as_hash_strings(values) -> np.ndarray:
    """``values`` as TensorFlow's ``as_string`` writes them before hashing: integers (and
    floats, truncated to integers as Keras's ``Hashing`` casts them) in decimal, strings as
    given, bytes decoded as UTF-8."""
    array = np.asarray(values)
    if array.dtype.kind == "f":
        array = array.astype(np.int64)
    if array.dtype.kind in "iub":
        return array.astype(np.int64).astype(str)
    if array.dtype.kind == "S":
        return np.char.decode(array, "utf-8")
    if array.dtype.kind == "O":
        return np.vectorize(lambda v: v.decode("utf-8") if isinstance(v, bytes) else str(v), otypes=[str])(array) \
            if array.size else array.astype(str)
    return array


def buckets(values, num_buckets: int, salt=None) -> np.ndarray:
    """Each value's bucket in ``[0, num_buckets)``: ``Fingerprint64 % num_buckets`` or, with
    ``salt = [key0, key1]``, ``SipHash-2-4 % num_buckets`` (int64, the input's shape)."""
    strings = as_hash_strings(values)
    unique, inverse = np.unique(strings, return_inverse=True)
    datas = [s.encode("utf-8") for s in unique.tolist()]
    hashed = fingerprints(datas) if salt is None else siphashes(salt[0], salt[1], datas)
    hashed = (hashed % _U(num_buckets)).astype(np.int64)
    return hashed[np.reshape(inverse, -1)].reshape(strings.shape)


__all__ = ["CROSS_HASH_KEY", "as_hash_strings", "buckets", "fingerprint64", "fingerprint_cat64", "fingerprint_cats",
           "fingerprints", "salt_pair", "siphash24", "siphashes"]
