"""A generated claim set for the score bench (``claimlens bench score --suite``): claim folders in the layout
``claimlens scan`` reads, from real photos, with a known scenario per claim.

Most claims are honest (distinct photos, phone EXIF a few hours after the loss, GPS at the loss place), some
with innocent oddities (a photo without EXIF, a second phone, photos over several days, the same photo sent
twice). The rest carry one planted pattern: a photo (bytes, re-saved, or mirrored and cropped) or three
photos from an earlier claim of the set, one picture five times across survey and reinspection, a photo taken
before the policy started or days before the loss, GPS far from the loss, an editor in the EXIF Software tag.
``labels.csv`` (claim_id, scenario, planted 0/1) says which, so the bench measures how the score ranks
planted claims above honest ones, besides its spread.

SYNTHETIC claim mix: the proportions below are a guess, not a measured fraud rate. The photos are real
(car_damage_roboflow, CC BY 4.0; the pairs in its known_duplicates.csv are left out), so the checks' own false
alarms on real photos show up in the honest claims.
"""

from __future__ import annotations

import csv
import io
import json
import random
import shutil
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from PIL import Image

from claimlens.datasets.demo import SHARED_DAMAGE, with_exif

CST = timezone(timedelta(hours=8))
HOME = (31.2304, 121.4737)  # loss place of every claim (Shanghai)
FAR = (34.3416, 108.9398)  # ~1,200 km away (Xi'an)

SCENARIOS: dict[str, tuple[float, bool]] = {
    # name: (share of claims, planted pattern?)
    "honest": (0.45, False),
    "honest_no_exif_photo": (0.06, False),
    "honest_two_phones": (0.05, False),
    "honest_slow_survey": (0.04, False),
    "honest_sent_twice": (0.05, False),
    "reuse_one_bytes": (0.05, True),
    "reuse_one_edited": (0.05, True),
    "reuse_three": (0.04, True),
    "five_copies_across_stages": (0.04, True),
    "before_policy": (0.05, True),
    "before_loss": (0.05, True),
    "gps_far": (0.04, True),
    "edited_software": (0.03, True),
}
"""Scenario shares (they sum to 1) and whether the scenario is a planted pattern."""

_REUSE = {"reuse_one_bytes", "reuse_one_edited", "reuse_three"}


def source_photos(shared: Path = SHARED_DAMAGE) -> list[Path]:
    """The set's photos, sorted, without the second copy of each known duplicate pair."""
    if not shared.is_dir():
        raise SystemExit(f"real photos not found: {shared} (the claim suite needs car_damage_roboflow)")
    skip: set[str] = set()
    dup_csv = shared / "known_duplicates.csv"
    if dup_csv.is_file():
        with dup_csv.open(newline="") as fh:
            skip = {row["image_b"] for row in csv.DictReader(fh)}
    return [p for p in sorted(shared.rglob("*.jpg")) if str(p.relative_to(shared)) not in skip]


def build_claim_suite(out: Path, *, n: int = 80, seed: int = 0, shared: Path = SHARED_DAMAGE) -> Path:
    """Write ``n`` claim folders and ``labels.csv`` into ``out`` (replaced) and return it."""
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    rng = random.Random(seed)
    pool = source_photos(shared)
    rng.shuffle(pool)
    names = list(SCENARIOS)
    scenarios = rng.choices(names, weights=[SCENARIOS[s][0] for s in names], k=n)
    written: list[list[bytes]] = []  # every earlier claim's photos, for reuse
    labels = []
    base = datetime(2026, 1, 5, 9, 0, tzinfo=CST)
    for i, scenario in enumerate(scenarios):
        if scenario in _REUSE and not written:
            scenario = "honest"  # nothing earlier to reuse from
        claim_id = f"GEN-{seed}-{i:04d}"
        loss = base + timedelta(days=2 * i, hours=rng.randint(0, 10))
        policy_start = loss - timedelta(days=rng.randint(30, 300))
        k = rng.randint(3, 6)
        own = [Image.open(pool.pop()).convert("RGB") for _ in range(k)]
        photos = [(f"survey/p{j}.jpg", with_exif(img, loss + timedelta(hours=2, minutes=7 * j), gps=HOME))
                  for j, img in enumerate(own)]
        photos = _plant(scenario, photos, own, loss, policy_start, written, rng)
        fields: dict[str, Any] = {
            "claim_id": claim_id, "policy_id": f"POL-{seed}-{i:04d}",
            "policy_start": policy_start.isoformat(), "policy_end": (policy_start + timedelta(days=365)).isoformat(),
            "loss_time": loss.isoformat(), "report_time": (loss + timedelta(hours=1)).isoformat(),
            "loss_lat": HOME[0], "loss_lon": HOME[1], "loss_type": "collision"}
        folder = out / claim_id
        for rel, data in photos:
            (folder / rel).parent.mkdir(parents=True, exist_ok=True)
            (folder / rel).write_bytes(data)
        (folder / "claim.json").write_text(json.dumps(fields, indent=1), encoding="utf-8")
        written.append([data for rel, data in photos if rel.startswith("survey/p")])
        labels.append({"claim_id": claim_id, "scenario": scenario, "planted": int(SCENARIOS[scenario][1])})
    with (out / "labels.csv").open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=["claim_id", "scenario", "planted"])
        writer.writeheader()
        writer.writerows(labels)
    return out


