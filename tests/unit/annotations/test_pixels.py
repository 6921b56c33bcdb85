"""annotations/pixels.py and GET /api/v1/imagettes/<id>/pixels/: the stored values at the preview's size, as
little-endian float16 with their size and units in headers, cached for good; 404 (never a 500) for a missing or
damaged file; the label capability, as for the preview."""

from __future__ import annotations

import io

import numpy as np
import pytest
from django.conf import settings
from PIL import Image

from annotations.pixels import PixelsUnavailable, display_pixels
from annotations.readers import preview_png


def _decode(payload: bytes, width: int, height: int) -> np.ndarray:
    return np.frombuffer(payload, dtype="<f2").reshape(height, width).astype(np.float32)


def test_large_array_comes_at_the_preview_size_with_its_values(tmp_path):
    # Left half -25 dB, right half -5 dB, a nodata band at the top: 1500 x 1100, larger than the preview.
    array = np.full((1100, 1500), -25.0, dtype=np.float32)
    array[:, 750:] = -5.0
    array[:100] = np.nan
    path = tmp_path / "x.npy"
    np.save(path, array.astype(np.float16))

    pixels = display_pixels(path=path, is_db=True)

    with Image.open(io.BytesIO(preview_png(array, size=512))) as preview:
        assert (pixels.width, pixels.height) == preview.size == (512, 375)
    values = _decode(pixels.payload, pixels.width, pixels.height)
    assert np.isnan(values[:20]).all()  # no data stays no data
    assert values[200, 50] == pytest.approx(-25.0) and values[200, 450] == pytest.approx(-5.0)
    assert pixels.is_db


def test_small_array_is_sent_as_stored(tmp_path):
    array = np.random.default_rng(0).normal(-18, 4, (40, 64)).astype(np.float16)
    path = tmp_path / "small.npy"
    np.save(path, array)
    pixels = display_pixels(path=path, is_db=False)
    assert (pixels.width, pixels.height) == (64, 40) and not pixels.is_db
    assert np.array_equal(_decode(pixels.payload, 64, 40), array.astype(np.float32))


@pytest.mark.parametrize("content", [b"", b"not a numpy file", "object"])
def test_damaged_files_are_refused(tmp_path, content):
    path = tmp_path / "bad.npy"
    if content == "object":
        np.save(path, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    else:
        path.write_bytes(content)
    with pytest.raises(PixelsUnavailable):
        display_pixels(path=path, is_db=True)
    np.save(path, np.zeros(10, dtype=np.float16))  # 1-D
    with pytest.raises(PixelsUnavailable):
        display_pixels(path=path, is_db=True)


@pytest.mark.django_db
def test_pixels_endpoint(client_as, api_client, ingested, annotator):
    client = client_as(annotator)
    db_item = next(i for i in ingested if i.is_db)
    png_item = next(i for i in ingested if not i.is_db)

    response = client.get(f"/api/v1/imagettes/{db_item.pk}/pixels/")
    assert response.status_code == 200 and response["Content-Type"] == "application/octet-stream"
    assert response["Cache-Control"] == "private, max-age=31536000, immutable"
    width, height = int(response["X-Pixels-Width"]), int(response["X-Pixels-Height"])
    assert (width, height) == (db_item.width, db_item.height)  # 64 px: sent whole
    assert response["X-Pixels-Units"] == "dB" and response["X-Pixels-Dtype"] == "float16-le"
    stored = np.load(settings.MEDIA_ROOT / db_item.data)
    assert np.array_equal(_decode(response.content, width, height), stored.astype(np.float32), equal_nan=True)

    brightness = client.get(f"/api/v1/imagettes/{png_item.pk}/pixels/")
    assert brightness.status_code == 200 and brightness["X-Pixels-Units"] == "brightness"

    assert client.get("/api/v1/imagettes/999999/pixels/").status_code == 404
    (settings.MEDIA_ROOT / db_item.data).write_bytes(b"garbage")
    assert client.get(f"/api/v1/imagettes/{db_item.pk}/pixels/").status_code == 404
    (settings.MEDIA_ROOT / db_item.data).unlink()
    assert client.get(f"/api/v1/imagettes/{db_item.pk}/pixels/").status_code == 404
    type(db_item).objects.filter(pk=png_item.pk).update(data="../../etc/passwd")
    assert client.get(f"/api/v1/imagettes/{png_item.pk}/pixels/").status_code == 404

    api_client.force_authenticate(user=None)
    assert api_client.get(f"/api/v1/imagettes/{png_item.pk}/pixels/").status_code in (401, 403)
