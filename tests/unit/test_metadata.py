"""EXIF extraction (claimlens.vision.metadata): values, fallbacks, formats and malformed input."""

from __future__ import annotations

import io
import json
import random
import struct
from datetime import UTC, datetime, timedelta, timezone

import pytest
from PIL import Image
from PIL.TiffImagePlugin import IFDRational

from claimlens.vision.metadata import PhotoMetadata, extract_metadata

EXIF_IFD, GPS_IFD = 0x8769, 0x8825


def make_exif(
    *,
    original: str | None = "2024:05:01 09:59:58",
    offset: str | None = "+08:00",
    subsec: str | None = None,
    digitized: str | None = None,
    offset_digitized: str | None = None,
    datetime_: str | None = None,
    offset_time: str | None = None,
    make: str | bytes | None = "Apple",
    model: str | bytes | None = "iPhone 13",
    software: str | bytes | None = "17.1",
    lens: str | None = None,
    gps: tuple | None = None,
    orientation: int | None = None,
) -> Image.Exif:
    ex = Image.Exif()
    for tag, value in ((0x010F, make), (0x0110, model), (0x0131, software), (0x0132, datetime_),
                       (0x0112, orientation)):
        if value is not None:
            ex[tag] = value
    sub = ex.get_ifd(EXIF_IFD)
    for tag, value in ((0x9003, original), (0x9011, offset), (0x9291, subsec), (0x9004, digitized),
                       (0x9012, offset_digitized), (0x9010, offset_time), (0xA434, lens)):
        if value is not None:
            sub[tag] = value
    if gps is not None:
        lat_ref, lat, lon_ref, lon = gps
        g = ex.get_ifd(GPS_IFD)
        for tag, value in ((1, lat_ref), (2, lat), (3, lon_ref), (4, lon)):
            if value is not None:
                g[tag] = value
    return ex


def encode(exif: Image.Exif | bytes | None, fmt: str = "JPEG", size: tuple[int, int] = (16, 8)) -> bytes:
    img = Image.new("RGB", size, (200, 30, 30))
    buf = io.BytesIO()
    if exif is None:
        img.save(buf, format=fmt)
    else:
        img.save(buf, format=fmt, exif=exif)
    return buf.getvalue()


def meta_of(data: bytes) -> PhotoMetadata:
    with Image.open(io.BytesIO(data)) as img:
        return extract_metadata(img)


def meta_of_raw(exif_block: bytes) -> PhotoMetadata:
    """Metadata from an arbitrary EXIF block, without an encoder in between (fast, any bytes)."""
    img = Image.new("RGB", (1, 1))
    img.info["exif"] = exif_block
    return extract_metadata(img)


def tiff_block(ifd0: list[tuple[int, int, int, bytes]], exif: list[tuple[int, int, int, bytes]] | None = None,
               prefix: bytes = b"Exif\x00\x00") -> bytes:
    """A big-endian TIFF/EXIF block with hand-made entries (tag, type, count, payload): lets tests write
    values of the wrong type, which Pillow's writer would not."""
    ifd0 = list(ifd0)
    n0 = len(ifd0) + (1 if exif is not None else 0)
    size0 = 2 + 12 * n0 + 4
    exif_at = 8 + size0
    size1 = 2 + 12 * len(exif) + 4 if exif is not None else 0
    data_at = exif_at + size1
    data = bytearray()

    def ifd(entries: list[tuple[int, int, int, bytes]]) -> bytes:
        out = struct.pack(">H", len(entries))
        for tag, typ, count, payload in sorted(entries):
            if len(payload) <= 4:
                value = payload.ljust(4, b"\x00")
            else:
                value = struct.pack(">I", data_at + len(data))
                data.extend(payload + (b"\x00" if len(payload) % 2 else b""))
            out += struct.pack(">HHI", tag, typ, count) + value
        return out + b"\x00\x00\x00\x00"

    if exif is not None:
        ifd0.append((EXIF_IFD, 4, 1, struct.pack(">I", exif_at)))
    body = ifd(ifd0) + (ifd(exif) if exif is not None else b"")
    return prefix + b"MM\x00\x2a\x00\x00\x00\x08" + body + bytes(data)


