"""core.uploads.check_upload: what is accepted, what is converted, what is refused and how."""

from __future__ import annotations

import io
import struct
import zlib

import pytest
from PIL import Image

from core.errors import BadUpload
from core.uploads import check_upload

MB = 1024 * 1024


def _encode(image: Image.Image, fmt: str, **params: object) -> bytes:
    out = io.BytesIO()
    image.save(out, format=fmt, **params)
    return out.getvalue()


def _photo(mode: str = "RGB") -> Image.Image:
    image = Image.new(mode, (64, 48), "white" if mode != "P" else 0)
    for x in range(64):
        for y in range(0, 48, 4):
            image.putpixel((x, y), (x * 4, y * 5, 128) if mode == "RGB" else x % 200)
    return image


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height but whose data is a few bytes."""
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", zlib.compress(b"\0" * 16))
        + _png_chunk(b"IEND", b"")
    )


def _refusal(data: bytes, name: str, **limits: int) -> str:
    with pytest.raises(BadUpload) as caught:
        check_upload(data, max_bytes=limits.pop("max_bytes", 20 * MB), name=name, **limits)
    message = caught.value.user_message
    assert name in message, message
    assert message[0].isupper() or message.startswith(name), message
    assert message.endswith("."), message
    return message


# --- accepted as they are ------------------------------------------------------


def test_png_is_kept_byte_for_byte() -> None:
    data = _encode(_photo(), "PNG")
    image = check_upload(data, max_bytes=MB, name="photo.png")
    assert (image.data, image.content_type, image.name) == (data, "image/png", "photo.png")


def test_jpeg_is_kept_and_typed_by_content_not_name() -> None:
    data = _encode(_photo(), "JPEG", quality=80)
    image = check_upload(data, max_bytes=MB, name="holiday.png")  # the name lies
    assert image.content_type == "image/jpeg"
    assert image.data == data


def test_camera_jpeg_with_extra_pictures_stays_a_jpeg() -> None:
    data = _encode(_photo(), "MPO", save_all=True, append_images=[_photo()])
    with Image.open(io.BytesIO(data)) as probe:
        assert probe.format == "MPO"
    image = check_upload(data, max_bytes=MB, name="IMG_0001.JPG")
    assert (image.data, image.content_type) == (data, "image/jpeg")


def test_webp_is_kept() -> None:
    data = _encode(_photo(), "WEBP")
    assert check_upload(data, max_bytes=MB, name="a.webp").content_type == "image/webp"


# --- converted to PNG ----------------------------------------------------------


def test_animated_gif_becomes_a_png_of_its_first_frame() -> None:
    first = Image.new("P", (40, 30), 1)
    second = Image.new("P", (40, 30), 2)
    palette = [0, 0, 0, 255, 0, 0, 0, 0, 255] + [0] * (256 * 3 - 9)
    first.putpalette(palette)
    second.putpalette(palette)
    gif = _encode(first, "GIF", save_all=True, append_images=[second], duration=100)
    image = check_upload(gif, max_bytes=MB, name="anim.gif")
    assert image.content_type == "image/png"
    assert image.name == "anim.png"
    with Image.open(io.BytesIO(image.data)) as converted:
        assert converted.format == "PNG"
        assert converted.size == (40, 30)
        assert converted.convert("RGB").getpixel((5, 5)) == (255, 0, 0)  # frame one is red


@pytest.mark.parametrize(("fmt", "mode"), [("BMP", "RGB"), ("TIFF", "RGB"), ("TIFF", "CMYK")])
def test_bmp_and_tiff_become_png(fmt: str, mode: str) -> None:
    source = _photo().convert(mode)
    image = check_upload(_encode(source, fmt), max_bytes=MB, name=f"scan.{fmt.lower()}")
    assert image.content_type == "image/png"
    with Image.open(io.BytesIO(image.data)) as converted:
        assert converted.format == "PNG"
        assert converted.size == source.size


# --- refused -------------------------------------------------------------------


def test_text_renamed_png_is_refused() -> None:
    message = _refusal(b"hello, I am a shopping list\n" * 20, "photo.png")
    assert (
        message == "photo.png is not an image Easel can read (PNG, JPEG, WebP, GIF, BMP or TIFF)."
    )


def test_heic_like_bytes_are_refused_by_content() -> None:
    fake_heic = b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + b"\x00" * 200
    message = _refusal(fake_heic, "photo.heic")
    assert "not an image Easel can read" in message


def test_oversize_file_is_refused_before_decoding() -> None:
    # Not an image at all: only a size check that runs before decoding can name its size.
    message = _refusal(b"\0" * (31 * MB), "photo.png", max_bytes=20 * MB)
    assert message == "photo.png is 31 MB; the limit is 20 MB."


def test_a_file_just_over_the_limit_does_not_read_as_the_limit() -> None:
    message = _refusal(b"\0" * (20 * MB + 1), "photo.png", max_bytes=20 * MB)
    assert message == "photo.png is 20.1 MB; the limit is 20 MB."


def test_a_size_and_a_limit_that_round_alike_are_stated_in_bytes() -> None:
    message = _refusal(b"\0" * 20_000_156, "huge.png", max_bytes=20_000_000)
    assert message == "huge.png is 20,000,156 bytes; the limit is 20,000,000 bytes."


def test_fifty_megapixel_png_is_refused_from_its_header() -> None:
    big = _encode(Image.new("1", (10_000, 5_000)), "PNG")  # 1-bit: a few kilobytes
    assert len(big) < 100_000
    assert _refusal(big, "huge.png") == "huge.png is 50 megapixels; the limit is 40."


def test_crafted_header_claiming_sixty_megapixels_is_refused() -> None:
    assert _refusal(_png_header_only(10_000, 6_000), "huge.png") == (
        "huge.png is 60 megapixels; the limit is 40."
    )


def test_decompression_bomb_beyond_pillows_own_limit_is_refused() -> None:
    message = _refusal(_png_header_only(30_000, 30_000), "bomb.png")
    assert "far too many pixels" in message


def test_smaller_pixel_limit_is_honoured() -> None:
    data = _encode(Image.new("L", (1_000, 1_001)), "PNG")
    message = _refusal(data, "photo.png", max_pixels=500_000)
    assert message == "photo.png is 1.1 megapixels; the limit is 0.5."  # rounded up, never down


def test_truncated_png_is_refused() -> None:
    data = _encode(_photo(), "PNG")
    message = _refusal(data[: len(data) // 2], "cut.png")
    assert "damaged or incomplete" in message


def test_truncated_jpeg_is_refused() -> None:
    data = _encode(_photo(), "JPEG")
    message = _refusal(data[: len(data) // 3], "cut.jpg")
    assert "cut.jpg" in message


def test_empty_file_is_refused() -> None:
    assert _refusal(b"", "nothing.png") == "nothing.png is empty; send a PNG, JPEG or WebP image."


def test_corrupt_tiff_metadata_warning_becomes_a_refusal_not_a_crash() -> None:
    # Pillow warns "Corrupt EXIF data" on this header; the warning must not escape.
    tiff = _encode(_photo(), "TIFF")
    assert "scan.tif" in _refusal(tiff[:8], "scan.tif")
