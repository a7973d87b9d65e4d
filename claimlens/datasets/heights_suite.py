"""Generated suites for the heights and flood benches: scenes of known geometry through a pinhole camera.

``python -m claimlens.datasets.heights_suite heights OUT [--n 240] [--seed 0]`` and
``... flood OUT [--n 180] [--seed 0]`` write a folder (never commit it; ``claimlens bench heights --suite``
regenerates one in a temporary folder). Deterministic for (kind, n, seed, textures).

Heights scenes (front or rear of a car, a box model): the ground plane is rendered per pixel (asphalt texture,
the car's shadow), the car's face is a textured vertical plane holding the licence plate (a **real** Chinese
plate crop from ../shared/data/plates_cn warped to 440 x 140 mm at 0.35-0.62 m, centre) and one damage mark
(a **real** damage crop from ../shared/data/car_damage_roboflow or a procedural scratch/scuff texture) at a
known height; the tyres stand one front overhang (0.75-0.95 m) behind the face on the ground, the car's side
and bonnet are further planes. Camera: distance 1-4 m from the face, height 0.8-1.8 m, yaw +-25 degrees,
roll +-3, focal 0.68-0.86 x the longer side, aimed with jitter; then blur, noise and JPEG 80-95.
About 8 % of scenes have no plate and the tyres hidden by a skirt: the measurer must refuse them.

labels.csv: image,mark_bottom_cm,mark_top_cm,reference,distance_m,camera_height_m,mark_box,plate_corners,
plate_corners_true,pair. ``mark_box`` (x1 y1 x2 y2) is what an adjuster would draw (the mark's bounding box
+- 2 px); ``plate_corners`` are the true corners with localisation noise (1 sigma 0.7 px + 2 % of the plate's
height) for the "given corners" variant; ``plate_corners_true`` is for scoring the detector only.
pairs.csv: image_a,image_b,consistent (1: the true ranges overlap; 0: they are 20-40 cm apart).

Flood scenes (side of a car, one textured plane with wheels of standard sizes): a silt/water line at a known
height, the mud tint and texture below it and a darker tide band at it. labels.csv:
image,level,height_cm,tyre_code (the tyre code is given for half the images, as an OCR read would be).
"""

from __future__ import annotations

import argparse
import csv
import math
from pathlib import Path

import cv2
import numpy as np

from claimlens.vision.geometry.references import FLOOD_LEVELS, level_interval, tyre_diameter_mm

SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
PLATES_DIR = SHARED_DATA / "plates_cn" / "crops_lprnet"
DAMAGE_DIR = SHARED_DATA / "car_damage_roboflow"
W, H = 1600, 1200
SIDE_FRACTION = 0.7  # side views (wheels as the reference); the rest are front/rear views with a plate
DISTANCE_RANGE = (1.0, 4.0)  # camera to car face, metres: the distances adjusters shoot at (issue #7)
TYRES = ("185/60 R15", "195/65 R15", "205/55 R16", "215/60 R16", "225/45 R18", "215/55 R17", "235/55 R18")
CAR_COLOURS = ((200, 200, 205), (235, 235, 232), (150, 20, 25), (25, 60, 140), (130, 135, 140), (170, 170, 160),
               (90, 110, 130), (190, 160, 60))


# ------------------------------------------------------------------------------------------------ camera


class Camera:
    def __init__(self, pos, target, f, roll_deg=0.0):
        self.c = np.asarray(pos, np.float64)
        fwd = np.asarray(target, np.float64) - self.c
        fwd /= np.linalg.norm(fwd)
        right = np.cross(fwd, [0, 1.0, 0])
        right /= np.linalg.norm(right)
        down = np.cross(fwd, right)
        r = np.stack([right, down, fwd])
        a = math.radians(roll_deg)
        rz = np.array([[math.cos(a), -math.sin(a), 0], [math.sin(a), math.cos(a), 0], [0, 0, 1]])
        self.R = rz @ r
        self.K = np.array([[f, 0, W / 2], [0, f, H / 2], [0, 0, 1.0]])

    def project(self, X):
        X = np.atleast_2d(np.asarray(X, np.float64))
        p = (self.K @ (self.R @ (X - self.c).T)).T
        return p[:, :2] / p[:, 2:3], p[:, 2]

    def quad_h(self, origin, u, v, su, sv, tw, th):
        """Homography texture pixel -> image for a planar quad origin + u*a + v*b (metres)."""
        m = np.c_[np.asarray(u) * su / tw, np.asarray(v) * sv / th, np.asarray(origin) - self.c]
        return self.K @ self.R @ m


def composite(canvas, tex_rgba, hom):
    warped = cv2.warpPerspective(tex_rgba, hom, (W, H), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                                 borderValue=(0, 0, 0, 0))
    a = warped[..., 3:4].astype(np.float32) / 255.0
    canvas[:] = canvas * (1 - a) + warped[..., :3].astype(np.float32) * a