def ascii_entry(tag: int, text: str | bytes) -> tuple[int, int, int, bytes]:
    raw = (text.encode() if isinstance(text, str) else text) + b"\x00"
    return (tag, 2, len(raw), raw)


# ------------------------------------------------------------------------------------------------ values


def test_full_exif_jpeg() -> None:
    ex = make_exif(subsec="123", lens="iPhone 13 back camera 5.1mm f/1.6",
                   gps=("S", (IFDRational(33), IFDRational(52), IFDRational(1234, 100)), "W",
                        (IFDRational(151), IFDRational(12), IFDRational(30))))
    md = meta_of(encode(ex))
    assert md.has_exif
    assert md.problems == []
    assert md.capture_time == datetime(2024, 5, 1, 9, 59, 58, 123000, tzinfo=timezone(timedelta(hours=8)))
    assert md.capture_time_has_offset and md.offset_source == "OffsetTimeOriginal"
    assert md.capture_time_source == "DateTimeOriginal"
    assert (md.make, md.model, md.software) == ("Apple", "iPhone 13", "17.1")
    assert md.lens == "iPhone 13 back camera 5.1mm f/1.6"
    assert md.gps_lat == pytest.approx(-(33 + 52 / 60 + 12.34 / 3600), abs=1e-6)
    assert md.gps_lon == pytest.approx(-(151 + 12 / 60 + 30 / 3600), abs=1e-6)


def test_to_json_is_json_and_round_trips_the_time() -> None:
    md = meta_of(encode(make_exif(gps=("N", (31.0, 14.0, 30.3), "E", (121.0, 28.0, 12.5)))))
    d = json.loads(json.dumps(md.to_json()))
    assert d["capture_time"] == "2024-05-01T09:59:58+08:00"
    assert datetime.fromisoformat(d["capture_time"]) == md.capture_time
    assert d["gps_lat"] == pytest.approx(31.24175) and d["gps_lon"] == pytest.approx(121.4701389)
    assert d["has_exif"] is True and d["problems"] == []
    assert PhotoMetadata().to_json()["capture_time"] is None


def test_without_offset_time_stays_naive() -> None:
    md = meta_of(encode(make_exif(offset=None)))
    assert md.capture_time == datetime(2024, 5, 1, 9, 59, 58)
    assert md.capture_time.tzinfo is None
    assert md.capture_time_has_offset is False and md.offset_source is None


def test_falls_back_to_digitized_then_datetime() -> None:
    md = meta_of(encode(make_exif(original=None, offset=None, digitized="2024:05:02 08:00:00",
                                  offset_digitized="-05:00", datetime_="2024:06:01 00:00:00")))
    assert md.capture_time_source == "DateTimeDigitized"
    assert md.capture_time == datetime(2024, 5, 2, 8, tzinfo=timezone(timedelta(hours=-5)))
    assert md.offset_source == "OffsetTimeDigitized"

    md = meta_of(encode(make_exif(original=None, offset=None, datetime_="2024:06:01 12:30:00",
                                  offset_time="+05:30")))
    assert md.capture_time_source == "DateTime"
    assert md.capture_time == datetime(2024, 6, 1, 12, 30, tzinfo=timezone(timedelta(hours=5, minutes=30)))


def test_no_exif_at_all() -> None:
    md = meta_of(encode(None))
    assert md.has_exif is False
    assert md.capture_time is None and md.make is None and md.gps_lat is None
    assert md.problems == []


