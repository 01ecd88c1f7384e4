"""Synthetic chest radiographs for the demo and the tests: never a patient, and marked so.

``cxr_pixels`` draws a processed PA chest radiograph from a seed: shaped lung fields, the
mediastinum and heart shadow (the heart mostly on the patient's left, the image's right),
trachea and main bronchi, hila and branching lung vessels, clavicles, posterior and anterior
ribs, the spine, hemidiaphragms with their costophrenic angles and a gastric bubble, soft
tissue, shoulders and humeral heads, quantum noise and exposure fall-off at the edges.
Findings (``ImageFinding``) are drawn where a case's truth puts them: consolidation in a lobe,
an effusion's meniscus, a wider heart, a nodule or mass, a pneumothorax's lucent rim without
lung markings, upper-zone tuberculosis with a cavity, and a few more.

The structure is drawn on a working grid of at most ``WORK_MAX`` pixels on the long side and
scaled up; the noise is full resolution. numpy and scipy.ndimage only (Pillow for the burned-in
marker text): a 2,500 x 2,000 image takes about a quarter of a second.

The files carry the identifying attributes a real file would, so de-identification is
exercised end to end, and say they are synthetic: Manufacturer ``SYNTHETIC`` (what the
importer keys on), the model name, ImageComments, the window explanation, and the burned-in
text "SYNTHETIC" next to the side marker.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image as PILImage
from PIL import ImageDraw, ImageFont
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import (
    UID,
    ComputedRadiographyImageStorage,
    DigitalXRayImageStorageForPresentation,
    ExplicitVRLittleEndian,
    SecondaryCaptureImageStorage,
    generate_uid,
)
from scipy import ndimage

MANUFACTURER = "SYNTHETIC"
MODEL_NAME = "cxr-trials synthetic generator"
COMMENT = "SYNTHETIC IMAGE - not a patient"
BURNED_IN = "SYNTHETIC"
PRIVATE_CREATOR = "CXR TRIALS SYNTHETIC"
SOP_CLASSES = {"DX": DigitalXRayImageStorageForPresentation, "CR": ComputedRadiographyImageStorage}
AIR = 0.33  # how much darker the thickest lung is than the soft tissue around it
WORK_MAX = 900  # long side of the grid the anatomy is drawn on (then scaled up)
TEXT_MIN_ROWS = 256  # smaller images get no burned-in text

# What the generator can draw. ``side`` is the patient's ("right" is on the image's left).
KINDS = ("consolidation", "opacity", "tb", "nodule", "mass", "effusion", "pneumothorax",
         "cardiomegaly", "edema", "atelectasis", "line", "fracture", "mediastinum", "pleural")
LOBES = {"right": ("upper", "middle", "lower"), "left": ("upper", "lingula", "lower")}
ZONES = ("upper", "mid", "lower")
SIZES = ("small", "moderate", "large")


@dataclass(frozen=True)
class ImageFinding:
    """One finding as the image shows it (and as a report would name it).

    ``kind`` is one of ``KINDS``; ``side`` the patient's "right", "left" or "both" (empty for
    the heart, oedema, a line, the mediastinum); ``lobe`` for consolidation ("upper",
    "middle", "lower", "lingula"); ``zone`` ("upper", "mid", "lower") for a nodule, mass or
    opacity; ``size`` ("small", "moderate", "large") for an effusion or pneumothorax; ``cm``
    the diameter of a nodule or mass; ``cavity`` for tuberculosis; ``rib`` the fractured rib.
    """

    kind: str
    side: str = ""
    lobe: str = ""
    zone: str = ""
    size: str = ""
    cm: float = 0.0
    cavity: bool = False
    rib: int = 0

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown finding kind {self.kind!r}; expected one of {KINDS}")


# --- small helpers -----------------------------------------------------------------------

def _step(z: np.ndarray | float) -> np.ndarray:
    """Smoothstep from 0 (z <= -1) to 1 (z >= 1): a soft edge without exp()."""
    z = np.asarray(z, dtype=np.float32)
    if z.ndim == 0:
        s = min(max(float(z) * 0.5 + 0.5, 0.0), 1.0)
        return np.float32(s * s * (3.0 - 2.0 * s))
    s = z * np.float32(0.5)
    s += np.float32(0.5)
    np.clip(s, 0.0, 1.0, out=s)
    out = np.float32(3.0) - np.float32(2.0) * s
    out *= s
    out *= s
    return out


def _blur(a: np.ndarray, sigma_px: float, *, coarse: int = 1) -> np.ndarray:
    """Gaussian blur; a wide one on a ``coarse`` times smaller grid (then scaled back up)."""
    if coarse <= 1 or min(a.shape) < 4 * coarse:
        return ndimage.gaussian_filter(a, sigma_px, mode="nearest", truncate=3.0)
    small = _shrink(a, coarse)
    small = ndimage.gaussian_filter(small, sigma_px / coarse, mode="nearest", truncate=3.0)
    return _resize(small, a.shape)


def _shrink(a: np.ndarray, k: int) -> np.ndarray:
    rows, cols = (a.shape[0] // k) * k, (a.shape[1] // k) * k
    if rows == 0 or cols == 0:
        return a
    return a[:rows, :cols].reshape(rows // k, k, cols // k, k).mean(axis=(1, 3))


def _resize(a: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Bilinear resize of a float32 array (Pillow's "F" mode: fast)."""
    if a.shape == shape:
        return a.astype(np.float32, copy=False)
    img = PILImage.fromarray(np.ascontiguousarray(a, dtype=np.float32), mode="F")
    out = img.resize((shape[1], shape[0]), PILImage.Resampling.BILINEAR)
    return np.array(out, dtype=np.float32)