def render_ground(cam, rng, shadow=None):
    """Asphalt under the horizon (ray/ground intersection per pixel), a wall/sky above it."""
    ys, xs = np.mgrid[0:H, 0:W].astype(np.float64)
    d = np.linalg.inv(cam.K) @ np.stack([xs.ravel(), ys.ravel(), np.ones(xs.size)])
    dw = cam.R.T @ d
    t = -cam.c[1] / np.where(dw[1] < -1e-9, dw[1], np.nan)
    gx = cam.c[0] + t * dw[0]
    gz = cam.c[2] + t * dw[2]
    base = rng.uniform(120, 165)
    tint = rng.uniform(0.92, 1.05, 3)
    noise = (np.sin(gx * 37.1 + gz * 11.3) * np.sin(gx * 5.3 - gz * 41.7) + np.sin(gx * 131 + gz * 97) * 0.5)
    g = base + 10 * noise
    if shadow is not None:
        x0, x1, z0, z1 = shadow
        inside = np.clip(np.minimum.reduce([gx - x0, x1 - gx, gz - z0, z1 - gz]) / 0.15 + 0.5, 0, 1)
        g = g * (1 - 0.35 * inside)
    img = np.empty((H * W, 3), np.float32)
    sky = np.array(rng.uniform(150, 220, 3), np.float32)
    ground = ~np.isnan(t) & (t < 200)
    img[~ground] = sky * (1 - 0.2 * (ys.ravel()[~ground] / H))[:, None]
    img[ground] = np.nan_to_num(g[ground])[:, None] * tint[None, :]
    return img.reshape(H, W, 3)


def finish(img, rng):
    img = cv2.GaussianBlur(img, (0, 0), rng.uniform(0.5, 1.1))
    img = img + rng.normal(0, rng.uniform(1.5, 4.0), img.shape)
    img = np.clip(img, 0, 255).astype(np.uint8)
    _ok, buf = cv2.imencode(".jpg", cv2.cvtColor(img, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY,
                                                                         int(rng.integers(80, 96))])
    return buf.tobytes()


# ----------------------------------------------------------------------------------------------- textures


def _plate_crops():
    return sorted(PLATES_DIR.glob("*.jpg")) if PLATES_DIR.is_dir() else []


def _damage_crops():
    out = []
    for split in ("valid", "test"):
        d = DAMAGE_DIR / split / "images"
        if d.is_dir():
            out += sorted(d.glob("*.jpg"))
    return out


PLATE_COLOURS_HSV = (((95, 70, 40), (130, 255, 255)), ((40, 50, 60), (94, 255, 255)), ((15, 80, 60), (39, 255, 255)))
PLATE_TEXTURE_TRIES = 30