def test_zero_date_is_none_with_a_problem_and_falls_back() -> None:
    md = meta_of(encode(make_exif(original="0000:00:00 00:00:00", offset=None)))
    assert md.capture_time is None
    assert any("DateTimeOriginal" in p for p in md.problems)

    md = meta_of(encode(make_exif(original="0000:00:00 00:00:00", datetime_="2024:05:03 10:00:00")))
    assert md.capture_time == datetime(2024, 5, 3, 10, 0)
    assert md.capture_time_source == "DateTime"
    assert any("DateTimeOriginal" in p for p in md.problems)


@pytest.mark.parametrize("text", ["    :  :     :  :  ", "2024:13:45 10:00:00", "yesterday", "1900:01:01 00:00:00",
                                  "2024:05:01 25:00:00"])
def test_bad_dates_are_none(text: str) -> None:
    md = meta_of(encode(make_exif(original=text)))
    assert md.capture_time is None
    assert md.problems


def test_impossible_offset_is_dropped() -> None:
    md = meta_of(encode(make_exif(offset="+15:00")))
    assert md.capture_time == datetime(2024, 5, 1, 9, 59, 58)
    assert md.capture_time_has_offset is False
    assert any("offset" in p for p in md.problems)


def test_bad_subsec_keeps_the_time() -> None:
    md = meta_of(encode(make_exif(subsec="12a")))
    assert md.capture_time == datetime(2024, 5, 1, 9, 59, 58, tzinfo=timezone(timedelta(hours=8)))
    assert any("SubSec" in p for p in md.problems)


@pytest.mark.parametrize(
    "gps, problem",
    [
        (("N", (95.0, 0.0, 0.0), "E", (10.0, 0.0, 0.0)), "impossible position"),
        (("N", (10.0, 0.0, 0.0), "E", (181.0, 0.0, 0.0)), "impossible position"),
        (("N", (10.0, 75.0, 0.0), "E", (10.0, 0.0, 0.0)), "impossible DMS"),
        (("N", (0.0, 0.0, 0.0), "E", (0.0, 0.0, 0.0)), "placeholder"),
        (("N", (IFDRational(10, 0), 0.0, 0.0), "E", (10.0, 0.0, 0.0)), "GPSLatitude"),
        (("Q", (10.0, 0.0, 0.0), "E", (10.0, 0.0, 0.0)), "GPSLatitudeRef"),
        ((None, (10.0, 0.0, 0.0), "E", (10.0, 0.0, 0.0)), "hemisphere reference"),
    ],
)
def test_bad_gps_is_none_with_a_problem(gps: tuple, problem: str) -> None:
    md = meta_of(encode(make_exif(gps=gps)))
    assert md.gps_lat is None and md.gps_lon is None
    assert any(problem in p for p in md.problems), md.problems
    assert md.capture_time is not None  # the rest is still read


def test_gps_time_is_read() -> None:
    ex = make_exif(gps=("N", (31.0, 0.0, 0.0), "E", (121.0, 0.0, 0.0)))
    g = ex.get_ifd(GPS_IFD)
    g[29] = "2024:05:01"
    g[7] = (1.0, 59.0, 58.0)
    md = meta_of(encode(ex))
    assert md.gps_time == datetime(2024, 5, 1, 1, 59, 58, tzinfo=UTC)
    assert md.to_json()["gps_time"] == "2024-05-01T01:59:58+00:00"


def test_text_is_cleaned_and_utf8_repaired() -> None:
    block = tiff_block(
        [ascii_entry(0x010F, "  HUAWEI\x00\x00  "), ascii_entry(0x0110, b"ELS-AN00\x00\x00\x00"),
         ascii_entry(0x0131, "美图秀秀")],
        [ascii_entry(0x9003, "2024:05:01 10:00:00")],
    )
    md = meta_of_raw(block)
    assert md.make == "HUAWEI" and md.model == "ELS-AN00"
    assert md.software == "美图秀秀"
    assert md.capture_time == datetime(2024, 5, 1, 10, 0)


