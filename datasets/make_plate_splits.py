"""Write the fixed dev/test splits of the real plate sets (issue 15): ``plates_latin_real_split.csv`` and
``plates_cn_split.csv`` (columns ``image,split,group``; ``group`` = one physical vehicle).

Rules (run once; the CSVs are committed and never regenerated from results):

* ``plates_latin_real`` (../shared/data): Indian crops from the Roboflow export's ``train/`` folder are
  ``dev``, its ``valid/`` and ``test/`` folders ``test`` (no two crops share a plate text, MANIFEST).
  Ukrainian whole-vehicle photos are split by vehicle (the MANIFEST's pairs 10/11, 12/13, 24/25 each stay on
  one side): one-line photos 1-13 and two-row 26, 27 are ``dev``; one-line 14-25 and two-row 28, 30 ``test``.
* ``plates_cn`` crops (each crop a different plate): ``dev`` when the first byte of sha1(file name) is
  even, else ``test``. The CCPD frames keep their own file (``plates_ccpd_labels.csv``, development).

Usage: ``python datasets/make_plate_splits.py ../shared/data`` (writes next to this script).
"""

from __future__ import annotations

import csv
import hashlib
import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


# the MANIFEST's pairs of photos of one vehicle
SAME_VEHICLE = {11: 10, 13: 12, 25: 24}


def latin_split(image: str) -> tuple[str, str]:
    """(split, group); the group names the vehicle (no plate text: the Ukrainian labels are GPL-3.0)."""
    if image.startswith("in_crops/"):
        return ("dev" if image.split("/")[1] == "train" else "test"), "in_" + Path(image).stem.split("_")[0]
    n = int(re.search(r"(\d+)\.jpe?g$", image).group(1))
    group = f"ua_{SAME_VEHICLE.get(n, n)}"
    if "/multiline/" in image:
        return ("dev" if n in (26, 27) else "test"), group
    return ("dev" if n <= 13 else "test"), group


def cn_split(image: str) -> str:
    return "dev" if hashlib.sha1(Path(image).name.encode()).digest()[0] % 2 == 0 else "test"


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, encoding="utf-8") as f:
        return list(csv.DictReader(f))


def main(shared: Path) -> None:
    rows = _rows(shared / "plates_latin_real" / "labels.csv")
    with open(HERE / "plates_latin_real_split.csv", "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(["image", "split", "group"])
        for r in rows:
            split, group = latin_split(r["image"])
            w.writerow([r["image"], split, group])
    rows = _rows(shared / "plates_cn" / "labels.csv")
    with open(HERE / "plates_cn_split.csv", "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(["image", "split", "group"])
        for r in rows:
            if r["image"].startswith("crops_lprnet/"):
                w.writerow([r["image"], cn_split(r["image"]), Path(r["image"]).stem])


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "../shared/data"))
