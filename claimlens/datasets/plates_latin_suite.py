"""Generated suite for the Latin plate bench: synthetic EU, UK, US and Russian-style plates on car photos.

Why generated: the only plates in ``../shared/data`` are Chinese (``plates_cn``); there is no offline,
licensed set of photos with Latin plates whose text *and* corners are labelled. A plate is a flat printed
rectangle with a handful of standard layouts, so it is simple to render, put in perspective onto a real car
photo and label exactly (text, box and the four corners). ``claimlens bench plates --suite`` measures a plate
localiser + reader on it; nothing is fitted on it, so there is no calib/test split.

Formats (``country`` / ``style``; the text is drawn from the format's real alphabet; ``plate_text`` is the
registration only: no spaces or hyphens, upper case, the EU/GB band letters, the US state word and slogans,
the French department band and the Russian ``RUS`` not included):

* ``GB`` ``uk_front`` / ``uk_rear``: ``AB12 CDE`` (2 area letters and the 3 random letters without I and Q, no
  Z in the area letters, age digits 02-24 or 51-74), white front or yellow rear, black characters, no band,
  an EU band with ``GB`` or a plain blue band with a simplified Union flag and ``UK``. 520 x 111 mm.
* ``DE`` ``de``: ``B AB 1234`` / ``M XY 123`` (district code 1-3 letters, 1-2 letters, 1-4 digits, at most 8
  characters), EU band ``D``, white, black characters; the gap after the district holds the round
  registration seal (and on rear plates the inspection sticker). 520 x 110 mm.
* ``FR`` ``fr``: ``AB-123-CD`` (no I, O, U), EU band ``F``, white; in 70 % a right blue band with a department
  number (not part of ``plate_text``). ``IT`` ``it``: ``AB 123 CD`` (no I, O, Q, U), EU band ``I`` and a
  blank right blue band. ``ES`` ``es``: ``1234 BCD`` (consonants only, no Q), EU band ``E``.
* ``NL`` ``nl``: ``12-ABC-3`` or ``AB-123-C`` (letters BDFGHJKLNPRSTVXZ), yellow, EU band ``NL``.
* ``PL`` ``pl``: ``WA 12345`` (2-letter district, 5 digits or 4 digits + a letter), EU band ``PL``, white.
* ``US`` ``us_ca``: ``7ABC123`` (California style: white, dark blue characters, red state word above);
  ``us_generic``: ``ABC 1234`` (white / pale yellow / pale blue / light grey, dark blue or black characters,
  a small state word above, a slogan below in 40 %). 305 x 152 mm.
* ``RU`` ``ru``: ``A123BC 77`` (only the 12 letters shared with Cyrillic: ABEKMHOPCTYX; letters shorter than
  digits), white, thin black border, the 2-3 region digits in a box at the right above ``RUS`` and a
  tricolour; ``plate_text`` includes the region (``A123BC77``). 520 x 112 mm.

Scenes (each positive image has exactly one plate): a photo of ``car_damage_roboflow`` (``valid/images`` and
``test/images``: 481 photos, 460 without the second of each known duplicate pair, 358 without the 102 that
already show a real, blanked or blurred plate, see :data:`REAL_PLATE_PHOTOS`) upscaled (bicubic) to a longer
side of 960-1600 px and blurred a little so the JPEG blocks of the 256-px source do not show; the plate
(6-28 % of the image width, log-uniform: shot from far to near) is placed on the lower middle (rows 45-90 %,
columns 15-85 %), posed in 3-D (yaw +-35, pitch +-15, roll +-8 degrees through a pinhole camera) and
composited with an anti-aliased alpha mask (rounded corners, thin dark border, screws in 60 %, dirt in 40 %, a
soft holder shadow in 50 %). Then over the whole image: a light gradient or a cast shadow across the plate
(30 %), gamma 0.7-1.4, Gaussian or motion blur up to 2.5 px (50 %; at most 6 % of the character height, so
every plate stays legible to a person), sensor noise and JPEG 60-95. Distractor text (1-3 items: stock-photo
watermarks, date stamps, phone numbers, dealer stickers, VIN fragments, tyre codes) is drawn flat or slightly
warped away from the plate in 50 % of the positives and in every negative (a car photo with no plate). Many
source photos carry real watermarks and captions too (alamy, shutterstock, "TLS AUTO RECYCLING"); they are not
listed in ``distractors``.

labels.csv: ``image,plate_text,country,style,x1,y1,x2,y2,tlx,tly,trx,try,brx,bry,blx,bly,distractors``. The
box (integers) and corners (the plate's outer rectangle, TL TR BR BL, 0.1 px) are in the output image's pixels
with the origin at the top-left corner of the top-left pixel; ``distractors`` is the ``|``-joined distractor
texts drawn. Negatives have empty plate_text, country, style, box and corners. Styles come in equal turns.

What it can tell: whether the localiser finds plates of these layouts across sizes, poses, blur, light and
JPEG, whether it ignores plate-like text elsewhere (the distractors), and whether the reader gets the
characters and the national format right. What it cannot: real plate fonts (Charles Wright, FE-Schrift,
Penitentiary Gothic, ... are not free; the characters here are DejaVu Sans / Condensed / Mono Bold), wear,
glare, plate frames, occlusion, and plates on the bumper of the photo's own car (the photos are damage
photos; the plate lands wherever the lower middle is, sometimes on a door or a tyre), and a sharp rendered
plate on a soft upscaled background is easier to find than a real one. So the numbers are optimistic for
rendering and context, and we know of nothing that makes them pessimistic (a reader tuned to the real fonts
might find a DejaVu glyph unusual, which would cost a little). Keep them apart from numbers on real photos.

Sources: ``../shared/data/car_damage_roboflow`` - "Car Damage Detection" (Roboflow Universe export, v2
2023-06-14), licensed CC BY 4.0; attribution: the dataset's authors via Roboflow (its README.roboflow.txt).
Only generated images are written (to the output folder); nothing from the shared folder is copied into the
repository.

Deterministic for (sources, n, negatives, seed): one numpy generator per image (same bytes for the same seed).
Regenerate: ``python -m claimlens.datasets.plates_latin_suite OUT [--n 240] [--negatives 60] [--seed 0]``.
"""

from __future__ import annotations

import argparse
import csv
import functools
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
DEFAULT_SOURCE = SHARED_DATA / "car_damage_roboflow"
SOURCE_SUBDIRS = ("valid/images", "test/images")
FONT_DIR = Path("/usr/share/fonts/truetype/dejavu")
CONDENSED, SANS, MONO = "DejaVuSansCondensed-Bold.ttf", "DejaVuSans-Bold.ttf", "DejaVuSansMono-Bold.ttf"

