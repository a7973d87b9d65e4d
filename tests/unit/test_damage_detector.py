"""Damaged-part detector: AP computation, NMS, letterbox geometry, YOLO decoding, the split, the shipped model."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from claimlens.bench.damage import (
    assign_splits,
    average_precision,
    evaluate,
    list_images,
    read_boxes,
    source_name,
    voc_ap,
)
from claimlens.vision.damage.detector import (
    DEFAULT_MIN_SCORE,
    PARTS,
    classwise_nms,
    decode_output,
    letterbox,
    nms,
    unletterbox,
)
from tests.conftest import shared_data

# --------------------------------------------------------------------------- AP


def test_ap_hand_made_example() -> None:
    # image a has two boxes, b one. Detections by score: TP(a0), FP, TP(b0), duplicate of a0 (FP); a1 missed.
    gt = {"a": np.array([[0, 0, 10, 10], [20, 20, 30, 30]], float), "b": np.array([[0, 0, 10, 10]], float)}
    dets = [("a", 0.9, (0, 0, 10, 10)), ("a", 0.8, (50, 50, 60, 60)), ("b", 0.7, (1, 1, 10, 10)),
            ("a", 0.6, (0, 0, 10, 9))]
    # recall 1/3, 1/3, 2/3, 2/3; precision 1, 1/2, 2/3, 1/2 -> envelope 1 up to 1/3, 2/3 up to 2/3
    assert average_precision(dets, gt, 0.5) == pytest.approx(1 / 3 * 1 + 1 / 3 * 2 / 3)
    # the same detections in another order give the same AP (sorted by score inside)
    assert average_precision(dets[::-1], gt, 0.5) == pytest.approx(5 / 9)


def test_ap_edges() -> None:
    gt = {"a": np.array([[0, 0, 10, 10]], float)}
    assert average_precision([("a", 0.5, (0, 0, 10, 10))], gt) == pytest.approx(1.0)
    assert average_precision([], gt) == 0.0
    assert average_precision([("a", 0.5, (0, 0, 10, 10))], {"a": np.zeros((0, 4))}) is None  # undefined
    # IoU 0.45 is a miss at 0.5 but a hit at 0.4
    half = [("a", 0.9, (0, 0, 10, 4.5))]
    assert average_precision(half, gt, 0.5) == 0.0
    assert average_precision(half, gt, 0.4) == pytest.approx(1.0)
    # a false positive ranked above the only true positive halves the precision at full recall
    assert average_precision([("a", 0.9, (50, 50, 60, 60)), ("a", 0.8, (0, 0, 10, 10))], gt) == pytest.approx(0.5)


def test_voc_ap_is_area_under_envelope() -> None:
    assert voc_ap(np.array([0.5, 1.0]), np.array([1.0, 0.5])) == pytest.approx(0.75)
    assert voc_ap(np.array([0.5, 0.5, 1.0]), np.array([0.5, 1.0, 0.2])) == pytest.approx(0.5 + 0.1)


def test_evaluate_is_class_aware() -> None:
    gt = {"x": [("door", (0, 0, 10, 10))], "y": [("bumper", (0, 0, 10, 10))]}
    preds = {"x": [("bumper", 0.9, (0, 0, 10, 10))], "y": [("bumper", 0.8, (0, 0, 10, 10))]}
    ap = evaluate(preds, gt, ["door", "bumper", "light"])[0.5]
    # the bumper box on x (whose only box is a door) is a false positive ranked above the true one on y
    assert ap == {"door": 0.0, "bumper": pytest.approx(0.5), "light": None}


# --------------------------------------------------------------------------- NMS, decoding, letterbox


def test_nms_and_classwise() -> None:
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30], [0, 0, 10, 10]], float)
    scores = np.array([0.9, 0.8, 0.7, 0.95])
    assert nms(boxes, scores, 0.5) == [3, 2]  # 0 and 1 overlap 3 (IoU 1.0 and 0.68)
    assert nms(boxes, scores, 0.99) == [3, 1, 2]  # only the identical box goes
    classes = np.array([0, 0, 0, 1])
    assert classwise_nms(boxes, scores, classes, 0.5) == [3, 0, 2]  # the class-1 box spares the class-0 ones


def test_decode_output() -> None:
    n, c = 6, len(PARTS)
    out = np.zeros((1, 4 + c, n), np.float32)
    out[0, :4, 0] = [50, 50, 20, 10]  # door 0.9
    out[0, 4 + 3, 0] = 0.9
    out[0, :4, 1] = [51, 50, 20, 10]  # a near copy, door 0.6 -> suppressed
    out[0, 4 + 3, 1] = 0.6
    out[0, :4, 2] = [51, 50, 20, 10]  # same place, bumper 0.5 -> kept (other class)
    out[0, 4 + 1, 2] = 0.5
    out[0, :4, 3] = [200, 200, 30, 30]  # light 0.1 -> below threshold
    out[0, 4 + 5, 3] = 0.1
    boxes, scores, classes = decode_output(out, 0.25)
    assert classes.tolist() == [3, 1]
    assert scores.tolist() == pytest.approx([0.9, 0.5])
    assert boxes[0].tolist() == pytest.approx([40, 45, 60, 55])


@pytest.mark.parametrize("h,w", [(300, 500), (480, 240), (256, 256), (3000, 4000), (37, 101)])
def test_letterbox_round_trip(h: int, w: int) -> None:
    size = 256
    img = np.zeros((h, w, 3), np.uint8)
    x1, y1, x2, y2 = int(w * 0.2), int(h * 0.3), int(w * 0.7), int(h * 0.9)
    img[y1:y2, x1:x2] = 255
    lb, scale, pad = letterbox(img, size)
    assert lb.shape == (size, size, 3)
    # the white block, found in the letterboxed image, maps back onto the original block
    ys, xs = np.nonzero(lb[..., 0] > 200)
    back = unletterbox(np.array([[xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]], float), scale, pad, w, h)[0]
    tol = 1.5 / scale + 1
    assert back.tolist() == pytest.approx([x1, y1, x2, y2], abs=tol)
    # grey padding on the short side, content centred
    if w > h:
        assert lb[0, size // 2, 0] == 114 and abs(pad[1] - (size - round(h * scale)) / 2) <= 0.5
    # exact inverse on box coordinates
    box = np.array([[10.0, 20.0, 30.0, 40.0]])
    fwd = box * scale + np.array([pad[0], pad[1], pad[0], pad[1]])
    assert unletterbox(fwd, scale, pad, 10**6, 10**6)[0].tolist() == pytest.approx(box[0].tolist())


# --------------------------------------------------------------------------- dataset and split


def test_read_boxes_polygon_and_box(tmp_path: Path) -> None:
    p = tmp_path / "a.txt"
    p.write_text("3 0.5 0.5 0.2 0.4\n1 0.1 0.2 0.3 0.2 0.2 0.6\n")
    assert read_boxes(p, 100, 200) == [pytest.approx((3, 40, 60, 60, 140)), pytest.approx((1, 10, 40, 30, 120))]
    assert read_boxes(tmp_path / "missing.txt", 100, 100) == []


def test_split_is_group_closed_and_deterministic() -> None:
    root = shared_data("car_damage_roboflow")
    images = list_images(root)
    sides = assign_splits(root, images)
    assert sides == assign_splits(root, list(reversed(images)))
    assert all(sides[i] == "heldout" for i in images if i.startswith("test/"))
    by_source: dict[str, set[str]] = {}
    for img, side in sides.items():
        by_source.setdefault(source_name(img), set()).add(side)
    assert all(len(s) == 1 for s in by_source.values())
    for line in (root / "known_duplicates.csv").read_text().splitlines()[1:]:
        a, b = line.strip().split(",")
        assert sides[a] == sides[b]
    n_held = sum(s == "heldout" for s in sides.values())
    assert 0.15 < n_held / len(images) < 0.3


# --------------------------------------------------------------------------- the shipped model


def test_shipped_model_finds_damage_on_heldout_photos() -> None:
    from claimlens.vision.damage.detector import detect_damage

    root = shared_data("car_damage_roboflow")
    held = [i for i, s in sorted(assign_splits(root).items()) if s == "heldout"][:6]
    found = 0
    for img in held:
        bgr = cv2.imread(str(root / img))
        boxes = detect_damage(np.ascontiguousarray(bgr[..., ::-1]))
        h, w = bgr.shape[:2]
        assert all(0 <= b.x1 < b.x2 <= w and 0 <= b.y1 < b.y2 <= h for b in boxes)
        assert all(b.part in PARTS and b.score >= DEFAULT_MIN_SCORE for b in boxes)
        found += bool(boxes)
    assert found >= 4, f"boxes on only {found} of {len(held)} held-out photos"
