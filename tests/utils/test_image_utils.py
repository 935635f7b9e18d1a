"""``lm.utils.array_to_img`` / ``img_to_array`` / ``load_img`` / ``save_img`` against Keras 3 on
the same arrays and files, and the host-side resize against ``tf.image.resize``."""

import io
import os

import numpy as np
import pytest

import lamina as lm
from lamina.utils.image_resampling import INTERPOLATIONS, resize_image, resize_with_pad

keras = pytest.importorskip("keras")
PIL = pytest.importorskip("PIL.Image")

RNG = np.random.default_rng(3)


@pytest.mark.parametrize("shape, kwargs", [
    ((4, 5, 3), dict()),
    ((4, 5, 4), dict(scale=False)),
    ((4, 5, 1), dict()),
    ((1, 4, 5), dict(data_format="channels_first")),
])
def test_array_to_img_and_back_equal_keras(shape, kwargs):
    x = RNG.uniform(0, 255, shape)
    ours, theirs = lm.utils.array_to_img(x, **kwargs), keras.utils.array_to_img(x, **kwargs)
    assert ours.mode == theirs.mode and ours.size == theirs.size
    np.testing.assert_array_equal(np.asarray(ours), np.asarray(theirs))
    fmt = kwargs.get("data_format")
    back = lm.utils.img_to_array(ours, data_format=fmt)
    np.testing.assert_array_equal(back, keras.utils.img_to_array(theirs, data_format=fmt))
    assert back.dtype == np.float32 and back.shape == shape


def test_one_channel_above_255_is_a_32_bit_image():
    x = np.arange(12, dtype="float32").reshape(3, 4, 1) * 100
    img = lm.utils.array_to_img(x, scale=False)
    assert img.mode == keras.utils.array_to_img(x, scale=False).mode == "I"
    np.testing.assert_array_equal(lm.utils.img_to_array(img), x)


def test_save_and_load_equal_keras(tmp_path):
    x = RNG.uniform(0, 255, (6, 8, 3))
    path = str(tmp_path / "a.png")
    lm.utils.save_img(path, x)
    keras.utils.save_img(str(tmp_path / "b.png"), x)
    assert [f for f in os.listdir(tmp_path) if f.endswith(".tmp")] == []  # written atomically
    for kwargs in (dict(), dict(color_mode="grayscale"), dict(color_mode="rgba"),
                   dict(target_size=(3, 5), interpolation="bilinear"),
                   dict(target_size=(4, 4), keep_aspect_ratio=True, interpolation="bicubic")):
        ours = lm.utils.load_img(path, **kwargs)
        theirs = keras.utils.load_img(str(tmp_path / "b.png"), **kwargs)
        assert ours.mode == theirs.mode and ours.size == theirs.size
        np.testing.assert_array_equal(np.asarray(ours), np.asarray(theirs))


def test_jpeg_drops_alpha_with_a_warning_and_bad_input_is_named(tmp_path):
    with pytest.warns(UserWarning, match="JPEG format does not support RGBA"):
        lm.utils.save_img(str(tmp_path / "x.jpg"), RNG.uniform(0, 255, (4, 4, 4)))
    assert lm.utils.load_img(str(tmp_path / "x.jpg")).mode == "RGB"
    with pytest.raises(ValueError, match="rank 3"):
        lm.utils.array_to_img(np.zeros((2, 2)))
    with pytest.raises(ValueError, match="1, 3 or 4 channels"):
        lm.utils.array_to_img(np.zeros((2, 2, 2)))
    with pytest.raises(ValueError, match="color_mode"):
        lm.utils.load_img(str(tmp_path / "x.jpg"), color_mode="cmyk")
    with pytest.raises(TypeError, match="path-like or io.BytesIO"):
        lm.utils.load_img(3)
    with pytest.raises(ValueError, match="cannot tell the image format"):
        lm.utils.save_img(str(tmp_path / "noext"), np.zeros((2, 2, 3)))
    buffer = io.BytesIO()
    lm.utils.save_img(buffer, np.zeros((2, 2, 3)), file_format="png")
    assert lm.utils.load_img(io.BytesIO(buffer.getvalue())).size == (2, 2)


def test_missing_pillow_names_the_extra(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "PIL.Image", None)
    with pytest.raises(ImportError, match=r'pip install "lamina\[image\]"'):
        lm.utils.array_to_img(np.zeros((2, 2, 3)))


def test_resize_equals_tf_image_resize():
    tf = pytest.importorskip("tensorflow")
    image = RNG.uniform(0, 255, (7, 11, 2)).astype("float32")
    for size in ((3, 4), (16, 13), (7, 5)):
        for method in INTERPOLATIONS:
            expected = tf.image.resize(image, size, method=method).numpy()
            np.testing.assert_allclose(resize_image(image, size, method), expected, atol=2e-3, err_msg=method)
        expected = tf.image.resize_with_pad(image, *size, method="bicubic").numpy()
        np.testing.assert_allclose(resize_with_pad(image, size, "bicubic"), expected, atol=2e-3)