# Source photos (the part of the file name before ".rf.", shared by Roboflow's augmented copies) that show a
# real plate, a blanked or blurred plate or an empty plate recess: a localiser finding it would be scored as
# a false alarm, and a "negative" would hold a plate. Reviewed by eye on contact sheets of all 460 photos of
# valid/ and test/, twice (doubtful ones excluded too); 358 photos remain. Tiny, illegible plates may remain.
REAL_PLATE_PHOTOS = frozenset((
    "0003_JPEG", "0010_JPEG", "0011_JPEG", "0020_JPEG", "0024_JPEG", "0042_JPEG", "0046_JPEG", "0049_jpeg",
    "0050_jpeg", "0085_JPEG", "0089_JPEG", "0109_JPEG", "0122_jpeg", "0131_JPEG", "0137_JPEG", "0138_JPEG",
    "0143_JPEG", "0148_JPEG", "0158_JPEG", "0159_jpeg", "0170_JPEG", "0175_JPEG", "0182_JPEG", "0184_JPEG",
    "0194_JPEG", "0221_JPEG", "damage_1296_jpg", "damage_1426_jpg", "damage_2580_jpg", "damage_3985_jpg",
    "damage_4683_jpg", "damage_7842_jpg", "damage_8837_jpg", "damage_9094_jpg", "major_119_jpg",
    "major_127_jpg", "major_132_jpg", "major_158_jpg", "major_191_jpg", "major_202_jpg", "major_204_jpg",
    "major_205_jpg", "major_206_jpg", "major_209_jpg", "major_217_jpg", "major_230_jpg", "major_245_jpg",
    "major_270_jpg", "major_272_jpg", "major_281_jpg", "major_289_jpg", "major_337_jpg", "major_352_jpg",
    "major_364_jpg", "major_44_jpg", "major_76_jpg", "minor_135_jpg", "minor_148_jpg", "minor_170_jpg",
    "minor_180_jpg", "minor_187_jpg", "minor_189_jpg", "minor_202_jpg", "minor_226_jpg", "minor_22_jpg",
    "minor_4_jpg", "minor_69_jpg", "moderate_105_jpg", "moderate_106_jpg", "moderate_119_jpg",
    "moderate_129_jpg", "moderate_140_jpg", "moderate_146_jpg", "moderate_149_jpg", "moderate_14_jpg",
    "moderate_151_jpg", "moderate_162_jpg", "moderate_166_jpg", "moderate_169_jpg", "moderate_17_jpg",
    "moderate_198_jpg", "moderate_220_jpg", "moderate_224_jpg", "moderate_235_jpg", "moderate_24_jpg",
    "moderate_253_jpg", "moderate_263_jpg", "moderate_274_jpg", "moderate_34_jpg", "moderate_47_jpg",
    "moderate_85_jpg", "moderate_98_jpg", "major_244_jpg", "0013_JPEG", "0072_JPEG", "0217_JPEG",
))

COLUMNS = ("image", "plate_text", "country", "style", "x1", "y1", "x2", "y2",
           "tlx", "tly", "trx", "try", "brx", "bry", "blx", "bly", "distractors")
STYLES = ("uk_front", "uk_rear", "de", "fr", "it", "es", "nl", "pl", "us_ca", "us_generic", "ru")

EU_BLUE = (0, 51, 153)
EU_YELLOW = (255, 204, 0)
WHITE = (244, 244, 238)
UK_YELLOW = (252, 206, 18)
NL_YELLOW = (250, 190, 0)
INK = (18, 18, 20)

UK_AREA = "ABCDEFGHJKLMNOPRSTUVWXY"  # no I, Q, Z
UK_RANDOM = "ABCDEFGHJKLMNOPRSTUVWXYZ"  # no I, Q
DE_DISTRICTS = ("B", "M", "K", "F", "S", "D", "H", "L", "N", "E", "HH", "HB", "DO", "KA", "MA", "BN", "WI",
                "DD", "AC", "FR", "OF", "GI", "MZ", "KI", "HRO", "BIR", "LUD", "WES", "MTK", "HSK")
FR_LETTERS = "ABCDEFGHJKLMNPQRSTVWXYZ"  # no I, O, U
IT_LETTERS = "ABCDEFGHJKLMNPRSTVWXYZ"  # no I, O, Q, U
ES_LETTERS = "BCDFGHJKLMNPRSTVWXYZ"  # consonants, no Q (nor Ñ)
NL_LETTERS = "BDFGHJKLNPRSTVXZ"
PL_DISTRICTS = ("WA", "WB", "WE", "WI", "WX", "KR", "KK", "PO", "PZ", "GD", "GA", "WR", "DW", "LU", "SZ",
                "ZS", "BI", "EL", "SK", "SO", "OP", "RZ", "TK", "CB", "NO", "FZ")
PL_LETTERS = "ACEFGHJKLMNPRSTUVWXY"  # no B, D, I, O, Z (they look like digits)
US_LETTERS = "ABCDEFGHJKLMNPRSTUVWXYZ"  # no I, O, Q
RU_LETTERS = "ABEKMHOPCTYX"
RU_REGIONS = tuple(f"{i:02d}" for i in range(1, 100)) + (
    "102", "116", "123", "125", "134", "138", "150", "152", "154", "159", "161", "163", "164", "173", "174",
    "177", "178", "186", "190", "196", "197", "199", "750", "777", "799")
US_STATES = ("TEXAS", "OHIO", "FLORIDA", "NEW YORK", "GEORGIA", "ILLINOIS", "ARIZONA", "VIRGINIA", "OREGON",
             "NEVADA", "MICHIGAN", "COLORADO")
US_SLOGANS = ("SUNSHINE STATE", "EMPIRE STATE", "LAND OF LINCOLN", "GRAND CANYON STATE",
              "THE LONE STAR STATE", "PURE MICHIGAN", "BIRTHPLACE OF AVIATION", "dmv.ca.gov")
US_BACKGROUNDS = ((244, 244, 238), (250, 240, 196), (214, 228, 244), (226, 226, 224), (246, 236, 216))
US_INKS = ((22, 34, 112), (14, 14, 18), (30, 40, 90))

WATERMARKS = ("123RF", "shutterstock", "alamy", "dreamstime", "depositphotos")
DEALERS = ("AUTO CITY", "CARS 4 U", "MOTOR WORLD", "DRIVE NOW", "BEST CARS", "AUTOHAUS MUELLER",
           "GARAGE DU CENTRE", "CITY MOTORS")
MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
VIN_CHARS = "ABCDEFGHJKLMNPRSTUVWXYZ0123456789"
VIN_WMI = ("WVWZZZ", "WBA", "VF1", "ZFA", "1HG", "JTD", "SAJ", "TMB", "WDD", "KMH")
TYRES = ("205/55 R16", "225/45 R17 94W", "195/65 R15 91H", "215/60 R16", "235/55 R18 100V", "185/60 R15",
         "DOT 4519")
DISTRACTOR_KINDS = ("watermark", "date", "phone", "dealer", "vin", "tyre")


# ------------------------------------------------------------------------------------------------ sources


def list_sources(src: Path) -> list[Path]:
    """The photos of ``src``'s valid and test images, sorted, without the second photo of each known duplicate
    pair (the same picture twice would only repeat a background) and without the photos that already show a
    plate (:data:`REAL_PLATE_PHOTOS`: each image must hold exactly the plates its label says)."""
    dup: set[str] = set()
    kd = src / "known_duplicates.csv"
    if kd.is_file():
        with kd.open(newline="") as f:
            dup = {(r.get("image_b") or "").strip() for r in csv.DictReader(f)}
    out: list[Path] = []
    for sub in SOURCE_SUBDIRS:
        d = src / sub
        if d.is_dir():
            out += [p for p in sorted(d.iterdir()) if p.suffix.lower() in (".jpg", ".jpeg", ".png")
                    and p.relative_to(src).as_posix() not in dup
                    and p.name.split(".rf.")[0] not in REAL_PLATE_PHOTOS]
    return out


def _background(path: Path, rng: np.random.Generator) -> np.ndarray:
    """The source photo upscaled (bicubic) to a longer side of 960-1600 px, blurred just enough to hide the
    blocks of its JPEG and the upscaling (RGB uint8)."""
    src = np.asarray(Image.open(path).convert("RGB"))
    long_side = int(rng.integers(960, 1601))
    k = long_side / max(src.shape[:2])
    size = (max(1, round(src.shape[1] * k)), max(1, round(src.shape[0] * k)))
    img = cv2.resize(src, size, interpolation=cv2.INTER_CUBIC)
    return cv2.GaussianBlur(img, (0, 0), 0.3 * k)


