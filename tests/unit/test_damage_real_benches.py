"""#14: the damage bench in the 18-class taxonomy (partial labels by group), the dev/test split of the real genuine
damage photos, the same-vehicle pairs and the swap verdict's colour evidence."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from claimlens.bench.damage import (
    DAMAGE_CLASSES,
    PART_CLASSES,
    TAXONOMY,
    _taxonomy_metrics,
    agnostic,
    class_scope,
    evaluate,
    is_taxonomy,
    read_names,
    to_taxonomy,
)
from claimlens.bench.parts import group_half
from claimlens.datasets.damage_suite import dev_test_half, photo_group, taxonomy_rows
from claimlens.vision.damage import same_part as SP
from tests.conftest import shared_data


def test_taxonomy_names_and_aliases(tmp_path: Path) -> None:
    assert len(TAXONOMY) == 18 and set(DAMAGE_CLASSES).isdisjoint(PART_CLASSES)
    assert is_taxonomy([n.upper() for n in TAXONOMY]) and not is_taxonomy(TAXONOMY[:-1])
    assert to_taxonomy("bonnet") == ("hood",) and to_taxonomy("light") == ("headlamp", "taillamp")
    assert to_taxonomy("scratch") == ("scratch",) and to_taxonomy("fender") == ()
    (tmp_path / "classes.txt").write_text("scratch\ndent\n")  # no data.yaml: classes.txt
    assert read_names(tmp_path) == ["scratch", "dent"]


def test_partial_labels_score_each_class_on_its_group_only() -> None:
    groups = {"d": "damage", "p": "parts"}
    scope = class_scope(["d", "p"], groups)
    assert scope["scratch"] == {"d"} and scope["door"] == {"p"}
    gt = {"d": [("scratch", (0, 0, 10, 10))], "p": [("door", (0, 0, 50, 50))]}
    # a door found in the damage photo is not a false positive (doors are not labelled there), nor a scratch on
    # the part photo; both true boxes found -> AP 1 each
    preds = {"d": [("door", 0.99, (20, 20, 60, 60)), ("scratch", 0.5, (0, 0, 10, 10))],
             "p": [("scratch", 0.99, (5, 5, 9, 9)), ("door", 0.4, (0, 0, 50, 50))]}
    aps = evaluate(preds, gt, ["scratch", "door"], scope=scope)[0.5]
    assert aps == {"scratch": pytest.approx(1.0), "door": pytest.approx(1.0)}
    unmasked = evaluate(preds, gt, ["scratch", "door"])[0.5]
    assert unmasked["scratch"] == pytest.approx(0.5) and unmasked["door"] == pytest.approx(0.5)


def test_taxonomy_metrics_means_and_class_agnostic_damage() -> None:
    groups = {"d1": "damage", "d2": "damage", "p1": "parts"}
    gt = {"d1": [("scratch", (0, 0, 10, 10)), ("dent", (30, 30, 50, 50))], "d2": [("dent", (0, 0, 20, 20))],
          "p1": [("hood", (0, 0, 100, 50)), ("headlamp", (0, 60, 20, 80))]}
    # an old damaged-part model: its boxes are parts; class-agnostic damage uses all of them
    raw = {"d1": [("bumper", 0.9, (0, 0, 10, 10)), ("door", 0.8, (30, 30, 50, 50))],
           "d2": [("bonnet", 0.7, (100, 100, 120, 120))],
           "p1": [("bonnet", 0.9, (0, 0, 100, 50)), ("light", 0.3, (0, 60, 20, 80))]}
    m = _taxonomy_metrics(raw, gt, groups, ("bonnet", "bumper", "door", "light", "fender"),
                          [0.5], 0.1)
    assert m["per_class"]["scratch"] == 0.0 and m["per_class"]["dent"] == 0.0  # no damage classes in the model
    assert m["per_class"]["hood"] == pytest.approx(1.0) and m["per_class"]["headlamp"] == pytest.approx(1.0)
    assert m["parts_map50"] == pytest.approx(1.0) and m["damage_map50"] == 0.0
    assert set(m["per_class"]) == {"scratch", "dent", "hood", "headlamp"}  # absent classes out of every mean
    assert m["map50"] == pytest.approx(0.5)
    # class-agnostic: 2 of 3 damage boxes found, the one false box ranked last -> AP 2/3
    assert m["damage_any_ap50"] == pytest.approx(2 / 3, abs=1e-4)
    assert m["model_classes_unmapped"] == ["fender"] and "every box" in m["damage_any_from"]
    # a model with damage classes: only those count as damage boxes
    p, g = agnostic({"d1": [("scratch", 0.9, (0, 0, 10, 10)), ("door", 0.95, (1, 1, 9, 9))]}, gt, {"scratch"},
                    set(DAMAGE_CLASSES), {"d1"})
    assert [x[0] for x in p["d1"]] == ["any"] and len(p["d1"]) == 1 and len(g["d1"]) == 2


def test_photo_groups_and_halves_are_deterministic() -> None:
    assert photo_group("images/scr_204_101_20_0aca7cf6-ec7a_jpg.rf.e1.jpg") == "scr_204_101_20"
    assert photo_group("images/sev_8004567-honda-jazz-minor_scratch_jpg.rf.ab.jpg") == "sev_8004567"
    assert (photo_group("images/sev_maruti-suzuki-alto-2022-1727671630_01_jpeg.rf.x.jpg")
            == photo_group("images/sev_maruti-suzuki-alto-2022-1727671630_02_jpeg.rf.y.jpg"))
    assert photo_group("images/bilgi_0048144678_5086_jpg.rf.d9.jpg") == "bilgi_0048144678_5086_jpg"
    halves = [dev_test_half(f"images/bilgi_{i}_jpg.rf.x.jpg") for i in range(400)]
    assert 0.4 < halves.count("dev") / 400 < 0.6
    assert dev_test_half("images/scr_204_101_20_a.jpg") == dev_test_half("images/scr_204_101_20_b.jpg")
    assert group_half("veh001") == group_half("veh001") and {group_half(f"veh{i:03d}") for i in range(20)} == {"dev", "test"}


def test_taxonomy_rows_on_the_shared_set() -> None:
    root = shared_data("car_damage_train")
    rows = taxonomy_rows(root, ["scratch"], "val", "damage")
    assert rows and all(r["kind"] == "scratch" and r["half"] in ("dev", "test") for r in rows)
    by_group: dict[str, set[str]] = {}
    for r in rows:
        by_group.setdefault(r["source"], set()).add(r["half"])
    assert all(len(v) == 1 for v in by_group.values())  # a photo group never straddles the halves
    parts = taxonomy_rows(root, ["door"], "val", "parts")
    assert parts and all(r["image"].startswith("images/dsmlr_") for r in parts)
    assert not taxonomy_rows(root, ["door"], "val", "damage")  # partial labels: no part boxes on damage photos


def _panel(colour: tuple[int, int, int]) -> np.ndarray:
    img = np.zeros((120, 160, 3), np.uint8)
    img[:] = colour
    return img


def test_swap_verdict_needs_another_paint_colour() -> None:
    different = SP.SamePartResult(same_score=0.0, decided=True, same=False, inliers=0, tentative=0, agreement=0.0,
                                  keypoints=(300, 300))
    red, red2, blue = _panel((200, 30, 30)), _panel((190, 35, 35)), _panel((30, 40, 200))
    assert SP.colour_difference(red, red2) < SP.SWAP_MIN_COLOUR_DE <= SP.colour_difference(red, blue)
    assert SP.swap_verdict(different, red, blue)[0] == "swapped"
    assert SP.swap_verdict(different, red, red2)[0] == "inconclusive"  # same paint: maybe another spot, same car
    assert SP.swap_verdict(different, red, None) == ("inconclusive", None)
    undecided = SP.SamePartResult(same_score=0.0, decided=False, same=None, inliers=0, tentative=0, agreement=0.0,
                                  keypoints=(10, 300))
    assert SP.swap_verdict(undecided, red, blue) == ("undecided", None)
    same = SP.SamePartResult(same_score=0.9, decided=True, same=True, inliers=40, tentative=50, agreement=0.8,
                             keypoints=(300, 300))
    assert SP.swap_verdict(same, red, blue)[0] == "same"


def _textured(seed: int, colour: tuple[int, int, int]) -> np.ndarray:
    rng = np.random.default_rng(seed)
    img = np.full((240, 320, 3), colour, np.uint8)
    import cv2

    for _ in range(60):  # marks of this panel only
        p = rng.integers(20, 220, 2)
        cv2.circle(img, (int(p[0] + 40), int(p[1])), int(rng.integers(3, 12)), tuple(int(v) for v in rng.integers(0, 255, 3)), -1)
    return img


def test_group_bench_counts_pairs_within_and_across(tmp_path: Path) -> None:
    from PIL import Image

    from claimlens.bench.parts import run_groups

    (tmp_path / "images").mkdir()
    (tmp_path / "labels").mkdir()
    (tmp_path / "classes.txt").write_text("door\n")
    rows = ["group_id,image"]
    # car 1: the same door twice (identical photos); car 2: two photos of another door
    for name, seed, group in (("a1", 1, "g1"), ("a2", 1, "g1"), ("b1", 2, "g2"), ("b2", 3, "g2")):
        Image.fromarray(_textured(seed, (40, 60, 160))).save(tmp_path / "images" / f"{name}.png")
        (tmp_path / "labels" / f"{name}.txt").write_text("0 0.5 0.5 0.9 0.9\n")
        rows.append(f"{group},images/{name}.png")
    (tmp_path / "groups.csv").write_text("\n".join(rows) + "\n")
    out = run_groups(tmp_path, {"regions": "labels", "dump": "1"})
    m = out["metrics"]
    assert m["pairs"] == 2 and m["cross_pairs"] == 4
    verdicts = {(p["a"], p["b"]): p["verdict"] for p in out["within_pairs"]}
    assert verdicts[("images/a1.png", "images/a2.png")] == "same"
    # car 2's two photos show different doors painted alike: no match, same colour -> not a swap accusation
    assert verdicts[("images/b1.png", "images/b2.png")] == "inconclusive"
    assert m["false_swap_rate"] == 0.0 and m["false_same_rate"] == 0.0
    # the v3 rule (marks only) calls it swapped, and the option does not leak into the shipped constant
    v3 = run_groups(tmp_path, {"regions": "labels", "swap_min_colour_de": "0"})["metrics"]
    assert v3["false_swap_rate"] == 0.5 and SP.SWAP_MIN_COLOUR_DE == 56.0