def test_wrong_types_are_none_with_problems() -> None:
    block = tiff_block(
        [(0x010F, 4, 1, struct.pack(">I", 7)), ascii_entry(0x0110, "Pixel 7")],
        [(0x9003, 3, 2, struct.pack(">HH", 2024, 5)), (0xA002, 2, 4, b"abc\x00")],
    )
    md = meta_of_raw(block)
    assert md.has_exif
    assert md.make is None and md.model == "Pixel 7"
    assert md.capture_time is None
    assert md.width_exif is None
    assert any("Make" in p for p in md.problems)
    assert any("DateTimeOriginal" in p for p in md.problems)


def test_pixel_dimensions() -> None:
    ex = make_exif()
    ex.get_ifd(EXIF_IFD)[0xA002] = 4032
    ex.get_ifd(EXIF_IFD)[0xA003] = 3024
    md = meta_of(encode(ex))
    assert (md.width_exif, md.height_exif) == (4032, 3024)


@pytest.mark.parametrize(
    "block",
    [
        b"Exif\x00\x00" + b"garbage!" * 20,
        b"Exif\x00\x00MM\x00\x2a\x00\x00\x00\x08\xff\xff" + b"\x01" * 40,
        b"Exif\x00\x00II*\x00\x08\x00\x00\x00\x05\x00" + b"\xff" * 60,
        b"Exif\x00\x00MM\x00\x2a\xff\xff\xff\xf0",
    ],
)
@pytest.mark.filterwarnings("ignore::UserWarning")
def test_garbage_exif_never_raises(block: bytes) -> None:
    md = meta_of_raw(block)
    assert md.capture_time is None
    assert md.problems
    # the same garbage inside a real JPEG's APP1 segment
    md = meta_of(encode(block))
    assert md.problems


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_fuzzed_exif_never_raises() -> None:
    good = make_exif(subsec="5", gps=("N", (31.0, 14.0, 30.3), "E", (121.0, 28.0, 12.5))).tobytes()
    rng = random.Random(1234)
    for _ in range(300):
        block = bytearray(good)
        for _ in range(rng.randint(1, 12)):
            block[rng.randrange(6, len(block))] = rng.randrange(256)
        if rng.random() < 0.2:
            block = block[: rng.randrange(6, len(block))]
        md = meta_of_raw(bytes(block))
        json.dumps(md.to_json())
        if md.gps_lat is not None:
            assert -90 <= md.gps_lat <= 90 and -180 <= md.gps_lon <= 180


def test_xmp_raw_profile_garbage_does_not_raise() -> None:
    img = Image.new("RGB", (1, 1))
    img.info["Raw profile type exif"] = "\nexif\n  12\nnot hex at all"
    md = extract_metadata(img)
    assert md.capture_time is None
    assert md.problems


# ------------------------------------------------------------------------------------------------ formats


@pytest.mark.parametrize("fmt", ["PNG", "WEBP"])
def test_other_containers(fmt: str) -> None:
    md = meta_of(encode(make_exif(), fmt=fmt))
    assert md.has_exif and md.make == "Apple"
    assert md.capture_time == datetime(2024, 5, 1, 9, 59, 58, tzinfo=timezone(timedelta(hours=8)))


def test_heic() -> None:
    pillow_heif = pytest.importorskip("pillow_heif")
    pillow_heif.register_heif_opener()
    try:
        data = encode(make_exif(gps=("N", (31.0, 14.0, 30.3), "E", (121.0, 28.0, 12.5))), fmt="HEIF")
    except (KeyError, OSError, ValueError) as exc:  # pragma: no cover - depends on the libheif build
        pytest.skip(f"HEIF encoding unavailable: {exc}")
    md = meta_of(data)
    assert md.has_exif and md.problems == []
    assert (md.make, md.model) == ("Apple", "iPhone 13")
    assert md.capture_time == datetime(2024, 5, 1, 9, 59, 58, tzinfo=timezone(timedelta(hours=8)))
    assert md.gps_lat == pytest.approx(31.24175)