# ------------------------------------------------------------------------------------------------ text


@functools.lru_cache(maxsize=16)
def _font(path: str, size: int) -> ImageFont.FreeTypeFont | None:
    if not Path(path).is_file():  # PIL would search other folders for the name; the fallback is explicit
        return None
    try:
        return ImageFont.truetype(path, size)
    except OSError:
        return None


@functools.lru_cache(maxsize=4096)
def _text_mask_cached(text: str, font_path: str) -> np.ndarray:
    font = _font(font_path, 96)
    if font is not None:
        l, t, r, b = font.getbbox(text)
        img = Image.new("L", (r - l + 8, b - t + 8), 0)
        ImageDraw.Draw(img).text((4 - l, 4 - t), text, font=font, fill=255)
        m = np.asarray(img)
    else:  # no DejaVu on this machine: Hershey strokes (thick, so they read as a bold face)
        face = cv2.FONT_HERSHEY_DUPLEX
        (w, h), base = cv2.getTextSize(text, face, 3.0, 8)
        m = np.zeros((h + base + 16, w + 16), np.uint8)
        cv2.putText(m, text, (8, h + 8), face, 3.0, 255, 8, cv2.LINE_AA)
    ys, xs = np.nonzero(m > 24)
    if len(xs) == 0:
        return np.zeros((1, 1), np.uint8)
    out = np.ascontiguousarray(m[ys.min():ys.max() + 1, xs.min():xs.max() + 1])
    out.setflags(write=False)
    return out


def text_mask(text: str, font: str) -> np.ndarray:
    """The ink of ``text`` in ``font`` (a DejaVu file name) cropped to its bounding box, 255 = ink.
    Cropping to the ink lets a caller stretch a group of capitals and digits exactly onto a plate's character
    box."""
    return _text_mask_cached(text, str(FONT_DIR / font))


def _paint(tex: np.ndarray, mask: np.ndarray, x: float, y: float, w: float, h: float,
           colour: tuple[float, ...], opacity: float = 1.0) -> None:
    """Blend ``colour`` into the float image ``tex`` through ``mask`` resized to the box (x, y, w, h)."""
    wi, hi = max(1, round(w)), max(1, round(h))
    interp = cv2.INTER_AREA if wi < mask.shape[1] and hi < mask.shape[0] else cv2.INTER_LINEAR
    m = cv2.resize(mask, (wi, hi), interpolation=interp)
    x0, y0 = round(x), round(y)
    ax0, ay0 = max(0, x0), max(0, y0)
    ax1, ay1 = min(tex.shape[1], x0 + wi), min(tex.shape[0], y0 + hi)
    if ax1 <= ax0 or ay1 <= ay0:
        return
    a = m[ay0 - y0:ay1 - y0, ax0 - x0:ax1 - x0, None].astype(np.float32) * (opacity / 255.0)
    reg = tex[ay0:ay1, ax0:ax1]
    reg *= 1.0 - a
    reg += a * np.asarray(colour, np.float32)


def _rounded(h: int, w: int, r: float, inset: float = 0.0) -> np.ndarray:
    """A rounded-rectangle mask (float 0-1), ``inset`` pixels inside the edges: plate outlines and borders."""
    img = Image.new("L", (w, h), 0)
    i = inset
    ImageDraw.Draw(img).rounded_rectangle((i, i, w - 1 - i, h - 1 - i), radius=max(0.0, r - i), fill=255)
    return np.asarray(img, np.float32) / 255.0


# ------------------------------------------------------------------------------------------------ formats


@dataclass
class PlateSpec:
    """What to draw: sizes in mm, the character row as items ``("text", chars, height_mm)``,
    ``("gap", width_mm)`` or ``("hyphen", width_mm, char_height_mm)``, and the style's extras."""

    country: str
    style: str
    text: str  # plate_text
    size_mm: tuple[float, float]
    bg: tuple[float, float, float]
    ink: tuple[float, float, float]
    font: str
    items: list[tuple]
    stretch: float = 1.0  # horizontal stretch of the glyphs before fitting the row into its box
    baseline: float = 0.84  # fraction of the height where the characters stand
    band: str | None = None  # left band letters (EU blue)
    stars: bool = True
    union_flag: bool = False
    right_band: str | None = None  # None: none; "": blank; else small white text
    seals_after: int | None = None  # index of the gap item holding the German seals
    state_word: tuple[str, tuple[float, float, float], float] | None = None  # text, colour, height mm
    slogan: str | None = None
    ru_region: str | None = None
    extra: dict = field(default_factory=dict)


def _letters(rng: np.random.Generator, alphabet: str, k: int) -> str:
    return "".join(alphabet[i] for i in rng.integers(0, len(alphabet), k))


def _digits(rng: np.random.Generator, k: int, first_nonzero: bool = False) -> str:
    d = "".join(str(v) for v in rng.integers(0, 10, k))
    if first_nonzero and d[0] == "0":
        d = str(int(rng.integers(1, 10))) + d[1:]
    return d


def _spec_uk(rng: np.random.Generator, rear: bool) -> PlateSpec:
    area = _letters(rng, UK_AREA, 2)
    age = f"{int(rng.integers(2, 25)) + (50 if rng.random() < 0.5 else 0):02d}"
    tail = _letters(rng, UK_RANDOM, 3)
    band = rng.choice(["", "GB", "UK"], p=[0.4, 0.3, 0.3])
    return PlateSpec("GB", "uk_rear" if rear else "uk_front", area + age + tail, (520, 111),
                     UK_YELLOW if rear else WHITE, INK, CONDENSED,
                     [("text", area + age, 79), ("gap", 33), ("text", tail, 79)], stretch=1.25,
                     baseline=0.86, band=band or None, stars=band == "GB", union_flag=band == "UK")


def _spec_de(rng: np.random.Generator) -> PlateSpec:
    district = str(rng.choice(DE_DISTRICTS))
    k = int(rng.integers(1, 3))
    letters = _letters(rng, "ABCDEFGHIJKLMNOPRSTUVWXYZ", k)
    nd = int(rng.integers(1, min(4, 8 - len(district) - k) + 1))
    digits = _digits(rng, nd, first_nonzero=True)
    return PlateSpec("DE", "de", district + letters + digits, (520, 110), WHITE, INK, CONDENSED,
                     [("text", district, 75), ("gap", 30), ("text", letters, 75), ("gap", 14),
                      ("text", digits, 75)], stretch=1.15, baseline=0.84, band="D", seals_after=1,
                     extra={"rear": bool(rng.random() < 0.5)})


def _spec_fr(rng: np.random.Generator) -> PlateSpec:
    a, n, b = _letters(rng, FR_LETTERS, 2), f"{int(rng.integers(1, 1000)):03d}", _letters(rng, FR_LETTERS, 2)
    dept = f"{int(rng.integers(1, 96)):02d}" if rng.random() < 0.7 else None
    return PlateSpec("FR", "fr", a + n + b, (520, 110), WHITE, INK, CONDENSED,
                     [("text", a, 75), ("hyphen", 26, 75), ("text", n, 75), ("hyphen", 26, 75),
                      ("text", b, 75)],
                     stretch=1.15, band="F", right_band=dept)