def _plant(scenario: str, photos: list[tuple[str, bytes]], own: list[Image.Image], loss: datetime,
           policy_start: datetime, written: list[list[bytes]], rng: random.Random) -> list[tuple[str, bytes]]:
    """The claim's photos with the scenario's pattern (or innocent oddity) applied."""
    photos = list(photos)
    if scenario == "honest_no_exif_photo":
        buf = io.BytesIO()
        own[0].save(buf, format="JPEG", quality=90)
        photos[0] = (photos[0][0], buf.getvalue())
    elif scenario == "honest_two_phones":
        photos[-1] = (photos[-1][0], with_exif(own[-1], loss + timedelta(hours=3), make="Apple", model="iPhone 13",
                                               gps=HOME))
    elif scenario == "honest_slow_survey":
        photos[-1] = (photos[-1][0], with_exif(own[-1], loss + timedelta(days=4), gps=HOME))
    elif scenario == "honest_sent_twice":
        resaved = with_exif(own[0], loss + timedelta(hours=2), gps=HOME, quality=80)
        photos.append(("survey/p0_again.jpg", resaved))
    elif scenario == "reuse_one_bytes":
        photos.append(("survey/old.jpg", rng.choice(rng.choice(written))))
    elif scenario == "reuse_one_edited":
        old = Image.open(io.BytesIO(rng.choice(rng.choice(written)))).convert("RGB")
        w, h = old.size
        edited = old.transpose(Image.Transpose.FLIP_LEFT_RIGHT).crop((int(w * .1), int(h * .1), int(w * .9),
                                                                      int(h * .9))).resize((w, h))
        photos.append(("survey/old_edited.jpg", with_exif(edited, loss + timedelta(hours=3), gps=HOME, quality=75)))
    elif scenario == "reuse_three":
        source = rng.choice(written)
        photos += [(f"survey/old{j}.jpg", data) for j, data in enumerate(rng.sample(source, min(3, len(source))))]
    elif scenario == "five_copies_across_stages":
        img = own[0]
        photos += [(f"reinspection/r{j}.jpg", with_exif(img, loss + timedelta(days=9, minutes=j), gps=HOME,
                                                        quality=95 - 5 * j)) for j in range(4)]
    elif scenario == "before_policy":
        photos[0] = (photos[0][0], with_exif(own[0], policy_start - timedelta(days=rng.randint(3, 20)), gps=HOME))
    elif scenario == "before_loss":
        photos[0] = (photos[0][0], with_exif(own[0], loss - timedelta(days=rng.randint(3, 20)), gps=HOME))
    elif scenario == "gps_far":
        photos = [(rel, with_exif(img, loss + timedelta(hours=2, minutes=7 * j), gps=FAR))
                  for j, ((rel, _), img) in enumerate(zip(photos, own, strict=True))]
    elif scenario == "edited_software":
        photos[0] = (photos[0][0], with_exif(own[0], loss + timedelta(hours=2), gps=HOME, software="Adobe Photoshop 25.0"))
    return photos