def _smooth_noise(rng: np.random.Generator, shape: tuple[int, int], cell: int) -> np.ndarray:
    """Zero-mean, unit-ish noise smooth over ``cell`` pixels (bilinear from a coarse grid)."""
    coarse = (max(2, shape[0] // max(cell, 1) + 2), max(2, shape[1] // max(cell, 1) + 2))
    small = rng.standard_normal(coarse, dtype=np.float32)
    small = ndimage.gaussian_filter(small, 0.7, mode="wrap")
    small /= max(float(small.std()), 1e-6)
    return _resize(small, shape)


class _Grid:
    """Coordinates in units of the image height: ``x`` across (0 = midline, negative = the
    image's left = the patient's right), ``y`` down from the top (0..1)."""

    def __init__(self, rows: int, columns: int) -> None:
        scale = min(1.0, WORK_MAX / max(rows, columns))
        self.rows, self.cols = max(2, round(rows * scale)), max(2, round(columns * scale))
        self.px = 1.0 / self.rows  # one grid pixel, in height units
        self.y = ((np.arange(self.rows, dtype=np.float32) + 0.5) / self.rows)[:, None]
        self.x = ((np.arange(self.cols, dtype=np.float32) + 0.5 - self.cols / 2)
                  / self.rows)[None, :]
        self.half_width = self.cols / 2 / self.rows

    def zeros(self) -> np.ndarray:
        return np.zeros((self.rows, self.cols), dtype=np.float32)

    def row_range(self, top: float, bottom: float) -> slice:
        return slice(max(0, int(top * self.rows) - 1), min(self.rows, int(bottom * self.rows) + 2))

    def to_px(self, x: float, y: float) -> tuple[float, float]:
        return (x * self.rows + self.cols / 2 - 0.5, y * self.rows - 0.5)


# --- the anatomy ---------------------------------------------------------------------------

@dataclass
class _Body:
    """The patient's build, drawn from the seed (the findings widen the heart or mediastinum).

    Heights are fractions of the image height from the top; ``t`` is the distance from the
    patient's midline in the same units."""

    scale: float  # overall size of the thorax in the field
    shift: float  # lateral position of the midline (slight rotation)
    drop: float  # vertical offset of everything
    dome: float  # height of the right hemidiaphragm's dome (depth of inspiration)
    heart: float  # width of the heart
    female: bool
    cardio: float = 1.0  # > 1: cardiomegaly
    widened: float = 0.0  # > 0: a widened superior mediastinum

    def cage(self, y: np.ndarray) -> np.ndarray:
        """Half-width of the inner rib cage at height ``y`` (rounded over the apices)."""
        yy = (y - self.drop - 0.075) / self.scale
        return (0.318 * self.scale * (1 - np.exp(-np.maximum(yy, 0) / 0.1))).astype(np.float32)

    def diaphragm(self, t: np.ndarray, side: int) -> np.ndarray:
        """Height of the hemidiaphragm at ``t``; ``side`` -1 the patient's right, +1 left.
        A dome, then the costophrenic recess dipping steeply at the lateral chest wall."""
        s = self.scale
        top = self.dome + (0.022 if side > 0 else 0.0)
        peak = (0.15 if side < 0 else 0.16) * s
        wall = 0.318 * s
        dome = top + 1.7 * (t - peak) ** 2 / s
        recess = 0.045 * s * _step((t - (wall - 0.035 * s)) / (0.04 * s))
        return (dome + recess).astype(np.float32)

    def medial(self, y: np.ndarray, side: int) -> np.ndarray:
        """The lung's medial border at ``y``: the mediastinum above, the heart below."""
        s, yy = self.scale, (y - self.drop) / self.scale
        base = 0.047 * s + self.widened * s * np.exp(-((yy - 0.27) / 0.07) ** 2) * (
            1 + 0.3 * np.sin(yy * 70))
        grow = self.heart * self.cardio
        low = (self.dome - self.drop) / s  # the heart sits on the diaphragm
        if side < 0:  # the superior vena cava, then the right atrium's convex border
            svc = 0.006 * s * _step((yy - 0.16) / 0.04)
            reach = 0.14 + 0.03 * (self.cardio - 1)
            atrium = grow * 0.49 * s * np.sqrt(np.clip(1 - ((yy - low + 0.1) / reach) ** 2, 0, 1))
            return np.maximum(base + svc, atrium).astype(np.float32)
        # The aortic knob, the pulmonary trunk, then the left ventricle down to the apex.
        knob = 0.034 * s * np.exp(-((yy - 0.26) / 0.032) ** 2)
        trunk = 0.028 * s * np.exp(-((yy - 0.318) / 0.034) ** 2)
        reach = 0.27 + 0.03 * (self.cardio - 1)
        ventricle = grow * s * np.sqrt(np.clip(1 - ((yy - low + 0.05) / reach) ** 2, 0, 1))
        return np.maximum(base + knob + trunk, ventricle).astype(np.float32)


def _draw_body(rng: np.random.Generator, female: bool | None,
               findings: tuple[ImageFinding, ...]) -> _Body:
    scale = float(rng.uniform(0.95, 1.08))
    kinds = {f.kind for f in findings}
    return _Body(
        scale=scale, shift=float(rng.uniform(-0.01, 0.01)),
        drop=float(rng.uniform(-0.02, 0.025)), dome=float(rng.uniform(0.625, 0.685)),
        heart=0.185 * float(rng.uniform(0.9, 1.08)),
        female=bool(rng.random() < 0.5) if female is None else female,
        cardio=1.28 if "cardiomegaly" in kinds else 1.0,
        widened=0.032 if "mediastinum" in kinds else 0.0)


class _Film:
    """The radiograph being drawn: an additive density map on the working grid."""

    def __init__(self, g: _Grid, body: _Body, rng: np.random.Generator,
                 findings: tuple[ImageFinding, ...]) -> None:
        self.g, self.b, self.rng, self.findings = g, body, rng, findings
        self.dx = g.x - body.shift  # x from the patient's midline
        self.t = np.abs(self.dx)
        self.sides = {-1: (self.dx < 0).astype(np.float32), 1: (self.dx >= 0).astype(np.float32)}
        self.d = g.zeros()

    def lung(self, side: int, shrink: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
        """(mask, air) of one lung: the mask soft-edged over a pixel or two; the air is the
        lung's thickness along the beam (sharp at the heart and diaphragm, which are tangent
        to the beam, gentler at the chest wall and apex). ``shrink``: a pneumothorax's gap."""
        g, b, t, y = self.g, self.b, self.t, self.g.y
        s = b.scale
        medial = b.medial(y, side)
        lateral = b.cage(y) - 0.01 * s - shrink * (0.3 + 0.7 * _step((0.45 - y) / 0.25))
        lower = b.diaphragm(t, side)
        top = b.drop + (0.098 + 3.5 * (t / s - 0.11) ** 2) * s + shrink * 0.8  # apex dome
        e = 1.2 * g.px
        d_med, d_lat, d_low, d_top = t - medial, lateral - t, lower - y, y - top
        mask = (_step(d_med / e) * _step(d_lat / e) * _step(d_low / e) * _step(d_top / (3 * e))
                * self.sides[side])
        sharp = np.sqrt(np.clip(d_med / (0.05 * s), 0, 1)) * np.sqrt(
            np.clip(d_low / (0.035 * s), 0, 1))
        soft = (1 - np.exp(-np.clip(d_lat, 0, None) / (0.03 * s))) * (
            1 - np.exp(-np.clip(d_top, 0, None) / (0.05 * s)))
        zone = 0.72 + 0.28 * _step((y - b.drop - 0.18) / 0.2)  # thicker lower down
        return mask, mask * sharp * soft * zone

    def region(self, side: int, top: float, bottom: float, lateral: float = 1.0,
               medial: float = 0.0, soft: float = 0.03, lateral_soft: float = 0.12
               ) -> np.ndarray:
        """A soft band of one hemithorax: heights top..bottom, distance medial..lateral as a
        share of the cage's half-width."""
        y = self.g.y
        cage = self.b.cage(y)
        rel = self.t / np.maximum(cage, 1e-3)
        return (_step((y - top) / soft) * _step((bottom - y) / soft)
                * _step((rel - medial) / 0.12) * _step((lateral - rel) / lateral_soft)
                * self.sides[side]).astype(np.float32)

    def blob(self, cx: float, cy: float, rx: float, ry: float, soft: float = 0.25,
             lobulated: float = 0.0) -> np.ndarray:
        """A soft-edged ellipse around (cx, cy) in patient coordinates, computed in its box."""
        g = self.g
        out = g.zeros()
        pad = max(rx, ry) * (1.6 + lobulated) + 2 * g.px
        rows = g.row_range(cy - pad, cy + pad)
        x0, _ = g.to_px(cx - pad + self.b.shift, 0)
        x1, _ = g.to_px(cx + pad + self.b.shift, 0)
        cols = slice(max(0, int(x0) - 1), min(g.cols, int(x1) + 2))
        if rows.start >= rows.stop or cols.start >= cols.stop:
            return out
        dx = (self.dx[:, cols] - cx) / rx
        dy = (g.y[rows] - cy) / ry
        r = np.sqrt(dx * dx + dy * dy)
        if lobulated:
            angle = np.arctan2(dy, dx)
            phase = self.rng.uniform(0, 6.28, size=3)
            r = r * (1 + lobulated * (0.5 * np.sin(3 * angle + phase[0])
                                      + 0.3 * np.sin(5 * angle + phase[1])
                                      + 0.2 * np.sin(7 * angle + phase[2])))
        out[rows, cols] = _step((1 - r) / soft)
        return out

    def stroke(self, points: np.ndarray, width: float, weights: np.ndarray | None = None,
               target: np.ndarray | None = None) -> np.ndarray:
        """Splat points (N x 2, patient coordinates, about a pixel apart) onto the grid,
        blurred to ``width``: a line of about unit height."""
        g = self.g
        out = g.zeros() if target is None else target
        if not len(points):
            return out
        px = np.rint((points[:, 0] + self.b.shift) * g.rows + g.cols / 2 - 0.5).astype(int)
        py = np.rint(points[:, 1] * g.rows - 0.5).astype(int)
        keep = (px >= 0) & (px < g.cols) & (py >= 0) & (py < g.rows)
        if not keep.any():
            return out
        w = np.ones(len(points), np.float32) if weights is None else weights.astype(np.float32)
        r0, r1 = py[keep].min(), py[keep].max()
        c0, c1 = px[keep].min(), px[keep].max()
        sigma = max(width * g.rows / 2.0, 0.6)
        pad = int(3 * sigma) + 2
        r0, c0 = max(0, r0 - pad), max(0, c0 - pad)
        r1, c1 = min(g.rows, r1 + pad + 1), min(g.cols, c1 + pad + 1)
        flat = (py[keep] - r0) * (c1 - c0) + (px[keep] - c0)
        acc = np.bincount(flat, weights=w[keep], minlength=(r1 - r0) * (c1 - c0))
        acc = acc.astype(np.float32).reshape(r1 - r0, c1 - c0)
        acc = ndimage.gaussian_filter(acc, sigma, truncate=3.0) * (2.5 * sigma)
        out[r0:r1, c0:c1] += acc
        return out


def _line_points(path: list[tuple[float, float]], step: float) -> np.ndarray:
    """Points every ``step`` along a polyline, patient coordinates."""
    pts = np.asarray(path, dtype=np.float64)
    seg = np.diff(pts, axis=0)
    length = np.hypot(seg[:, 0], seg[:, 1])
    out = []
    for (a, d, n) in zip(pts[:-1], seg, length, strict=True):
        k = max(2, int(n / step))
        s = np.linspace(0, 1, k, endpoint=False)[:, None]
        out.append(a + s * d)
    out.append(pts[-1:])
    return np.concatenate(out)


def _bezier(p0, p1, p2, p3, step: float) -> np.ndarray:
    p = np.array([p0, p1, p2, p3], dtype=np.float64)
    approx = sum(np.hypot(*(p[i + 1] - p[i])) for i in range(3))
    s = np.linspace(0, 1, max(8, int(approx / step)))[:, None]
    return ((1 - s) ** 3 * p[0] + 3 * (1 - s) ** 2 * s * p[1] + 3 * (1 - s) * s ** 2 * p[2]
            + s ** 3 * p[3])


def _vessel_tree(rng: np.random.Generator, root: tuple[float, float], side: int,
                 px: float, scale: float) -> tuple[np.ndarray, np.ndarray]:
    """Branching pulmonary vessels fanning out from a hilum: (points, calibre weights).
    Each generation of branches is drawn at once (vectorised)."""
    # Main trunks of the right lung (degrees from +x, y down; lateral is -x), mirrored for
    # the left: up, up-lateral, lateral, down-lateral, down, down-medial.
    trunks = np.array([-100, -135, -170, 160, 125, 100, 80], dtype=np.float64)
    lengths = np.array([0.08, 0.07, 0.06, 0.07, 0.08, 0.09, 0.07]) * scale
    angle = np.deg2rad((trunks if side < 0 else 180 - trunks) + rng.uniform(-10, 10, 7))
    x = np.full(7, root[0])
    y = np.full(7, root[1])
    length = lengths * rng.uniform(0.85, 1.15, 7)
    calibre = np.ones(7)
    points, weights = [], []
    while len(x):
        n = max(3, int(length.max() / (0.7 * px)))
        u = np.linspace(0, 1, n)[None, :]
        bend = rng.uniform(-0.15, 0.15, len(x))[:, None]
        angles = angle[:, None] + bend * u
        step = (length / n)[:, None]
        xs = x[:, None] + np.cumsum(np.cos(angles), axis=1) * step
        ys = y[:, None] + np.cumsum(np.sin(angles), axis=1) * step
        points.append(np.stack([xs.ravel(), ys.ravel()], axis=1))
        weights.append((calibre[:, None] * (1 - 0.3 * u)).ravel())
        go = calibre > 0.2
        if not go.any():
            break
        end_x, end_y, end_a = xs[go, -1], ys[go, -1], angles[go, -1]
        radial = np.arctan2(end_y - root[1], end_x - root[0])
        end_a = end_a + 0.5 * np.angle(np.exp(1j * (radial - end_a)))  # keep fanning out
        k = len(end_x)
        spread = np.deg2rad(rng.uniform(12, 32, (2, k))) * np.array([[-1.0], [1.0]])
        x = np.concatenate([end_x, end_x])
        y = np.concatenate([end_y, end_y])
        angle = np.concatenate([end_a + spread[0], end_a + spread[1]])
        length = np.concatenate([length[go], length[go]]) * rng.uniform(0.6, 0.82, 2 * k)
        calibre = np.concatenate([calibre[go], calibre[go]]) * rng.uniform(0.58, 0.72, 2 * k)
    return np.concatenate(points), np.concatenate(weights).astype(np.float32)


def _anatomy(film: _Film) -> dict:
    """Draw the normal chest; returns the lungs (masks, air) for the findings."""
    g, b, rng = film.g, film.b, film.rng
    y, t, dx = g.y, film.t, film.dx
    s = b.scale
    yy = (y - b.drop) / s
    ptx = {}
    for f in film.findings:
        if f.kind == "pneumothorax":
            gap = {"small": 0.02, "moderate": 0.045, "large": 0.09}.get(f.size, 0.04) * s
            for side in _sides(f.side):
                ptx[side] = gap
    lungs, air, inner = {}, {}, {}
    for side in (-1, 1):
        lungs[side], air[side] = film.lung(side)
        inner[side] = film.lung(side, ptx[side])[0] if side in ptx else lungs[side]
    lung = lungs[-1] + lungs[1]

    # Soft tissue: the body as an elliptic cylinder whose width follows the outline: the neck,
    # the shoulders sloping out to the arms, the chest wall, the abdomen below.
    cage = b.cage(y)
    neck = 0.085 * s
    shoulder = neck + (0.4 * s) * _step((yy - 0.075) / 0.075)
    chest = cage + 0.055 * s
    axilla = shoulder - 1.5 * s * np.clip(yy - 0.16, 0, None)  # the axillary folds
    outline = np.maximum(np.minimum(shoulder, axilla), chest)
    depth = np.clip(1 - (t / (outline + 0.015)) ** 2, 0, 1)
    body = _step((outline - t) / (0.01 * s))
    thick = body * np.sqrt(depth) * (0.75 + 0.25 * depth) * (
        0.72 + 0.28 * _step((yy - 0.12) / 0.1))
    d = film.d
    d += 0.62 * thick
    # Breasts over the lower zones.
    if b.female:
        for side in (-1, 1):
            br = film.blob(side * 0.2 * s, b.dome - 0.02, 0.16 * s, 0.12 * s, soft=0.6)
            d += 0.07 * br * _step((b.dome + 0.07 - y) / 0.015)
    # Lung air, the retrocardiac lower lobe behind the heart, the gastric bubble.
    total_air = air[-1] + air[1]
    d -= AIR * total_air
    retro = _step((b.dome - y) / 0.02) * _step((y - b.dome + 0.2) / 0.05) * _step(
        (b.medial(y, 1) - dx) / 0.03) * _step((dx - 0.03 * s) / 0.03)
    d -= 0.05 * retro
    under = _step((y - b.diaphragm(t, 1)) / (1.5 * g.px)) * film.sides[1]
    bubble = film.blob(0.14 * s, b.dome + 0.022 + 0.05 * s, 0.05 * s, 0.028 * s, soft=0.35)
    d -= 0.12 * bubble * under * float(rng.uniform(0.3, 1.0))
    texture = _smooth_noise(rng, d.shape, max(3, g.rows // 110))
    d += 0.014 * texture * lung

    # Trachea and main bronchi (air), hila, vessels.
    carina = b.drop + 0.3 * s
    tube = _step((0.017 * s - np.abs(dx + 0.003)) / (2.5 * g.px)) * _step((carina - y) / 0.012)
    d -= 0.07 * tube * _step((yy - 0.02) / 0.05)
    bronchi = film.stroke(_line_points([(0.0, carina), (-0.065 * s, carina + 0.06 * s)], g.px),
                          0.024 * s)
    film.stroke(_line_points([(0.003, carina), (0.085 * s, carina + 0.055 * s)], g.px),
                0.021 * s, target=bronchi)
    d -= 0.05 * np.clip(bronchi / max(float(bronchi.max()), 1e-6), 0, 1)
    hila = {-1: (-0.1 * s, b.drop + 0.415 * s), 1: (0.1 * s, b.drop + 0.39 * s)}
    vessels = g.zeros()
    for side, (hx, hy) in hila.items():
        d += 0.07 * film.blob(hx, hy, 0.028 * s, 0.055 * s, soft=0.7) * lungs[side]
        pts, w = _vessel_tree(rng, (hx, hy), side, g.px, s)
        for low, high, width in ((0.45, 2, 0.008), (0.25, 0.45, 0.0045), (0, 0.25, 0.0028)):
            pick = (w > low) & (w <= high)
            film.stroke(pts[pick], width * s, w[pick] ** 1.3 * 0.85, target=vessels)
    vessels = np.clip(vessels, 0, 1.2)
    markings = inner[-1] + inner[1]
    d += 0.08 * vessels * markings

    # Bones.
    _spine(film, lung)
    _ribs(film, lung)
    _clavicles(film)
    for side in (-1, 1):  # humeral heads and shafts, scapulae
        hx = side * 0.425 * s
        d += 0.1 * film.blob(hx, b.drop + 0.15 * s, 0.055 * s, 0.06 * s, soft=0.2)
        shaft = _line_points([(hx, b.drop + 0.2 * s), (side * 0.48 * s, b.drop + 0.45 * s)],
                             g.px)
        d += 0.07 * np.clip(film.stroke(shaft, 0.05 * s), 0, 1.2)
        scap = _bezier((side * 0.24 * s, b.drop + 0.13 * s), (side * 0.27 * s, b.drop + 0.25 * s),
                       (side * 0.3 * s, b.drop + 0.35 * s), (side * 0.37 * s, b.drop + 0.41 * s),
                       g.px)
        d += 0.03 * np.clip(film.stroke(scap, 0.012 * s), 0, 1)
    return {"lungs": lungs, "air": air, "inner": inner, "vessels": vessels}


def _sides(side: str) -> tuple[int, ...]:
    return {"right": (-1,), "left": (1,), "both": (-1, 1)}.get(side, (-1,))


def _spine(film: _Film, lung: np.ndarray) -> None:
    """The thoracic spine through the mediastinum: faint vertebral bodies, pedicles,
    spinous processes and darker disc spaces."""
    g, b = film.g, film.b
    s = b.scale
    y = g.y
    column = _step((0.033 * s - film.t) / (0.006 * s))
    level = 0.058 * s
    phase = (y - b.drop - 0.04) / level
    frac = phase - np.floor(phase)
    disc = np.exp(-((frac - 0.93) / 0.05) ** 2) + np.exp(-((frac + 0.07) / 0.05) ** 2)
    pedicle = np.exp(-((film.t - 0.022 * s) / (0.006 * s)) ** 2) * np.exp(
        -((frac - 0.35) / 0.13) ** 2)
    spinous = np.exp(-(film.dx / (0.005 * s)) ** 2) * np.exp(-((frac - 0.7) / 0.14) ** 2)
    fade = 0.4 + 0.6 * _step((b.dome + 0.05 - y) / 0.08)
    film.d += (1 - lung) * fade * (column * (0.022 - 0.01 * disc) + 0.01 * pedicle
                                   + 0.006 * spinous)


def _ribs(film: _Film, lung: np.ndarray) -> None:
    """Posterior ribs as arched tubes (brighter cortices) from the spine to the lateral chest
    wall, curving down laterally; fainter anterior ribs running down and medially."""
    g, b, rng = film.g, film.b, film.rng
    s = b.scale
    fractures = {(side, f.rib or 7) for f in film.findings if f.kind == "fracture"
                 for side in _sides(f.side)}
    for k in range(1, 12):
        y0 = b.drop + (0.093 + 0.052 * (k - 1) + 0.0012 * (k - 1) ** 2) * s
        half = (0.0095 + 0.0005 * k) * s
        rows = g.row_range(y0 - 0.04 * s, y0 + 0.2 * s)
        if rows.start >= rows.stop:
            continue
        y = g.y[rows]
        cage = b.cage(y)
        for side in (-1, 1):
            cols = film.sides[side][0] > 0
            t = film.t[:, cols]
            u = np.clip((t - 0.03 * s) / s, 0, None)
            a, bb, c = (0.32, 2.6, 1.5) if k <= 2 else (0.2, 1.6, 3.4)
            centre = y0 - a * s * u + bb * s * u ** 2 + c * s * u ** 3
            slope = -a + 2 * bb * u + 3 * c * u ** 2
            if (side, k) in fractures:
                centre = centre + 0.005 * s * _step((t - 0.265 * s) / (0.003 * s))
            dist = (y - centre) / np.sqrt(1 + slope ** 2) / half
            inside = np.clip(1 - dist ** 2, 0, 1)
            shell = inside ** 0.4 - 0.7 * np.clip(0.6 - dist ** 2, 0, 1) ** 0.5
            shell = shell * (1.1 - 0.25 * dist)  # the lower cortex is thicker
            reach = _step((cage + 0.016 * s - t) / (0.014 * s)) * _step((t - 0.025 * s) / 0.012)
            seen = 0.2 + 0.8 * lung[rows][:, cols]
            value = 0.058 * shell * reach * seen * float(rng.uniform(0.8, 1.1))
            if (side, k) in fractures:
                value *= 1 - 0.9 * np.exp(-((t - 0.265 * s) / (0.0022 * s)) ** 2)
            film.d[rows, cols] += value
            # The anterior rib: from the lateral wall, down and medially, fading medially.
            y_lat = y0 + 0.06 * s
            a_centre = y_lat + 0.55 * (cage - t) + 0.3 * (cage - t) ** 2 / s
            a_dist = (y - a_centre) / (0.011 * s)
            a_band = (np.sqrt(np.clip(1 - a_dist ** 2, 0, 1))
                      - 0.6 * np.sqrt(np.clip(0.5 - a_dist ** 2, 0, 1))) * _step(
                (t - 0.12 * s) / (0.06 * s)) * _step((cage - t) / (0.01 * s))
            film.d[rows, cols] += 0.035 * a_band * lung[rows][:, cols]


def _clavicles(film: _Film) -> None:
    g, b = film.g, film.b
    s = b.scale
    rows = g.row_range(b.drop + 0.02, b.drop + 0.28)
    y = g.y[rows]
    t = film.t
    u = np.clip((t - 0.028 * s) / (0.28 * s), 0, 1)
    centre = b.drop + (0.18 - 0.012 * u - 0.05 * u ** 2.2 + 0.006 * np.sin(2 * np.pi * u)) * s
    half = (0.0125 + 0.007 * (1 - u) ** 6 + 0.003 * u ** 4) * s
    dist = (y - centre) / half
    inside = np.clip(1 - dist ** 2, 0, 1)
    shell = np.sqrt(inside) - 0.6 * np.sqrt(np.clip(0.55 - dist ** 2, 0, 1))
    reach = _step((t - 0.026 * s) / 0.006) * _step((0.31 * s - t) / 0.012)
    film.d[rows] += 0.095 * shell * reach


# --- findings ------------------------------------------------------------------------------

def _lobe_region(film: _Film, side: int, lobe: str) -> np.ndarray:
    """Where a lobe projects on a PA film (soft-edged; the right upper lobe's lower border is
    the horizontal fissure, sharp). The lower lobes reach the hemidiaphragm, the middle lobe
    and lingula the heart border: the silhouettes a consolidation there effaces."""
    b, s, y = film.b, film.b.scale, film.g.y
    top, dome = b.drop + 0.1, b.dome + (0.024 if side > 0 else 0)
    fissure = b.drop + 0.4 * s  # the horizontal fissure (right) / the lingula's top (left)
    if lobe == "upper":
        area = film.region(side, top, fissure + (0.05 if side > 0 else 0), soft=0.05)
        if side < 0:
            area *= _step((fissure - y) / (1.2 * film.g.px))
        return area
    if lobe in ("middle", "lingula"):
        area = film.region(side, fissure + (0.03 if side > 0 else 0), dome, lateral=0.6,
                           soft=0.04, lateral_soft=0.3)
        if side < 0:
            area *= _step((y - fissure) / (1.2 * film.g.px))
        return area
    return film.region(side, fissure + 0.09 * s, dome + 0.1, medial=0.12, soft=0.05)


def _zone_centre(film: _Film, side: int, zone: str) -> tuple[float, float]:
    """A point in the lung's upper, mid or lower zone, away from its edges."""
    b, s, rng = film.b, film.b.scale, film.rng
    cy = {"upper": 0.22, "mid": 0.4, "lower": 0.53}.get(zone, 0.4) * s + b.drop
    cy += float(rng.uniform(-0.03, 0.03))
    rel = float(rng.uniform(0.35, 0.65))
    cage = float(b.cage(np.float32(cy)))
    medial = float(b.medial(np.float32(cy), side))
    cx = side * (medial + rel * (cage - 0.01 * s - medial))
    return cx, cy


def _patchy(film: _Film, area: np.ndarray, cover: float, cell: int = 40) -> np.ndarray:
    """Patchy opacity, confluent in places, filling about ``cover`` of ``area`` with fluffy,
    ill-defined margins (0..1)."""
    g = film.g
    n = _smooth_noise(film.rng, area.shape, max(3, g.rows // cell))
    n += 0.4 * _smooth_noise(film.rng, area.shape, max(2, g.rows // (cell * 3)))
    inside = area > 0.5
    level = float(np.quantile(n[inside], 1 - cover)) if inside.any() else 0.0
    return area * np.clip((n - level) / 2.0 + 0.55, 0, 1) ** 1.3


def _findings(film: _Film, parts: dict) -> None:
    g, b, rng = film.g, film.b, film.rng
    s = b.scale
    d, y, t = film.d, g.y, film.t
    lungs, air, inner, vessels = parts["lungs"], parts["air"], parts["inner"], parts["vessels"]
    for f in film.findings:
        sides = _sides(f.side)
        if f.kind in ("consolidation", "opacity"):
            for side in sides:
                if f.kind == "consolidation":
                    area = _lobe_region(film, side, f.lobe or "lower") * lungs[side]
                    cover, dens = 0.85, 0.9
                else:
                    cx, cy = _zone_centre(film, side, f.zone or "lower")
                    area = film.blob(cx, cy, 0.07 * s, 0.06 * s, soft=0.9) * lungs[side]
                    cover, dens = 0.75, 0.45
                opacity = area * (0.45 + 0.55 * _patchy(film, area, cover) / np.maximum(area, 0.05))
                opacity = np.clip(opacity, 0, 1)
                d += AIR * dens * opacity * air[side]  # fluid in the airspaces replaces air
                # Air bronchograms: branching dark lines inside the densest parts.
                if f.kind == "consolidation":
                    d -= 0.05 * np.clip(vessels, 0, 1) * opacity ** 2
        elif f.kind == "tb":
            for side in sides:
                area = film.region(side, b.drop + 0.1, b.drop + 0.32 * s, medial=0.15,
                                   lateral=0.92, soft=0.06) * lungs[side]
                d += AIR * 0.5 * _patchy(film, area, 0.6, cell=60) * air[side]
                for _ in range(int(rng.integers(8, 16))):  # acinar nodules in the zone
                    cx, cy = _zone_centre(film, side, "upper")
                    r = float(rng.uniform(0.004, 0.009)) * s
                    d += 0.07 * film.blob(cx, cy + float(rng.uniform(-0.05, 0.04)), r, r,
                                          soft=0.7) * lungs[side]
                hx, hy = side * 0.1 * s, b.drop + 0.38 * s
                for _ in range(3):  # fibrotic strands towards the hilum
                    cx, cy = _zone_centre(film, side, "upper")
                    strand = _line_points([(cx, cy), (hx, hy)], g.px)
                    d += 0.03 * np.clip(film.stroke(strand, 0.004 * s), 0, 1) * lungs[side]
            if f.cavity:
                side = sides[0]
                cx, cy = _zone_centre(film, side, "upper")
                r = float(rng.uniform(0.016, 0.024)) * s
                wall = film.blob(cx, cy, r * 1.5, r * 1.4, soft=0.35, lobulated=0.05)
                hole = film.blob(cx, cy + 0.002 * s, r, r * 0.85, soft=0.3)
                d += (AIR * 0.55 * wall * air[side] - 0.05 * hole) * lungs[side]
        elif f.kind in ("nodule", "mass"):
            side = sides[0]
            cx, cy = _zone_centre(film, side, f.zone or "mid")
            r = (f.cm or (1.8 if f.kind == "nodule" else 4.5)) / 43.0 * s / 2
            lesion = film.blob(cx, cy, r, r * float(rng.uniform(0.88, 1.05)),
                               soft=0.3 if f.kind == "mass" else 0.4,
                               lobulated=0.07 if f.kind == "mass" else 0.02)
            thick = np.sqrt(np.clip(lesion, 0, 1))  # a sphere: thicker in its middle
            d += (0.26 if f.kind == "mass" else 0.17) * thick * _step(lungs[side] * 3 - 0.5)
            d -= 0.06 * np.clip(vessels, 0, 1) * lesion * inner[side]  # solid: no markings
            if f.kind == "mass":  # a few spicules
                for _ in range(int(rng.integers(4, 9))):
                    a = float(rng.uniform(0, 2 * np.pi))
                    ln = r * float(rng.uniform(0.3, 0.7))
                    spic = _line_points([(cx + r * np.cos(a), cy + r * np.sin(a)),
                                         (cx + (r + ln) * np.cos(a), cy + (r + ln) * np.sin(a))],
                                        g.px)
                    d += 0.03 * np.clip(film.stroke(spic, 0.003 * s), 0, 1) * lungs[side]
        elif f.kind == "effusion":
            depth = {"small": 0.035, "moderate": 0.13, "large": 0.26}.get(f.size, 0.1) * s
            for side in sides:
                cage = np.maximum(b.cage(y), 1e-3)
                dome = b.dome + (0.022 if side > 0 else 0)
                # The meniscus: concave, climbing the lateral chest wall, lower medially; the
                # fluid thins towards its upper edge, so the edge is ill-defined.
                rel = np.clip(t / cage, 0, 1)
                level = dome + 0.06 * s - depth - 0.09 * s * rel ** 1.8 + 0.02 * s * (1 - rel)
                fluid = _step((y - level) / (0.02 * s)) * lungs[side]
                thick = 0.75 + 0.25 * _step((y - level - 0.04 * s) / (0.04 * s))
                d += AIR * fluid * thick * air[side] + 0.03 * fluid
                d -= 0.07 * np.clip(vessels, 0, 1) * fluid * inner[side]  # markings hidden
        elif f.kind == "pneumothorax":
            for side in sides:
                rim = np.clip(lungs[side] - inner[side], 0, 1)
                d -= 0.03 * rim
                d -= 0.065 * np.clip(vessels, 0, 1) * rim  # no lung markings beyond the edge
                m = inner[side]
                edge = 4 * m * (1 - m) * _step((t - b.medial(y, side) - 0.03) / 0.01)
                d += 0.07 * edge * lungs[side]
                d += 0.025 * m * lungs[side]  # the collapsing lung is a little denser
        elif f.kind == "edema":
            for side in (-1, 1):
                hx = side * 0.11 * s
                haze = film.blob(hx, b.drop + 0.43 * s, 0.15 * s, 0.17 * s, soft=1.2)
                d += 0.14 * _patchy(film, haze * lungs[side], 0.85, cell=25)
                for _ in range(int(rng.integers(5, 9))):  # Kerley B lines at the bases
                    ly = b.dome - float(rng.uniform(0.0, 0.1))
                    lx = float(b.cage(np.float32(ly))) - 0.012 * s
                    seg = _line_points([(side * lx, ly), (side * (lx - 0.022 * s), ly)], g.px)
                    d += 0.06 * np.clip(film.stroke(seg, 0.0025 * s), 0, 1) * lungs[side]
            # Upper lobe diversion: the upper zone vessels as prominent as the lower.
            d += 0.035 * vessels * (lungs[-1] + lungs[1]) * _step((0.36 - y) / 0.06)
        elif f.kind == "atelectasis":
            for side in sides:
                ly = b.dome - float(rng.uniform(0.03, 0.07))
                x0 = float(rng.uniform(0.1, 0.16)) * s
                band = _line_points([(side * x0, ly), (side * (x0 + 0.12 * s), ly - 0.015)],
                                    g.px)
                d += 0.08 * np.clip(film.stroke(band, 0.006 * s), 0, 1) * lungs[side]
        elif f.kind == "pleural":
            for side in sides:
                cap = film.region(side, b.drop + 0.09, b.drop + 0.15, medial=0.2)
                d += 0.08 * cap * _step((lungs[side] - 0.2) / 0.3)
        elif f.kind == "line":
            path = _bezier((-0.085 * s, 0.0), (-0.08 * s, b.drop + 0.12),
                           (-0.05 * s, b.drop + 0.2), (-0.03 * s, b.drop + 0.33 * s), g.px)
            d += 0.2 * np.clip(film.stroke(path, 0.003 * s), 0, 1)
    # An enlarged heart or widened mediastinum is drawn by the borders (_Body.cardio, widened).


# --- the whole image -----------------------------------------------------------------------

def cxr_pixels(*, seed: int, rows: int = 1024, columns: int = 1024,
               opacity: bool | None = None, findings: tuple[ImageFinding, ...] | None = None,
               female: bool | None = None) -> np.ndarray:
    """A float32 map in [0, 1] (1 = bright on MONOCHROME2), deterministic from ``seed``.

    ``findings``: what to draw. Without it, ``opacity`` True draws a consolidation, False
    none, and None (the default) one in 40% of seeds, as before.
    """
    rng = np.random.default_rng(seed)
    g = _Grid(rows, columns)
    body = _draw_body(rng, female, tuple(findings or ()))
    if findings is None:
        has_opacity = rng.random() < 0.4 if opacity is None else opacity
        findings = ()
        if has_opacity:
            findings = (ImageFinding("consolidation", side=str(rng.choice(["right", "left"])),
                                     lobe="lower"),)
    film = _Film(g, body, rng, tuple(findings))
    parts = _anatomy(film)
    _findings(film, parts)
    d = film.d
    # Processing as a modality does: compress the large-scale range, sharpen the edges.
    wide = _blur(d, 0.07 * g.rows, coarse=8)
    d = d - 0.3 * (wide - float(wide.mean()))
    d = d + 0.3 * (d - _blur(d, 0.008 * g.rows, coarse=2))
    # Exposure: the anode heel (top lighter) and fall-off towards the edges.
    r2 = (g.x / max(g.half_width, 1e-3)) ** 2 + ((g.y - 0.5) / 0.5) ** 2
    d = d + 0.035 * (1 - g.y) + 0.05 * r2
    d = np.clip(0.08 + 0.92 * d, 0, None)
    full = _resize(d, (rows, columns))
    # Quantum noise: more where fewer photons arrive (the bright, dense parts).
    noise = rng.standard_normal((rows, columns), dtype=np.float32)
    full += noise * (0.006 + 0.014 * np.clip(full, 0, 1))
    full = np.clip(full, 0, 1)
    if rows >= TEXT_MIN_ROWS and columns >= TEXT_MIN_ROWS // 2:
        _burn_in(full)
    return full.astype(np.float32, copy=False)


def _burn_in(pixels: np.ndarray) -> None:
    """The side marker (R, at the patient's right: the image's upper left) and SYNTHETIC."""
    rows, cols = pixels.shape
    size = max(10, rows // 40)
    font = ImageFont.load_default(size=size)
    for text, (x, y) in (("R", (int(cols * 0.06), int(rows * 0.035))),
                         (BURNED_IN, (int(cols * 0.06), int(rows * 0.95) - size))):
        left, top, right, bottom = font.getbbox(text)
        w, h = right - left + 8, bottom - top + 8
        if x + w >= cols or y + h >= rows:
            continue
        canvas = PILImage.new("L", (w, h), 0)
        draw = ImageDraw.Draw(canvas)
        draw.text((4 - left, 4 - top), text, fill=255, font=font)
        if text == "R":
            draw.rectangle((0, 0, w - 1, h - 1), outline=255, width=max(1, size // 12))
        mark = np.asarray(canvas, dtype=np.float32) / 255.0
        region = pixels[y:y + h, x:x + w]
        np.maximum(region, mark * 0.97, out=region)


def make_cxr(
    path: Path | str,
    *,
    seed: int,
    rows: int = 1024,
    columns: int = 1024,
    patient_id: str = "SYN000001",
    patient_name: str = "Synthetic^Patient",
    study_uid: str | None = None,
    series_uid: str | None = None,
    sop_uid: str | None = None,
    accession: str = "SYNACC0001",
    age: int | str | None = 54,
    sex: str = "F",
    modality: str = "DX",
    view_position: str = "PA",
    photometric: str = "MONOCHROME2",
    bits: int = 16,
    transfer_syntax: str = ExplicitVRLittleEndian,
    opacity: bool | None = None,
    findings: tuple[ImageFinding, ...] | None = None,
    pixel_spacing: float = 0.35,
    institution: str = "Synthetic General Hospital",
    referring_physician: str = "Referrer^Synthetic",
) -> Path:
    """Write a synthetic PA chest radiograph; returns ``path``.

    ``bits`` is BitsStored (8 to 16); ``transfer_syntax`` may be a lossless compressed one
    (RLE Lossless, JPEG 2000 Lossless); ``photometric`` MONOCHROME1 stores inverted values.
    ``findings`` (``ImageFinding``) are drawn where they say; see ``cxr_pixels``.
    """
    path = Path(path)
    top = 2**bits - 1
    pixels = cxr_pixels(seed=seed, rows=rows, columns=columns, opacity=opacity,
                        findings=findings, female=None if sex not in ("F", "M") else sex == "F")
    values = np.rint(pixels * (0.92 * top) + 0.02 * top)
    if photometric == "MONOCHROME1":
        values = top - values
    arr = values.astype(np.uint8 if bits <= 8 else np.uint16)
    ds = _identified_dataset(
        seed=seed, patient_id=patient_id, patient_name=patient_name, accession=accession,
        age=age, sex=sex, modality=modality, institution=institution,
        referring_physician=referring_physician, pixel_spacing=pixel_spacing,
    )
    ds.StudyInstanceUID = study_uid or generate_uid()
    ds.SeriesInstanceUID = series_uid or generate_uid()
    ds.SOPInstanceUID = sop_uid or generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.ViewPosition = view_position
    ds.set_pixel_data(arr, photometric, bits, generate_instance_uid=False)
    low, high = np.percentile(arr[::4, ::4], [0.5, 99.5])
    ds.WindowCenter = f"{(low + high) / 2:.0f}"
    ds.WindowWidth = f"{max(high - low, 1):.0f}"
    ds.WindowCenterWidthExplanation = "SYNTHETIC DEFAULT"
    if UID(transfer_syntax).is_compressed:
        ds.compress(transfer_syntax, generate_instance_uid=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path


def _identified_dataset(*, seed: int, patient_id: str, patient_name: str, accession: str,
                        age: int | str | None, sex: str, modality: str, institution: str,
                        referring_physician: str, pixel_spacing: float = 0.35) -> Dataset:
    """Everything a real file would carry about the patient, site and people."""
    study_date = dt.date(2025, 1, 1) + dt.timedelta(days=seed % 365)
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = SOP_CLASSES.get(modality, SecondaryCaptureImageStorage)
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.Modality = modality
    ds.PatientName = patient_name
    ds.PatientID = patient_id
    ds.OtherPatientIDs = f"OTHER-{patient_id}"
    ds.PatientSex = sex
    if isinstance(age, int):
        ds.PatientAge = f"{age:03d}Y"
        birth = study_date.replace(year=study_date.year - age) - dt.timedelta(days=seed % 300 + 1)
        ds.PatientBirthDate = birth.strftime("%Y%m%d")
    elif age:
        ds.PatientAge = age
    ds.PatientAddress = "1 Synthetic Street, Nowhere"
    ds.InstitutionName = institution
    ds.InstitutionAddress = "2 Example Road, Sampletown"
    ds.ReferringPhysicianName = referring_physician
    ds.OperatorsName = "Operator^Synthetic"
    ds.StationName = "SYNTH-STATION-1"
    ds.AccessionNumber = accession
    ds.StudyID = f"S{seed:06d}"
    ds.StudyDescription = f"CHEST PA for {patient_name}"
    ds.StudyDate = ds.SeriesDate = ds.ContentDate = study_date.strftime("%Y%m%d")
    ds.StudyTime = ds.SeriesTime = ds.ContentTime = "101500"
    ds.ImageComments = COMMENT
    ds.Manufacturer = MANUFACTURER
    ds.ManufacturerModelName = MODEL_NAME
    ds.DeviceSerialNumber = f"SN-{seed:08d}"
    ds.BodyPartExamined = "CHEST"
    ds.ImageType = ["ORIGINAL", "PRIMARY"]
    ds.PresentationIntentType = "FOR PRESENTATION"
    ds.BurnedInAnnotation = "NO"  # a side marker and "SYNTHETIC": nothing that identifies
    ds.SeriesNumber = 1
    ds.InstanceNumber = 1
    ds.ImagerPixelSpacing = [pixel_spacing, pixel_spacing]
    ds.PixelSpacing = [pixel_spacing, pixel_spacing]
    block = ds.private_block(0x0029, PRIVATE_CREATOR, create=True)
    block.add_new(0x01, "LO", f"private note on {patient_id}")
    return ds