def _spec_it(rng: np.random.Generator) -> PlateSpec:
    a, n, b = _letters(rng, IT_LETTERS, 2), _digits(rng, 3), _letters(rng, IT_LETTERS, 2)
    return PlateSpec("IT", "it", a + n + b, (520, 110), WHITE, INK, SANS,
                     [("text", a, 72), ("gap", 18), ("text", n, 72), ("gap", 18), ("text", b, 72)],
                     stretch=0.85, baseline=0.83, band="I", right_band="")


def _spec_es(rng: np.random.Generator) -> PlateSpec:
    n, b = _digits(rng, 4), _letters(rng, ES_LETTERS, 3)
    return PlateSpec("ES", "es", n + b, (520, 110), WHITE, INK, CONDENSED,
                     [("text", n, 75), ("gap", 30), ("text", b, 75)], stretch=1.2, band="E")


def _spec_nl(rng: np.random.Generator) -> PlateSpec:
    if rng.random() < 0.5:
        groups = [_digits(rng, 2), _letters(rng, NL_LETTERS, 3), _digits(rng, 1)]
    else:
        groups = [_letters(rng, NL_LETTERS, 2), _digits(rng, 3), _letters(rng, NL_LETTERS, 1)]
    items: list[tuple] = []
    for i, g in enumerate(groups):
        if i:
            items.append(("hyphen", 24, 72))
        items.append(("text", g, 72))
    return PlateSpec("NL", "nl", "".join(groups), (520, 110), NL_YELLOW, INK, SANS, items, stretch=0.9,
                     baseline=0.83, band="NL")


def _spec_pl(rng: np.random.Generator) -> PlateSpec:
    district = str(rng.choice(PL_DISTRICTS))
    if rng.random() < 0.7:
        tail = _digits(rng, 5, True)
    else:
        tail = _digits(rng, 4, True) + _letters(rng, PL_LETTERS, 1)
    return PlateSpec("PL", "pl", district + tail, (520, 110), WHITE, INK, CONDENSED,
                     [("text", district, 75), ("gap", 22), ("text", tail, 75)], stretch=1.1, band="PL")


def _spec_us_ca(rng: np.random.Generator) -> PlateSpec:
    t = str(int(rng.integers(1, 10))) + _letters(rng, US_LETTERS, 3) + _digits(rng, 3)
    return PlateSpec("US", "us_ca", t, (305, 152), WHITE, (24, 36, 118), CONDENSED, [("text", t, 66)],
                     stretch=1.2, baseline=0.80, state_word=("California", (196, 24, 34), 30),
                     slogan="dmv.ca.gov" if rng.random() < 0.5 else None)


def _spec_us_generic(rng: np.random.Generator) -> PlateSpec:
    a, n = _letters(rng, US_LETTERS, 3), _digits(rng, 4)
    sep: tuple = ("hyphen", 16, 66) if rng.random() < 0.3 else ("gap", 14)
    bg = US_BACKGROUNDS[int(rng.integers(len(US_BACKGROUNDS)))]
    ink = US_INKS[int(rng.integers(len(US_INKS)))]
    word_colour = ink if rng.random() < 0.6 else (150, 24, 30)
    return PlateSpec("US", "us_generic", a + n, (305, 152), bg, ink, MONO,
                     [("text", a, 66), sep, ("text", n, 66)], stretch=1.0, baseline=0.78,
                     state_word=(str(rng.choice(US_STATES)), word_colour, 18),
                     slogan=str(rng.choice(US_SLOGANS[:-1])) if rng.random() < 0.4 else None)


def _spec_ru(rng: np.random.Generator) -> PlateSpec:
    a, n, b = _letters(rng, RU_LETTERS, 1), f"{int(rng.integers(1, 1000)):03d}", _letters(rng, RU_LETTERS, 2)
    region = str(rng.choice(RU_REGIONS))
    return PlateSpec("RU", "ru", a + n + b + region, (520, 112), WHITE, INK, SANS,
                     [("text", a, 58), ("gap", 6), ("text", n, 76), ("gap", 6), ("text", b, 58)],
                     stretch=1.0, baseline=0.86, ru_region=region)


SPEC_MAKERS = {
    "uk_front": lambda r: _spec_uk(r, False), "uk_rear": lambda r: _spec_uk(r, True), "de": _spec_de,
    "fr": _spec_fr, "it": _spec_it, "es": _spec_es, "nl": _spec_nl, "pl": _spec_pl, "us_ca": _spec_us_ca,
    "us_generic": _spec_us_generic, "ru": _spec_ru,
}


# ------------------------------------------------------------------------------------------ plate texture


def _row(tex: np.ndarray, s: float, spec: PlateSpec, x0: float, x1: float,
         base: float) -> list[tuple[float, float]]:
    """Draw the character row bottom-aligned at ``base`` mm, centred in [x0, x1] mm and squeezed horizontally
    when too wide (as condensed plate fonts are); returns each item's span in mm (for the German seals)."""
    widths = []
    for it in spec.items:
        if it[0] == "text":
            m = text_mask(it[1], spec.font)
            widths.append(m.shape[1] / m.shape[0] * it[2] * spec.stretch)
        else:
            widths.append(float(it[1]))
    text_w = sum(w for it, w in zip(spec.items, widths) if it[0] == "text")
    gaps_w = sum(widths) - text_w
    k = min(1.0, max(0.3, (x1 - x0 - gaps_w) / text_w))  # squeeze the glyphs, keep the gaps (seals, hyphens)
    total = text_w * k + gaps_w
    x = x0 + ((x1 - x0) - total) / 2
    spans = []
    for it, w in zip(spec.items, widths):
        if it[0] == "text":
            w *= k
        if it[0] == "text":
            _paint(tex, text_mask(it[1], spec.font), x * s, (base - it[2]) * s, w * s, it[2] * s, spec.ink)
        elif it[0] == "hyphen":
            hw, th = 0.5 * w, 0.11 * it[2]
            cy = base - 0.5 * it[2]
            cv2.rectangle(tex, (round((x + (w - hw) / 2) * s), round((cy - th / 2) * s)),
                          (round((x + (w + hw) / 2) * s), round((cy + th / 2) * s)), spec.ink, -1)
        spans.append((x, x + w))
        x += w
    return spans