def plate_quad_in_crop(bgr: np.ndarray, up: int = 4) -> np.ndarray | None:
    """The plate's own four corners (TL, TR, BR, BL, px) inside a loose crop, or None.

    The LPRNet crops are the axis-aligned boxes of tilted or perspective plates (often with a strip of bumper
    or background): warping the whole crop to 440 x 140 mm made a "plate" whose visible edges were not the
    labelled corners (up to ~20 % of its height off), so a reader that found the real edges scored wrong.
    Here: the largest plate-coloured blob (blue, green, yellow) of the crop enlarged ``up`` times, its convex
    hull simplified to 4 vertices, each side refitted to the hull's outline (cv2.fitLine) and intersected.
    Rejected when the plate is cut by the crop (a corner outside it) or the 4-gon does not cover its hull."""
    from claimlens.vision.geometry.detect import refit_quad
    from claimlens.vision.plates.detector import order_corners

    big = cv2.resize(bgr, None, fx=up, fy=up, interpolation=cv2.INTER_CUBIC)
    hsv = cv2.cvtColor(big, cv2.COLOR_BGR2HSV)
    masks = [cv2.inRange(hsv, np.array(lo), np.array(hi)) for lo, hi in PLATE_COLOURS_HSV]
    m = max(masks, key=lambda a: int(a.sum()))
    pad = 4 * up + 1  # closed with a zero border: OpenCV's default would stretch a blob near the edge onto it
    m = cv2.morphologyEx(cv2.copyMakeBorder(m, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=0), cv2.MORPH_CLOSE,
                         np.ones((pad, pad), np.uint8))[pad:-pad, pad:-pad]
    cnts, _ = cv2.findContours(np.ascontiguousarray(m), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    if not cnts:
        return None
    hull = cv2.convexHull(max(cnts, key=cv2.contourArea))
    if cv2.contourArea(hull) < 0.5 * m.size:
        return None
    peri = cv2.arcLength(hull, True)
    quad = None
    for eps in np.linspace(0.01, 0.08, 15):
        approx = cv2.approxPolyDP(hull, eps * peri, True)
        if len(approx) == 4:
            quad = order_corners(approx.reshape(4, 2).astype(np.float64))
            break
    if quad is None:
        return None
    pts = hull.reshape(-1, 2).astype(np.float64)
    dense = np.vstack([np.linspace(pts[i], pts[(i + 1) % len(pts)], 20, endpoint=False) for i in range(len(pts))])
    out = refit_quad(dense, quad, 2.0 * up, 8)
    if out is None:
        return None
    h, w = big.shape[:2]
    if (out < -1.5 * up).any() or (out[:, 0] > w + 1.5 * up).any() or (out[:, 1] > h + 1.5 * up).any():
        return None
    if cv2.contourArea(out.astype(np.float32)) < 0.97 * cv2.contourArea(hull):
        return None
    return (out + 0.5) / up - 0.5


def plate_texture(rng, crops):
    """A 440 x 140 plate texture (RGBA) whose edges are the plate's: a real crop rectified by its own corners
    (:func:`plate_quad_in_crop`), else a drawn blue plate."""
    img = None
    for _ in range(PLATE_TEXTURE_TRIES if crops else 0):
        bgr = cv2.imread(str(crops[int(rng.integers(len(crops)))]))
        quad = plate_quad_in_crop(bgr)
        if quad is not None:
            hom = cv2.getPerspectiveTransform(quad.astype(np.float32),
                                              np.float32([[0, 0], [440, 0], [440, 140], [0, 140]]))
            img = cv2.warpPerspective(bgr, hom, (440, 140), flags=cv2.INTER_CUBIC,
                                      borderMode=cv2.BORDER_REPLICATE)[..., ::-1].copy()
            # a clean plate rim (5 mm of plate colour, then the white frame line): the quad fit on a 94 x 24 px
            # crop is good to a pixel or so, and the texture's edge must be the plate's edge
            hsv = cv2.cvtColor(img, cv2.COLOR_RGB2HSV)
            plate_px = img[(hsv[..., 1] > 70) & (hsv[..., 2] > 40)]
            rim = np.median(plate_px, axis=0) if len(plate_px) > 100 else np.median(img.reshape(-1, 3), axis=0)
            img[:7], img[-7:], img[:, :7], img[:, -7:] = rim, rim, rim, rim
            cv2.rectangle(img, (6, 6), (433, 133), (225, 225, 225), 2)
            break
    if img is None:  # synthetic blue plate
        img = np.zeros((140, 440, 3), np.uint8)
        img[:] = (20, 60, 170)
        cv2.rectangle(img, (6, 6), (433, 133), (230, 230, 230), 3)
        for i in range(7):
            cv2.putText(img, "A1B2C3D"[i], (30 + i * 56, 105), cv2.FONT_HERSHEY_SIMPLEX, 2.6, (235, 235, 235), 7)
    return np.dstack([img, np.full(img.shape[:2], 255, np.uint8)])


def mark_texture(rng, crops, tw, th, colour):
    """A damage mark texture (RGBA, soft edge): a real damage crop or a procedural scratch / scuff."""
    kind = rng.choice(["real", "scratch", "scuff"]) if crops else rng.choice(["scratch", "scuff"])
    tex = np.zeros((th, tw, 4), np.uint8)
    if kind == "real":
        img = cv2.imread(str(crops[int(rng.integers(len(crops)))]))[..., ::-1]
        h, w = img.shape[:2]
        x0, y0 = int(rng.integers(0, w // 3)), int(rng.integers(0, h // 3))
        img = img[y0:y0 + h // 2, x0:x0 + w // 2]
        tex[..., :3] = cv2.resize(img, (tw, th), interpolation=cv2.INTER_CUBIC)
        tex[..., 3] = 255
        edge = min(tw, th) // 8 + 1
        a = np.ones((th, tw), np.float32)
        a[:edge] *= np.linspace(0, 1, edge)[:, None]
        a[-edge:] *= np.linspace(1, 0, edge)[:, None]
        a[:, :edge] *= np.linspace(0, 1, edge)[None]
        a[:, -edge:] *= np.linspace(1, 0, edge)[None]
        tex[..., 3] = (255 * np.maximum(a, 0.0) ** 0.5).astype(np.uint8)
        return tex
    tex[..., :3] = colour
    if kind == "scratch":
        n = int(rng.integers(4, 14))
        ang = rng.uniform(-0.4, 0.4)
        for _ in range(n):
            y = rng.uniform(0, th)
            x0, x1 = rng.uniform(0, tw * 0.3), rng.uniform(tw * 0.7, tw)
            y1 = y + (x1 - x0) * math.tan(ang) + rng.normal(0, th * 0.05)
            c = tuple(int(v) for v in rng.uniform(200, 255, 3)) if rng.random() < 0.6 else (60, 60, 60)
            cv2.line(tex, (int(x0), int(np.clip(y, 0, th - 1))), (int(x1), int(np.clip(y1, 0, th - 1))),
                     c + (255,), max(1, int(th * rng.uniform(0.02, 0.06))), cv2.LINE_AA)
        # the box spans the scratch field: mark the edges so the mark really fills it
        cv2.line(tex, (0, 1), (tw - 1, 1), (225, 225, 225, 255), max(1, th // 30))
        cv2.line(tex, (0, th - 2), (tw - 1, th - 2), (225, 225, 225, 255), max(1, th // 30))
    else:
        yy, xx = np.mgrid[0:th, 0:tw]
        r = np.hypot((xx - tw / 2) / (tw / 2), (yy - th / 2) / (th / 2))
        shade = (1 - np.clip(r, 0, 1)) * rng.uniform(60, 110)
        base = np.asarray(colour, np.float32)[None, None] * 0.55 + 40
        tex[..., :3] = np.clip(base + rng.normal(0, 25, (th, tw, 1)) - shade[..., None] * 0.3, 0, 255)
    tex[..., 3] = 255
    return tex


# ------------------------------------------------------------------------------------------ heights scene


def heights_scene(rng, plates, damages, mark_range=None, no_ref=False, distance=DISTANCE_RANGE):
    """One front/rear view; returns (jpeg, label dict)."""
    colour = np.array(CAR_COLOURS[int(rng.integers(len(CAR_COLOURS)))], np.float32)
    plate_h = rng.uniform(0.35, 0.62)  # plate centre height (m)
    face_lo = 0.02 if no_ref else rng.uniform(0.16, 0.22)
    face_hi = rng.uniform(0.78, 0.9)
    over = rng.uniform(0.75, 0.95)
    tyre = TYRES[int(rng.integers(len(TYRES)))]
    dia = tyre_diameter_mm(tyre) / 1000
    halfw = rng.uniform(0.85, 0.93)
    track = rng.uniform(0.70, 0.78)
    # the mark: on the face, left or right of the plate
    if mark_range is None:
        mh = rng.uniform(0.04, 0.22)
        lo = rng.uniform(face_lo + 0.03, face_hi - 0.03 - mh)
        mark_range = (lo, lo + mh)
    mb, mt = mark_range
    mw = rng.uniform(0.08, 0.35)
    side = 1 if rng.random() < 0.5 else -1
    mx = side * rng.uniform(0.30 + mw / 2, halfw - 0.03 - mw / 2) if mw / 2 < halfw - 0.36 else side * 0.6
    for _attempt in range(40):
        dist = rng.uniform(*distance)
        cam_h = rng.uniform(0.8, 1.8)
        yaw = math.radians(rng.uniform(5, 40) * (1 if rng.random() < 0.5 else -1))
        pos = np.array([dist * math.sin(yaw) + 0.3 * mx, cam_h, dist * math.cos(yaw)])
        target = np.array([mx * rng.uniform(0.2, 0.7), rng.uniform(0.15, 0.45), -rng.uniform(0.0, 0.5)])
        f = rng.uniform(0.68, 0.86) * W
        cam = Camera(pos, target, f, rng.uniform(-3, 3))
        must = [[mx - mw / 2, mb, 0], [mx + mw / 2, mt, 0], [-0.22, plate_h - 0.07, 0], [0.22, plate_h + 0.07, 0]]
        pts, z = cam.project(np.array(must))
        if not no_ref:  # at least one tyre contact seen: under the bumper, or the side wheel of a 3/4 view
            under = cam_h * over / (pos[2] + over) < face_lo - 0.02
            sides = [s for s in (-1, 1) if s * pos[0] > halfw + 0.1]
            cands = ([[-track, 0, -over], [track, 0, -over]] if under else []) + \
                [[s * halfw, 0, -over] for s in sides]
            if not cands:
                continue
            cp, cz = cam.project(np.array(cands))
            if not ((cp[:, 0] > 40) & (cp[:, 0] < W - 40) & (cp[:, 1] < H - 20) & (cz > 0.3)).any():
                continue
        if (z > 0.3).all() and (pts[:, 0] > 40).all() and (pts[:, 0] < W - 40).all() and \
                (pts[:, 1] > 40).all() and (pts[:, 1] < H - 40).all():
            break
    else:
        return None
    img = render_ground(cam, rng, shadow=(-halfw, halfw, -over - 2.8, 0.0))
    # far to near: side face (visible side), tyres, bonnet, face
    sx = halfw if pos[0] > halfw else -halfw
    if abs(pos[0]) > halfw:
        sppm = 100
        side_tex = np.zeros((int(face_hi * sppm), int(4.0 * sppm), 4), np.uint8)
        side_tex[: int((face_hi - face_lo) * sppm) + 1, :, :3] = np.clip(colour * 0.8, 0, 255)
        side_tex[: int((face_hi - face_lo) * sppm) + 1, :, 3] = 255
        wc = (int(over * sppm), int((face_hi - dia / 2) * sppm))
        cv2.circle(side_tex, wc, int((dia / 2 + 0.04) * sppm), (25, 25, 25, 255), -1)
        cv2.circle(side_tex, wc, int(dia / 2 * sppm), (22, 22, 22, 255), -1)
        cv2.circle(side_tex, wc, int(dia / 2 * 0.6 * sppm), (170, 170, 175, 255), -1)
        side_tex = cv2.resize(side_tex, None, fx=2, fy=2, interpolation=cv2.INTER_LINEAR)
        composite(img, side_tex, cam.quad_h([sx, face_hi, 0], [0, 0, -1], [0, -1, 0], 4.0, face_hi,
                                            side_tex.shape[1], side_tex.shape[0]))
    tyre_tex = np.dstack([np.full((64, 32, 3), rng.uniform(18, 32), np.uint8), np.full((64, 32), 255, np.uint8)])
    if not no_ref:
        for x in (-track, track):
            composite(img, tyre_tex, cam.quad_h([x - 0.11, dia, -over], [1, 0, 0], [0, -1, 0], 0.22, dia, 32, 64))
    bonnet_v = np.array([0, 0.2, -1.0]) / np.linalg.norm([0, 0.2, -1.0])
    bon = np.dstack([np.full((64, 256, 3), np.clip(colour * 1.05 + 10, 0, 255), np.uint8),
                     np.full((64, 256), 255, np.uint8)])
    if cam_h > face_hi:
        composite(img, bon, cam.quad_h([-halfw, face_hi, 0.0], [1, 0, 0], bonnet_v, 2 * halfw, 1.02,
                                       256, 64))
    # the face: body colour, grille, bumper line, plate, mark (drawn into one texture, 4 mm per pixel)
    ppm = 250  # texture px per metre
    fw, fh = int(2 * halfw * ppm), int((face_hi - face_lo) * ppm)
    face = np.zeros((fh, fw, 4), np.uint8)
    face[..., :3] = np.clip(colour + rng.normal(0, 3, (fh, fw, 1)), 0, 255)
    face[..., 3] = 255

    def fy(y):  # metres above ground -> face texture row
        return round((face_hi - y) * ppm)

    def fx(x):
        return round((x + halfw) * ppm)

    gy = rng.uniform(plate_h + 0.12, face_hi - 0.05)
    cv2.rectangle(face, (fx(-0.45), fy(gy + 0.08)), (fx(0.45), fy(gy - 0.02)), (30, 30, 34, 255), -1)  # grille
    cv2.line(face, (0, fy(face_lo + 0.06)), (fw, fy(face_lo + 0.06)), (60, 60, 60, 255), 2)
    if not no_ref:
        pt = plate_texture(rng, plates)
        pt = cv2.resize(pt, (int(0.44 * ppm), int(0.14 * ppm)), interpolation=cv2.INTER_AREA)
        y0, x0 = fy(plate_h + 0.07), fx(-0.22)
        face[y0:y0 + pt.shape[0], x0:x0 + pt.shape[1]] = pt
    mt_px = mark_texture(rng, damages, max(4, int(mw * ppm)), max(4, int((mt - mb) * ppm)), colour)
    y0, x0 = fy(mt), fx(mx - mw / 2)
    roi = face[y0:y0 + mt_px.shape[0], x0:x0 + mt_px.shape[1]]
    a = mt_px[: roi.shape[0], : roi.shape[1], 3:4].astype(np.float32) / 255
    roi[..., :3] = (roi[..., :3] * (1 - a) + mt_px[: roi.shape[0], : roi.shape[1], :3] * a).astype(np.uint8)
    # render the face at full plate resolution: the texture is 4 mm/px; upsample x2 for crisper edges
    face2 = cv2.resize(face, (fw * 2, fh * 2), interpolation=cv2.INTER_LINEAR)
    composite(img, face2, cam.quad_h([-halfw, face_hi, 0], [1, 0, 0], [0, -1, 0], 2 * halfw, face_hi - face_lo,
                                     fw * 2, fh * 2))
    jpeg = finish(img, rng)
    mk, _ = cam.project(np.array([[mx - mw / 2, mb, 0], [mx + mw / 2, mb, 0], [mx - mw / 2, mt, 0],
                                  [mx + mw / 2, mt, 0]]))
    box = [mk[:, 0].min(), mk[:, 1].min(), mk[:, 0].max(), mk[:, 1].max()]
    box = [v + rng.normal(0, 1.0) for v in box]
    pc, _ = cam.project(np.array([[-0.22, plate_h + 0.07, 0], [0.22, plate_h + 0.07, 0],
                                  [0.22, plate_h - 0.07, 0], [-0.22, plate_h - 0.07, 0]]))
    ph = float(np.mean([np.linalg.norm(pc[3] - pc[0]), np.linalg.norm(pc[2] - pc[1])]))
    noisy = pc + rng.normal(0, 0.7 + 0.02 * ph, pc.shape)
    horiz = float(np.hypot(pos[0] - mx, pos[2]))
    return jpeg, {"mark_bottom_cm": round(mb * 100, 2), "mark_top_cm": round(mt * 100, 2),
                  "reference": "none" if no_ref else "plate", "view": "front", "distance_m": round(horiz, 3),
                  "camera_height_m": round(cam_h, 3), "mark_box": " ".join(f"{v:.1f}" for v in box),
                  "plate_corners": "" if no_ref else " ".join(f"{v:.2f}" for v in noisy.ravel()),
                  "plate_corners_true": "" if no_ref else " ".join(f"{v:.2f}" for v in pc.ravel()),
                  "tyre_code": tyre, "overhang_m": round(over, 3), "focal_px": round(f, 1),
                  "plate_centre_cm": "" if no_ref else round(plate_h * 100, 2)}


def generate_heights_suite(out: Path, n: int = 240, seed: int = 0,
                           distance: tuple[float, float] = DISTANCE_RANGE) -> dict:
    """n/2 pairs (half consistent), ~8 % of pairs without a scale reference on one side. ``distance``: the
    camera's range from the car face in metres (default 1-4 m; a narrower band measures one distance)."""
    out = Path(out)
    (out / "images").mkdir(parents=True, exist_ok=True)
    plates, damages = _plate_crops(), _damage_crops()
    rows, pairs = [], []
    k = 0
    while len(rows) < n:
        rng = np.random.default_rng([seed, k, 7])
        consistent = k % 2 == 0
        mh = rng.uniform(0.04, 0.2)
        lo = rng.uniform(0.22, 0.76 - mh)
        a_range = (lo, lo + mh)
        if consistent:
            mh2 = rng.uniform(0.04, 0.2)
            shift = rng.uniform(-0.8, 0.8) * min(mh, mh2)
            lo2 = np.clip(lo + shift, 0.22, 0.76 - mh2)
            b_range = (lo2, lo2 + mh2)
        else:
            gap = rng.uniform(0.20, 0.40)
            mh2 = rng.uniform(0.04, 0.15)
            if lo + mh + gap + mh2 <= 0.8:
                b_range = (lo + mh + gap, lo + mh + gap + mh2)
            elif lo - gap - mh2 >= 0.2:
                b_range = (lo - gap - mh2, lo - gap)
            else:
                k += 1
                continue
        no_ref = rng.random() < 0.08
        names = []
        for j, mr in enumerate((a_range, b_range)):
            srng = np.random.default_rng([seed, k, j, 11])
            if no_ref and j == 1:
                sc = heights_scene(srng, plates, damages, mr, no_ref=True, distance=distance)
            elif srng.random() < SIDE_FRACTION:
                sc = side_heights_scene(srng, damages, mr, distance=distance)
            else:
                sc = heights_scene(srng, plates, damages, mr, distance=distance)
            if sc is None:
                break
            jpeg, lab = sc
            name = f"images/h{k:04d}_{'ab'[j]}.jpg"
            (out / name).write_bytes(jpeg)
            rows.append({"image": name, **lab, "pair": k})
            names.append(name)
        if len(names) == 2:
            pairs.append({"image_a": names[0], "image_b": names[1], "consistent": int(consistent)})
        k += 1
    cols = ["image", "mark_bottom_cm", "mark_top_cm", "reference", "view", "distance_m", "camera_height_m", "mark_box",
            "plate_corners", "plate_corners_true", "tyre_code", "overhang_m", "focal_px", "plate_centre_cm", "pair"]
    with open(out / "labels.csv", "w", newline="") as f:
        w = csv.DictWriter(f, cols)
        w.writeheader()
        w.writerows(rows)
    with open(out / "pairs.csv", "w", newline="") as f:
        w = csv.DictWriter(f, ["image_a", "image_b", "consistent"])
        w.writeheader()
        w.writerows(pairs)
    return {"kind": "heights", "n_images": len(rows), "n_pairs": len(pairs), "seed": seed,
            "real_plate_textures": len(plates), "real_damage_textures": len(damages)}


# -------------------------------------------------------------------------------------------- flood scene


def side_texture(rng, dia, wb, colour, mud_h_cm=None, mark=None, damages=(), roof_top=1.48, mud=None):
    """The car's side as one RGBA texture (200 px per metre, X from -wb/2-1 to wb/2+1 m, heights 0 to
    ``roof_top`` + 2 cm): underbody, body, sill, windows, pillars, door gaps, arches, tyres with rims; optional
    mud below ``mud_h_cm`` (colour ``mud`` or a random brown) and a damage mark ``(x_centre, width, bottom,
    top)`` in metres."""
    ppm = 200
    x0m, x1m, ytop = -wb / 2 - 1.0, wb / 2 + 1.0, max(1.5, roof_top + 0.02)
    tw, th = int((x1m - x0m) * ppm), int(ytop * ppm)
    tex = np.zeros((th, tw, 4), np.uint8)

    def px(x):
        return round((x - x0m) * ppm)

    def py(y):
        return round((ytop - y) * ppm)

    sill = rng.uniform(0.15, 0.18)
    belt = rng.uniform(0.92, 1.0)
    cv2.rectangle(tex, (px(x0m + 0.1), py(sill)), (px(x1m - 0.1), py(0.03)), (70, 70, 72, 255), -1)
    cv2.rectangle(tex, (px(x0m + 0.05), py(belt)), (px(x1m - 0.05), py(sill)), tuple(int(v) for v in colour) + (255,), -1)
    cv2.rectangle(tex, (px(x0m + 0.05), py(sill + 0.07)), (px(x1m - 0.05), py(sill)),
                  tuple(int(v * 0.7) for v in colour) + (255,), -1)
    roof_lo = roof_top - 0.10
    cv2.rectangle(tex, (px(-1.15), py(roof_lo)), (px(1.1), py(belt)), (45, 55, 65, 255), -1)
    cv2.rectangle(tex, (px(-1.25), py(roof_top)), (px(1.2), py(roof_lo)), tuple(int(v) for v in colour) + (255,), -1)
    for x in (-0.05, -1.15, 1.1):  # pillars
        cv2.rectangle(tex, (px(x), py(roof_lo)), (px(x + 0.08), py(belt)), tuple(int(v) for v in colour) + (255,),
                      -1)
    for x in (-0.45, 0.65):  # door gaps
        cv2.line(tex, (px(x), py(belt)), (px(x), py(sill + 0.02)), (40, 40, 40, 255), 2)
    if mark is not None:
        mx, mw, mb, mt = mark
        mtex = mark_texture(rng, damages, max(4, int(mw * ppm)), max(4, int((mt - mb) * ppm)), colour)
        y0, xs = py(mt), px(mx - mw / 2)
        roi = tex[y0:y0 + mtex.shape[0], xs:xs + mtex.shape[1]]
        a = mtex[: roi.shape[0], : roi.shape[1], 3:4].astype(np.float32) / 255
        roi[..., :3] = (roi[..., :3] * (1 - a) + mtex[: roi.shape[0], : roi.shape[1], :3] * a).astype(np.uint8)
    for cx in (-wb / 2, wb / 2):  # arches then wheels
        cv2.circle(tex, (px(cx), py(dia / 2)), int((dia / 2 + 0.04) * ppm), (25, 25, 25, 255), -1)
        cv2.circle(tex, (px(cx), py(dia / 2)), int(dia / 2 * ppm), (int(rng.uniform(15, 30)),) * 3 + (255,), -1)
        rim = int(rng.uniform(150, 200))
        cv2.circle(tex, (px(cx), py(dia / 2)), int(dia / 2 * 0.62 * ppm), (rim, rim, rim + 5, 255), -1)
        for a in range(0, 360, 72):
            ex = px(cx) + int(math.cos(math.radians(a)) * dia / 2 * 0.55 * ppm)
            ey = py(dia / 2) + int(math.sin(math.radians(a)) * dia / 2 * 0.55 * ppm)
            cv2.line(tex, (px(cx), py(dia / 2)), (ex, ey), (rim - 60,) * 3 + (255,), max(2, int(0.02 * ppm)))
    if mud_h_cm is not None:
        hl = py(mud_h_cm / 100)
        mud = np.array(rng.uniform([95, 75, 45], [140, 115, 80]), np.float32) if mud is None else \
            np.asarray(mud, np.float32)
        alpha = rng.uniform(0.35, 0.6)
        below = tex[hl:, :, :3].astype(np.float32)
        speck = rng.normal(0, 14, below.shape[:2])[..., None]
        tex[hl:, :, :3] = np.clip(below * (1 - alpha) + mud * alpha + speck, 0, 255).astype(np.uint8)
        band = max(2, int(rng.uniform(0.01, 0.03) * ppm))
        sl = tex[max(0, hl - band // 3): hl + band, :, :3].astype(np.float32)
        tex[max(0, hl - band // 3): hl + band, :, :3] = np.clip(sl * 0.75 + mud * 0.15, 0, 255).astype(np.uint8)
    tex[..., 3] = np.where(tex[..., 3] > 0, 255, 0)
    return tex, (x0m, x1m, ytop)


def side_camera(rng, wb, dia, dist_range, look=None):
    for _attempt in range(60):
        dist = rng.uniform(*dist_range)
        cam_h = rng.uniform(0.8, 1.8)
        yaw = math.radians(rng.uniform(-30, 30))
        lx = look[0] if look is not None else rng.uniform(-0.3, 0.3)
        pos = np.array([lx + dist * math.sin(yaw), cam_h, dist * math.cos(yaw)])
        target = np.array([lx + rng.uniform(-0.3, 0.3), rng.uniform(0.4, 0.8), 0])
        f = rng.uniform(0.68, 0.86) * W
        cam = Camera(pos, target, f, rng.uniform(-3, 3))
        must = [[-wb / 2 - dia / 2 - 0.05, 0, 0], [wb / 2 + dia / 2 + 0.05, 0, 0], [-wb / 2, dia + 0.05, 0],
                [wb / 2, dia + 0.05, 0]]
        if look is not None:
            must += list(look[1])
        else:
            must += [[-wb / 2, 1.45, 0], [wb / 2, 1.45, 0]]
        pts, z = cam.project(np.array(must))
        if (z > 0.3).all() and (pts[:, 0] > 20).all() and (pts[:, 0] < W - 20).all() and \
                (pts[:, 1] > 20).all() and (pts[:, 1] < H - 20).all():
            return cam, pos
    return None, None


def side_heights_scene(rng, damages, mark_range, distance=DISTANCE_RANGE):
    colour = np.array(CAR_COLOURS[int(rng.integers(len(CAR_COLOURS)))], np.float32)
    tyre = TYRES[int(rng.integers(len(TYRES)))]
    dia = tyre_diameter_mm(tyre) / 1000
    wb = rng.uniform(2.55, 2.85)
    mb, mt = mark_range
    mw = rng.uniform(0.08, 0.5)
    mx = rng.uniform(-wb / 2 + dia / 2 + 0.1 + mw / 2, wb / 2 - dia / 2 - 0.1 - mw / 2)
    mark3d = [[mx - mw / 2, mb, 0], [mx + mw / 2, mb, 0], [mx - mw / 2, mt, 0], [mx + mw / 2, mt, 0]]
    cam, pos = side_camera(rng, wb, dia, distance, look=(mx, mark3d))
    if cam is None:
        return None
    tex, (x0m, x1m, ytop) = side_texture(rng, dia, wb, colour, mark=(mx, mw, mb, mt), damages=damages)
    img = render_ground(cam, rng, shadow=(x0m + 0.2, x1m - 0.2, -1.8, 0.0))
    composite(img, tex, cam.quad_h([x0m, ytop, 0], [1, 0, 0], [0, -1, 0], x1m - x0m, ytop, tex.shape[1],
                                   tex.shape[0]))
    jpeg = finish(img, rng)
    mk, _ = cam.project(np.array(mark3d))
    box = [mk[:, 0].min(), mk[:, 1].min(), mk[:, 0].max(), mk[:, 1].max()]
    box = [v + rng.normal(0, 1.0) for v in box]
    horiz = float(np.hypot(pos[0] - mx, pos[2]))
    return jpeg, {"mark_bottom_cm": round(mb * 100, 2), "mark_top_cm": round(mt * 100, 2),
                  "reference": "wheels", "view": "side", "distance_m": round(horiz, 3),
                  "camera_height_m": round(float(pos[1]), 3), "mark_box": " ".join(f"{v:.1f}" for v in box),
                  "plate_corners": "", "plate_corners_true": "", "tyre_code": tyre, "overhang_m": "",
                  "focal_px": round(float(cam.K[0, 0]), 1)}


# Silt colours of the flood suite (RGB): brown, ochre, grey, dark grey-brown, reddish clay, pale beige. The
# detector may not assume a colour.
MUD_COLOURS = ((118, 95, 62), (150, 125, 70), (120, 118, 112), (80, 72, 60), (140, 92, 66), (175, 165, 140))
# Well-posedness: the level of a line closer than this to a level boundary cannot be told from a photo
# whose only scale is the wheel (typical tyre 650 +- 30 mm when the size code is unread: up to ~9 % off),
# so lines are generated at least BOUNDARY_MARGIN_CM + BOUNDARY_MARGIN_REL x the boundary away from it.
BOUNDARY_MARGIN_CM = 2.0
BOUNDARY_MARGIN_REL = 0.05
LEVEL1_MIN_CM = 8.0  # a level-1 line below ~8 cm leaves no visible stain band (tyre bottoms, underbody)


def flood_height_range(level: int, roof_top_cm: float) -> tuple[float, float]:
    lo, hi = level_interval(level)
    lo = LEVEL1_MIN_CM if level == 1 else lo * (1 + BOUNDARY_MARGIN_REL) + BOUNDARY_MARGIN_CM
    hi = roof_top_cm - 4.0 if level == 6 else hi * (1 - BOUNDARY_MARGIN_REL) - BOUNDARY_MARGIN_CM
    return lo, hi


def flood_scene(rng, level):
    # cars 1.45-1.62 m tall (sedans to SUVs); a level-6 (roof) line needs a roof above ~1.53 m to be a line
    # on the car at all (else the whole car is silted and there is no line to see)
    roof_top = rng.uniform(1.55, 1.62) if level == 6 else rng.uniform(1.45, 1.62)
    lo, hi = flood_height_range(level, roof_top * 100)
    h_cm = rng.uniform(lo, hi)
    colour = np.array(CAR_COLOURS[int(rng.integers(len(CAR_COLOURS)))], np.float32)
    mud = np.array(MUD_COLOURS[int(rng.integers(len(MUD_COLOURS)))], np.float32) + rng.normal(0, 8, 3)
    tyre = TYRES[int(rng.integers(len(TYRES)))]
    dia = tyre_diameter_mm(tyre) / 1000
    wb = rng.uniform(2.55, 2.85)
    tex, (x0m, x1m, ytop) = side_texture(rng, dia, wb, colour, mud_h_cm=h_cm, roof_top=roof_top, mud=mud)
    tw, th = tex.shape[1], tex.shape[0]
    for _attempt in range(40):
        dist = rng.uniform(2.8, 4.8)
        cam_h = rng.uniform(0.8, 1.8)
        yaw = math.radians(rng.uniform(-25, 25))
        pos = np.array([dist * math.sin(yaw), cam_h, dist * math.cos(yaw)])
        target = np.array([rng.uniform(-0.3, 0.3), rng.uniform(0.5, 0.8), 0])
        f = rng.uniform(0.68, 0.86) * W
        cam = Camera(pos, target, f, rng.uniform(-3, 3))
        # the whole car, roof included, is in the frame (a roof line needs the roof)
        must = [[-wb / 2 - dia, 0, 0], [wb / 2 + dia, 0, 0], [-wb / 2, roof_top + 0.02, 0],
                [wb / 2, roof_top + 0.02, 0]]
        pts, z = cam.project(np.array(must))
        if (z > 0.3).all() and (pts[:, 0] > 20).all() and (pts[:, 0] < W - 20).all() and \
                (pts[:, 1] > 20).all() and (pts[:, 1] < H - 20).all():
            break
    else:
        return None
    img = render_ground(cam, rng, shadow=(x0m + 0.2, x1m - 0.2, -1.8, 0.0))
    composite(img, tex, cam.quad_h([x0m, ytop, 0], [1, 0, 0], [0, -1, 0], x1m - x0m, ytop, tw, th))
    jpeg = finish(img, rng)
    return jpeg, {"level": level, "height_cm": round(h_cm, 2), "tyre": tyre, "distance_m": round(dist, 3),
                  "roof_cm": round(roof_top * 100, 1), "mud_rgb": " ".join(f"{v:.0f}" for v in mud)}


def clean_scene(rng):
    """A clean car (no silt) in the flood suite's geometry: for the false-line rate."""
    roof_top = rng.uniform(1.45, 1.62)
    colour = np.array(CAR_COLOURS[int(rng.integers(len(CAR_COLOURS)))], np.float32)
    tyre = TYRES[int(rng.integers(len(TYRES)))]
    dia = tyre_diameter_mm(tyre) / 1000
    wb = rng.uniform(2.55, 2.85)
    tex, (x0m, x1m, ytop) = side_texture(rng, dia, wb, colour, roof_top=roof_top)
    cam, _pos = side_camera(rng, wb, dia, (2.8, 4.8))
    if cam is None:
        return None
    img = render_ground(cam, rng, shadow=(x0m + 0.2, x1m - 0.2, -1.8, 0.0))
    composite(img, tex, cam.quad_h([x0m, ytop, 0], [1, 0, 0], [0, -1, 0], x1m - x0m, ytop, tex.shape[1],
                                   tex.shape[0]))
    return finish(img, rng), {"level": 0, "height_cm": "", "tyre": tyre, "distance_m": ""}


def generate_flood_suite(out: Path, n: int = 180, seed: int = 0, clean: bool = False) -> dict:
    """n scenes, levels 1..6 in turn; with ``clean`` every 7th scene is a clean car (level 0: no line)."""
    out = Path(out)
    (out / "images").mkdir(parents=True, exist_ok=True)
    rows = []
    k = 0
    while len(rows) < n:
        rng = np.random.default_rng([seed, k, 13])
        level = 1 + k % 6
        sc = flood_scene(rng, level) if k % 7 != 6 or not clean else clean_scene(rng)
        k += 1
        if sc is None:
            continue
        jpeg, lab = sc
        name = f"images/f{k:04d}.jpg"
        (out / name).write_bytes(jpeg)
        rows.append({"image": name, "level": lab["level"], "height_cm": lab["height_cm"],
                     "tyre_code": lab["tyre"] if k % 2 == 0 else "", "distance_m": lab["distance_m"],
                     "roof_cm": lab.get("roof_cm", ""), "mud_rgb": lab.get("mud_rgb", "")})
    with open(out / "labels.csv", "w", newline="") as f:
        w = csv.DictWriter(f, ["image", "level", "height_cm", "tyre_code", "distance_m", "roof_cm", "mud_rgb"])
        w.writeheader()
        w.writerows(rows)
    return {"kind": "flood", "n_images": len(rows), "seed": seed, "levels": [lv for lv, _w, _t in FLOOD_LEVELS]}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("kind", choices=["heights", "flood"])
    ap.add_argument("out", type=Path)
    ap.add_argument("--n", type=int, default=None)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    if a.kind == "heights":
        print(generate_heights_suite(a.out, a.n or 240, a.seed))
    else:
        print(generate_flood_suite(a.out, a.n or 180, a.seed))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