def _eu_band(tex: np.ndarray, s: float, h_mm: float, x0: float, w_mm: float, code: str, stars: bool,
             union_flag: bool) -> None:
    """The blue band: a ring of 12 yellow stars (EU) or a simplified Union flag, and the country letters."""
    cv2.rectangle(tex, (round(x0 * s), 0), (round((x0 + w_mm) * s) - 1, tex.shape[0] - 1), EU_BLUE, -1)
    cx = x0 + w_mm / 2
    if stars:
        r = 0.19 * h_mm
        for i in range(12):
            a = 2 * math.pi * i / 12
            p = (round((cx + r * math.cos(a)) * s * 16), round((0.33 * h_mm + r * math.sin(a)) * s * 16))
            cv2.circle(tex, p, max(16, round(1.9 * s * 16)), EU_YELLOW, -1, cv2.LINE_AA, 4)
    elif union_flag:
        fw, fh = 0.8 * w_mm, 0.42 * w_mm
        fx, fy = cx - fw / 2, 0.12 * h_mm
        flag = np.zeros((max(2, round(fh * s)), max(2, round(fw * s)), 3), np.float32)
        flag[:] = (1, 33, 105)
        H, W = flag.shape[:2]
        t = max(1, round(0.12 * H))
        for p, q in (((0, 0), (W - 1, H - 1)), ((0, H - 1), (W - 1, 0))):
            cv2.line(flag, p, q, (255, 255, 255), 2 * t, cv2.LINE_AA)
            cv2.line(flag, p, q, (200, 16, 46), max(1, t // 2), cv2.LINE_AA)
        cv2.rectangle(flag, (W // 2 - t, 0), (W // 2 + t, H), (255, 255, 255), -1)
        cv2.rectangle(flag, (0, H // 2 - t), (W, H // 2 + t), (255, 255, 255), -1)
        cv2.rectangle(flag, (W // 2 - t // 2, 0), (W // 2 + t // 2, H), (200, 16, 46), -1)
        cv2.rectangle(flag, (0, H // 2 - t // 2), (W, H // 2 + t // 2), (200, 16, 46), -1)
        y, x = round(fy * s), round(fx * s)
        tex[y:y + H, x:x + W] = flag[: tex.shape[0] - y, : tex.shape[1] - x]
    m = text_mask(code, SANS)
    ch = 0.26 * h_mm
    cw = min(0.8 * w_mm, m.shape[1] / m.shape[0] * ch)
    _paint(tex, m, (cx - cw / 2) * s, 0.62 * h_mm * s, cw * s, ch * s, (255, 255, 255))


def _screws(tex: np.ndarray, s: float, spec: PlateSpec, rng: np.random.Generator) -> None:
    """Two (EU) or four (US) screw heads: a metallic or plate-coloured cap with a darker slot."""
    w, h = spec.size_mm
    if spec.country == "US":
        pts = [(0.17 * w, 0.1 * h), (0.83 * w, 0.1 * h)] + ([(0.17 * w, 0.9 * h), (0.83 * w, 0.9 * h)]
                                                           if rng.random() < 0.5 else [])
    else:
        y = 0.1 * h
        pts = [(0.22 * w, y), (0.8 * w, y)]
    grey = float(rng.uniform(120, 200))
    for x, y in pts:
        c = (round(x * s * 16), round(y * s * 16))
        r = max(16, round(3.5 * s * 16))
        cv2.circle(tex, c, r, (grey, grey, grey * 0.97), -1, cv2.LINE_AA, 4)
        cv2.circle(tex, c, max(8, r // 3), (grey * 0.4,) * 3, -1, cv2.LINE_AA, 4)


def _dirt(tex: np.ndarray, rng: np.random.Generator) -> None:
    """Speckle and a low-frequency grime layer: a plate is rarely clean, and a reader should not need it."""
    h, w = tex.shape[:2]
    n = int(rng.integers(20, 120))
    ys, xs = rng.integers(0, h, n), rng.integers(0, w, n)
    rs = rng.uniform(0.3, 1.6, n) * max(1.0, h / 110)
    for x, y, r in zip(xs, ys, rs):
        c = float(rng.uniform(60, 120))
        cv2.circle(tex, (int(x), int(y)), max(1, round(r)), (c, c * 0.9, c * 0.75), -1, cv2.LINE_AA)
    low = rng.uniform(0.0, 1.0, (4, 8)).astype(np.float32)
    grime = cv2.resize(low, (w, h), interpolation=cv2.INTER_CUBIC)
    tex *= (1.0 - float(rng.uniform(0.05, 0.22)) * np.clip(grime, 0, 1))[..., None]


def render_plate(spec: PlateSpec, rng: np.random.Generator, width_px: int) -> tuple[np.ndarray, np.ndarray]:
    """The flat plate (RGB float 0-255, alpha float 0-1) ``width_px`` wide: the caller renders it about 1.5 x
    larger than it will appear, so the perspective warp only downsamples."""
    w_mm, h_mm = spec.size_mm
    s = width_px / w_mm
    tw, th = max(8, round(w_mm * s)), max(4, round(h_mm * s))
    tex = np.empty((th, tw, 3), np.float32)
    bg = np.asarray(spec.bg, np.float32) * float(rng.uniform(0.93, 1.02))
    tex[:] = np.clip(bg, 0, 255)
    # retroreflective sheeting is not perfectly even
    tex *= (1.0 + 0.04 * np.linspace(-1, 1, tw, dtype=np.float32) * float(rng.uniform(-1, 1)))[None, :, None]
    x0, x1 = 8.0, w_mm - 8.0
    if spec.band:
        bw = 50.0 if spec.country == "GB" else 44.0
        _eu_band(tex, s, h_mm, 0.0, bw, spec.band, spec.stars, spec.union_flag)
        x0 = bw + 6.0
    if spec.right_band is not None:
        bw = 44.0
        cv2.rectangle(tex, (round((w_mm - bw) * s), 0), (tw - 1, th - 1), EU_BLUE, -1)
        if spec.right_band:
            m = text_mask(spec.right_band, SANS)
            ch = 0.3 * h_mm
            cw = min(0.7 * bw, m.shape[1] / m.shape[0] * ch)
            _paint(tex, m, (w_mm - bw / 2 - cw / 2) * s, 0.6 * h_mm * s, cw * s, ch * s, (255, 255, 255))
            cv2.circle(tex, (round((w_mm - bw / 2) * s * 16), round(0.3 * h_mm * s * 16)),
                       max(16, round(9 * s * 16)), (255, 255, 255), max(1, round(2.5 * s)), cv2.LINE_AA, 4)
        x1 = w_mm - bw - 6.0
    if spec.ru_region:
        xb = 0.78 * w_mm
        x1 = xb - 6.0
        cv2.line(tex, (round(xb * s), 0), (round(xb * s), th - 1), INK, max(1, round(1.8 * s)), cv2.LINE_AA)
        bw = w_mm - xb - 10
        m = text_mask(spec.ru_region, SANS)
        dh = 0.5 * h_mm
        dw = min(bw, m.shape[1] / m.shape[0] * dh)
        _paint(tex, m, (xb + 5 + (bw - dw) / 2) * s, 0.1 * h_mm * s, dw * s, dh * s, INK)
        m = text_mask("RUS", SANS)
        rh = 0.15 * h_mm
        rw = m.shape[1] / m.shape[0] * rh
        fw = 0.6 * rw
        lx = xb + 5 + (bw - rw - fw - 3) / 2
        _paint(tex, m, lx * s, 0.7 * h_mm * s, rw * s, rh * s, INK)
        fx, fy = lx + rw + 3, 0.7 * h_mm
        for i, col in enumerate(((255, 255, 255), (0, 57, 166), (213, 43, 30))):
            cv2.rectangle(tex, (round(fx * s), round((fy + i * rh / 3) * s)),
                          (round((fx + fw) * s), round((fy + (i + 1) * rh / 3) * s)), col, -1)
        cv2.rectangle(tex, (round(fx * s), round(fy * s)), (round((fx + fw) * s), round((fy + rh) * s)),
                      INK, 1)
    if spec.state_word:
        word, colour, wh = spec.state_word
        m = text_mask(word, SANS)
        ww = min(0.7 * w_mm, m.shape[1] / m.shape[0] * wh)
        _paint(tex, m, (w_mm - ww) / 2 * s, 0.07 * h_mm * s, ww * s, wh * s, colour)
    if spec.slogan:
        m = text_mask(spec.slogan, SANS)
        sh = 0.075 * h_mm
        sw = min(0.75 * w_mm, m.shape[1] / m.shape[0] * sh)
        _paint(tex, m, (w_mm - sw) / 2 * s, 0.86 * h_mm * s, sw * s, sh * s, spec.ink)
    spans = _row(tex, s, spec, x0, x1, spec.baseline * h_mm)
    if spec.seals_after is not None:
        g0, g1 = spans[spec.seals_after]
        cx = (g0 + g1) / 2
        r = min(10.0, 0.45 * (g1 - g0))
        seals = [0.68] + ([0.3] if spec.extra.get("rear") else [])
        state = tuple(float(v) for v in
                      rng.choice([(200, 30, 40), (30, 90, 170), (20, 120, 60), (60, 60, 60)]))
        for j, cy in enumerate(seals):
            c, rr = (round(cx * s * 16), round(cy * h_mm * s * 16)), max(16, round(r * s * 16))
            if j == 0:  # state seal: a silver disc, a coloured ring and a coat of arms in the middle
                cv2.circle(tex, c, rr, (200, 200, 196), -1, cv2.LINE_AA, 4)
                cv2.circle(tex, c, round(rr * 0.8), state, max(1, round(1.6 * s)), cv2.LINE_AA, 4)
                cv2.circle(tex, c, round(rr * 0.45), state, -1, cv2.LINE_AA, 4)
            else:  # inspection sticker: a coloured disc with a darker sector grid
                col = tuple(float(v) for v in rng.choice(
                    [(230, 120, 170), (90, 170, 90), (240, 150, 40), (80, 140, 220), (230, 210, 60)]))
                cv2.circle(tex, c, rr, col, -1, cv2.LINE_AA, 4)
                for deg in range(0, 360, 30):
                    rad = math.radians(deg)
                    e = (round(c[0] + rr * math.cos(rad)), round(c[1] + rr * math.sin(rad)))
                    cv2.line(tex, c, e, tuple(0.6 * v for v in col), 1, cv2.LINE_AA, 4)
            cv2.circle(tex, c, rr, (90, 90, 90), max(1, round(0.6 * s)), cv2.LINE_AA, 4)
    if rng.random() < 0.6:
        _screws(tex, s, spec, rng)
    if rng.random() < 0.4:
        _dirt(tex, rng)
    radius = float(rng.uniform(3, 8)) * s
    outer = _rounded(th, tw, radius)
    t = float(rng.uniform(0.8, 2.0)) * s * (1.6 if spec.country == "RU" else 1.0)
    inset = float(rng.uniform(0.0, 1.5)) * s
    ring = np.clip(_rounded(th, tw, radius, inset) - _rounded(th, tw, radius, inset + max(1.0, t)), 0, 1)
    border = INK if spec.country == "RU" else (40, 40, 44)
    tex *= 1.0 - ring[..., None]
    tex += ring[..., None] * np.asarray(border, np.float32)
    return np.clip(tex, 0, 255), outer


# ------------------------------------------------------------------------------------------------ geometry


def _rotation(yaw: float, pitch: float, roll: float) -> np.ndarray:
    cy, sy, cp, sp, cr, sr = (math.cos(yaw), math.sin(yaw), math.cos(pitch), math.sin(pitch),
                              math.cos(roll), math.sin(roll))
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rx = np.array([[1, 0, 0], [0, cp, -sp], [0, sp, cp]])
    rz = np.array([[cr, -sr, 0], [sr, cr, 0], [0, 0, 1]])
    return rz @ rx @ ry


def pose_quad(rng: np.random.Generator, size_mm: tuple[float, float], width_px: float,
              img_w: int) -> np.ndarray:
    """The plate's corners (TL TR BR BL, centred on 0) seen by a pinhole camera: a 3-D rectangle turned by
    yaw +-35, pitch +-15 and roll +-8 degrees at the distance where its frontal width is ``width_px``.
    Projecting the rectangle keeps the four corners mutually consistent (vanishing points), unlike independent
    jitter."""
    w, h = size_mm
    r = _rotation(math.radians(rng.uniform(-35, 35)), math.radians(rng.uniform(-15, 15)),
                  math.radians(rng.uniform(-8, 8)))
    f = float(rng.uniform(0.7, 1.3)) * img_w
    z = f * w / width_px
    p = np.array([[-w / 2, -h / 2, 0], [w / 2, -h / 2, 0], [w / 2, h / 2, 0], [-w / 2, h / 2, 0]], np.float64)
    x = p @ r.T
    x[:, 2] += z
    return f * x[:, :2] / x[:, 2:3]


def composite(img: np.ndarray, rgb: np.ndarray, alpha: np.ndarray, quad: np.ndarray, *,
              blur: float = 0.0) -> None:
    """Warp the flat ``rgb``/``alpha`` onto ``quad`` (output pixels, top-left-corner origin) and blend into
    the uint8 ``img`` in place. Premultiplied alpha, so the anti-aliased edge picks up no dark fringe."""
    ih, iw = img.shape[:2]
    x0, y0 = max(0, math.floor(quad[:, 0].min()) - 2), max(0, math.floor(quad[:, 1].min()) - 2)
    x1, y1 = min(iw, math.ceil(quad[:, 0].max()) + 2), min(ih, math.ceil(quad[:, 1].max()) + 2)
    if x1 <= x0 or y1 <= y0:
        return
    th, tw = alpha.shape
    src = np.float32([[0, 0], [tw, 0], [tw, th], [0, th]]) - 0.5
    dst = (quad - [x0, y0] - 0.5).astype(np.float32)
    hom = cv2.getPerspectiveTransform(src, dst)
    size = (x1 - x0, y1 - y0)
    pre = np.ascontiguousarray(rgb * alpha[..., None])
    wp = cv2.warpPerspective(pre, hom, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    wa = cv2.warpPerspective(alpha, hom, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    if blur > 0:
        wp = cv2.GaussianBlur(wp, (0, 0), blur)
        wa = cv2.GaussianBlur(wa, (0, 0), blur)
    roi = img[y0:y1, x0:x1].astype(np.float32)
    out = wp + (1.0 - wa[..., None]) * roi
    img[y0:y1, x0:x1] = np.clip(out + 0.5, 0, 255).astype(np.uint8)


def _holder_shadow(img: np.ndarray, quad: np.ndarray, rng: np.random.Generator) -> None:
    """A soft dark halo just outside the plate: the recess or holder it sits in (never pasted on)."""
    c = quad.mean(axis=0)
    big = c + (quad - c) * float(rng.uniform(1.04, 1.12))
    ih, iw = img.shape[:2]
    pw = float(np.ptp(quad[:, 0]))
    pad = int(0.2 * pw) + 4
    x0, y0 = max(0, int(big[:, 0].min()) - pad), max(0, int(big[:, 1].min()) - pad)
    x1, y1 = min(iw, int(big[:, 0].max()) + pad), min(ih, int(big[:, 1].max()) + pad)
    m = np.zeros((y1 - y0, x1 - x0), np.float32)
    cv2.fillPoly(m, [np.round((big - [x0, y0]) * 16).astype(np.int32)], 1.0, cv2.LINE_AA, 4)
    m = cv2.GaussianBlur(m, (0, 0), max(1.0, 0.03 * pw))
    k = float(rng.uniform(0.25, 0.55))
    img[y0:y1, x0:x1] = np.clip(img[y0:y1, x0:x1] * (1.0 - k * m[..., None]), 0, 255).astype(np.uint8)


def _box(quad: np.ndarray, w: int, h: int) -> tuple[int, int, int, int]:
    return (max(0, math.floor(quad[:, 0].min())), max(0, math.floor(quad[:, 1].min())),
            min(w, math.ceil(quad[:, 0].max())), min(h, math.ceil(quad[:, 1].max())))


def place_plate(rng: np.random.Generator, spec: PlateSpec, img_w: int, img_h: int) -> np.ndarray:
    """Corners of the plate on the lower middle of the photo: width 6-28 % of the image (log-uniform, so far
    and near plates weigh alike), inside rows 45-90 % and columns 15-85 % when it fits, always inside."""
    width = img_w * math.exp(rng.uniform(math.log(0.06), math.log(0.28)))
    q = pose_quad(rng, spec.size_mm, width, img_w)
    m = 3.0
    lo_x, hi_x = max(0.15 * img_w, m - q[:, 0].min()), min(0.85 * img_w, img_w - m - q[:, 0].max())
    lo_y, hi_y = max(0.45 * img_h - q[:, 1].min(), m - q[:, 1].min()), min(0.90 * img_h - q[:, 1].max(),
                                                                          img_h - m - q[:, 1].max())
    cx = rng.uniform(lo_x, hi_x) if hi_x > lo_x else (m - q[:, 0].min() + img_w - m - q[:, 0].max()) / 2
    cy = rng.uniform(lo_y, hi_y) if hi_y > lo_y else (m - q[:, 1].min() + img_h - m - q[:, 1].max()) / 2
    return q + [cx, cy]


# ------------------------------------------------------------------------------------------------ distractors


def _distractor_text(rng: np.random.Generator, kind: str) -> str:
    if kind == "watermark":
        return str(rng.choice(WATERMARKS))
    if kind == "date":
        y, mo, d = int(rng.integers(2008, 2025)), int(rng.integers(1, 13)), int(rng.integers(1, 29))
        fmt = int(rng.integers(0, 3))
        if fmt == 0:
            return f"{MONTHS[mo - 1]} {d} {y}"
        if fmt == 1:
            return f"{y}/{mo:02d}/{d:02d} {int(rng.integers(0, 24)):02d}:{int(rng.integers(0, 60)):02d}"
        return f"{d:02d}.{mo:02d}.{y}"
    if kind == "phone":
        fmt = int(rng.integers(0, 3))
        if fmt == 0:
            return f"0800 {_digits(rng, 3)} {_digits(rng, 4)}"
        if fmt == 1:
            return f"({_digits(rng, 3, True)}) {_digits(rng, 3)}-{_digits(rng, 4)}"
        return f"+44 {_digits(rng, 2)} {_digits(rng, 4)} {_digits(rng, 4)}"
    if kind == "dealer":
        return str(rng.choice(DEALERS))
    if kind == "vin":
        wmi = str(rng.choice(VIN_WMI))
        vin = wmi + _letters(rng, VIN_CHARS, 17 - len(wmi))
        return vin if rng.random() < 0.6 else vin[-int(rng.integers(8, 13)):]
    return str(rng.choice(TYRES))


def render_distractor(rng: np.random.Generator, kind: str, img_h: int) -> tuple[str, np.ndarray, np.ndarray]:
    """One distractor as (text, RGB float, alpha float): bare text (watermark, date stamp) or a sticker/label
    with text on it (phone, dealer, VIN, tyre). Sizes are those of such items in a photo of this height."""
    text = _distractor_text(rng, kind)
    font = MONO if kind in ("date", "vin") else SANS
    m = text_mask(text, font)
    frac = {"watermark": (0.05, 0.11), "date": (0.018, 0.035)}.get(kind, (0.02, 0.05))
    th = max(8.0, img_h * float(rng.uniform(*frac)))
    tw = m.shape[1] / m.shape[0] * th
    pad = 0.0 if kind in ("watermark", "date") else 0.35 * th
    w, h = round(tw + 2 * pad), round(th + 2 * pad)
    rgb = np.zeros((h, w, 3), np.float32)
    alpha = np.zeros((h, w), np.float32)
    if kind == "watermark":
        col, opacity = (255, 255, 255), float(rng.uniform(0.35, 0.65))
    elif kind == "date":
        col = tuple(float(v) for v in rng.choice([(255, 150, 30), (255, 215, 60), (250, 90, 40)]))
        opacity = 0.95
    else:
        bg, col = {"phone": ((255, 255, 255), (200, 20, 30)), "dealer": ((20, 60, 160), (255, 255, 255)),
                   "vin": ((225, 225, 220), (20, 20, 20)), "tyre": ((38, 38, 40), (150, 150, 150))}[kind]
        if kind in ("phone", "dealer") and rng.random() < 0.5:
            bg, col = col, bg
        rgb[:] = bg
        alpha[:] = _rounded(h, w, 0.25 * h)
        opacity = 1.0
    if kind in ("watermark", "date"):
        # bare text: the alpha is the text itself
        a = np.zeros((h, w, 3), np.float32)
        _paint(a, m, pad, pad, tw, th, (255.0, 255.0, 255.0))
        alpha = a[..., 0] / 255.0 * opacity
        rgb[:] = col
    else:
        _paint(rgb, m, pad, pad, tw, th, col)
    return text, rgb, alpha


def _overlaps(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def add_distractors(img: np.ndarray, rng: np.random.Generator, avoid: list[tuple[float, ...]]) -> list[str]:
    """Draw 1-3 distractors, each flat or slightly warped (rotation +-10 degrees, corner jitter up to 6 %),
    where its box overlaps neither ``avoid`` (the plate with a margin) nor another distractor."""
    ih, iw = img.shape[:2]
    texts: list[str] = []
    taken = list(avoid)
    for kind in rng.choice(DISTRACTOR_KINDS, size=int(rng.integers(1, 4)), replace=False):
        text, rgb, alpha = render_distractor(rng, str(kind), ih)
        h, w = alpha.shape
        if w > 0.9 * iw:  # a long watermark on a small photo: scale it down
            k = 0.9 * iw / w
            rgb = cv2.resize(rgb, (max(2, int(w * k)), max(2, int(h * k))), interpolation=cv2.INTER_AREA)
            alpha = cv2.resize(alpha, (rgb.shape[1], rgb.shape[0]), interpolation=cv2.INTER_AREA)
            h, w = alpha.shape
        base = np.array([[-w / 2, -h / 2], [w / 2, -h / 2], [w / 2, h / 2], [-w / 2, h / 2]], np.float64)
        ang = math.radians(rng.uniform(-10, 10)) if rng.random() < 0.6 else 0.0
        rot = np.array([[math.cos(ang), -math.sin(ang)], [math.sin(ang), math.cos(ang)]])
        q = base @ rot.T
        if rng.random() < 0.5:
            q = q + rng.uniform(-0.06, 0.06, (4, 2)) * [w, h]
        for _ in range(40):
            lo, hi = -q.min(axis=0) + 4, np.array([iw, ih]) - q.max(axis=0) - 4
            if np.any(hi <= lo):
                break
            quad = q + rng.uniform(lo, hi)
            box = (quad[:, 0].min() - 4, quad[:, 1].min() - 4, quad[:, 0].max() + 4, quad[:, 1].max() + 4)
            if not any(_overlaps(box, t) for t in taken):
                composite(img, rgb, alpha, quad)
                taken.append(box)
                texts.append(text)
                break
    return texts


# ------------------------------------------------------------------------------------------- degradations


def _light_across(img: np.ndarray, rng: np.random.Generator,
                  around: tuple[float, float, float, float]) -> None:
    """A light gradient or the soft edge of a cast shadow over the whole image, its transition crossing the
    region ``around`` (x1, y1, x2, y2): uneven light is what makes binarising a plate hard. The factor map is
    smooth, so it is computed at 1/8 resolution and upsampled."""
    ih, iw = img.shape[:2]
    x1, y1, x2, y2 = around
    pw = max(x2 - x1, 8.0)
    sh, sw = max(2, ih // 8), max(2, iw // 8)
    ys, xs = np.mgrid[0:sh, 0:sw].astype(np.float32)
    xs, ys = (xs + 0.5) * (iw / sw), (ys + 0.5) * (ih / sh)
    ang = rng.uniform(0, 2 * math.pi)
    px, py = rng.uniform(x1, x2), rng.uniform(y1, y2)
    d = (xs - px) * math.cos(ang) + (ys - py) * math.sin(ang)
    if rng.random() < 0.5:
        soft = float(rng.uniform(0.02, 0.15)) * pw + 2.0
        k = float(rng.uniform(0.35, 0.75))
        f = 1.0 - (1.0 - k) / (1.0 + np.exp(np.clip(-d / soft, -60, 60)))
    else:
        f = 1.0 + float(rng.uniform(0.2, 0.5)) * np.clip(d / pw, -1, 1)
    f = cv2.resize(f.astype(np.float32), (iw, ih), interpolation=cv2.INTER_LINEAR)
    img[:] = np.clip(img * f[..., None], 0, 255).astype(np.uint8)


def _motion_kernel(length: float, angle: float) -> np.ndarray:
    n = max(3, math.ceil(length) | 1)
    k = np.zeros((n, n), np.float32)
    c = n // 2
    dx, dy = math.cos(angle) * length / 2, math.sin(angle) * length / 2
    cv2.line(k, (round((c - dx) * 16), round((c - dy) * 16)), (round((c + dx) * 16), round((c + dy) * 16)),
             1.0, 1, cv2.LINE_AA, 4)
    return k / max(k.sum(), 1e-6)


def degrade(img: np.ndarray, rng: np.random.Generator, plate_box: tuple[float, ...] | None,
            char_px: float = 1e9) -> np.ndarray:
    """Light across the plate (30 %), gamma 0.7-1.4, blur up to 2.5 px (50 %: Gaussian or motion) and sensor
    noise, on the whole image (negatives too, so that no step marks the class). The blur is also capped at
    6 % of the plate's character height ``char_px``: beyond that a small plate is no longer legible to a
    person, and its label would be a guess."""
    ih, iw = img.shape[:2]
    if rng.random() < 0.3:
        if plate_box is None:
            cx, cy, pw = rng.uniform(0.2, 0.8) * iw, rng.uniform(0.45, 0.9) * ih, rng.uniform(0.06, 0.28) * iw
            plate_box = (cx - pw / 2, cy - pw / 8, cx + pw / 2, cy + pw / 8)
        _light_across(img, rng, plate_box)
    gamma = float(rng.uniform(0.7, 1.4))
    lut = np.clip(255.0 * (np.arange(256) / 255.0) ** gamma + 0.5, 0, 255).astype(np.uint8)
    img = cv2.LUT(img, lut)
    if rng.random() < 0.5:
        amount = min(float(rng.uniform(0.3, 2.5)), max(0.3, 0.06 * char_px))
        if rng.random() < 0.5:
            img = cv2.GaussianBlur(img, (0, 0), amount)
        else:
            img = cv2.filter2D(img, -1, _motion_kernel(2 * amount, rng.uniform(0, math.pi)))
    sigma = float(rng.uniform(1.5, 5.0))
    luma = rng.standard_normal((ih, iw), dtype=np.float32) * sigma
    out = img.astype(np.float32)
    out += luma[..., None]
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


# ------------------------------------------------------------------------------------------------ suite


def make_scene(rng: np.random.Generator, source: Path,
               style: str | None) -> tuple[np.ndarray, dict[str, str]]:
    """One image and its label row (without ``image``): a plate of ``style`` (None: a negative)."""
    img = _background(source, rng)
    ih, iw = img.shape[:2]
    row = {c: "" for c in COLUMNS if c != "image"}
    box = None
    char_px = 1e9
    avoid: list[tuple[float, ...]] = []
    if style is not None:
        spec = SPEC_MAKERS[style](rng)
        quad = place_plate(rng, spec, iw, ih)
        pw = float(np.ptp(quad[:, 0]))
        rgb, alpha = render_plate(spec, rng, max(60, round(1.5 * pw)))
        if rng.random() < 0.5:
            _holder_shadow(img, quad, rng)
        edge_px = (np.linalg.norm(quad[3] - quad[0]) + np.linalg.norm(quad[2] - quad[1])) / 2
        char_px = edge_px * max(it[2] for it in spec.items if it[0] == "text") / spec.size_mm[1]
        composite(img, rgb, alpha, quad, blur=min(float(rng.uniform(0.3, 0.9)), max(0.2, 0.04 * char_px)))
        box = _box(quad, iw, ih)
        row.update(plate_text=spec.text, country=spec.country, style=spec.style,
                   x1=str(box[0]), y1=str(box[1]), x2=str(box[2]), y2=str(box[3]))
        for name, (x, y) in zip(("tl", "tr", "br", "bl"), quad):
            row[f"{name}x"], row[f"{name}y"] = f"{x:.1f}", f"{y:.1f}"
        margin = 0.15 * pw + 6
        avoid = [(box[0] - margin, box[1] - margin, box[2] + margin, box[3] + margin)]
    texts: list[str] = []
    if style is None or rng.random() < 0.5:
        texts = add_distractors(img, rng, avoid)
    row["distractors"] = "|".join(texts)
    return degrade(img, rng, box, char_px), row


def generate(out_dir: Path, *, n: int = 240, negatives: int = 60, seed: int = 0,
             sources: Path | None = None) -> Path:
    """Writes out_dir/images/*.jpg and out_dir/labels.csv; returns the labels path.

    ``n`` plates, styles in equal turns (a seeded shuffle of the cycle), and ``negatives`` plate-free photos,
    interleaved by a seeded permutation so any prefix of the CSV has both. Image ``i`` uses its own generator
    ``default_rng([seed, i])``, so the bytes depend only on (sources, n, negatives, seed)."""
    src = Path(sources) if sources is not None else DEFAULT_SOURCE
    photos = list_sources(src) if src.is_dir() else []
    if not photos:
        raise FileNotFoundError(f"no car photos for the Latin plate suite in {src} (expected "
                                f"{' and '.join(SOURCE_SUBDIRS)} with .jpg files: the shared "
                                "car_damage_roboflow data, CC BY 4.0)")
    out_dir = Path(out_dir)
    (out_dir / "images").mkdir(parents=True, exist_ok=True)
    top = np.random.default_rng([seed, 1_000_003])
    styles = [STYLES[i % len(STYLES)] for i in range(n)]
    styles = [styles[i] for i in top.permutation(n)]
    kinds: list[str | None] = [*styles, *([None] * negatives)]
    kinds = [kinds[i] for i in top.permutation(len(kinds))]
    rows = []
    for i, style in enumerate(kinds):
        rng = np.random.default_rng([seed, i])
        source = photos[int(rng.integers(len(photos)))]
        img, row = make_scene(rng, source, style)
        name = f"images/{i:05d}.jpg"
        Image.fromarray(img).save(out_dir / name, format="JPEG", quality=int(rng.integers(60, 96)))
        rows.append({"image": name, **row})
    labels = out_dir / "labels.csv"
    with labels.open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS)
        w.writeheader()
        w.writerows(rows)
    return labels


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--n", type=int, default=240)
    ap.add_argument("--negatives", type=int, default=60)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--sources", type=Path, default=None)
    a = ap.parse_args(argv)
    t0 = time.perf_counter()
    path = generate(a.out, n=a.n, negatives=a.negatives, seed=a.seed, sources=a.sources)
    print(f"{path}: {a.n} plates + {a.negatives} negatives in {time.perf_counter() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
