"""A deterministic synthetic multi-camera person re-ID data set in Market-1501 layout.

``write_synthetic(root, ...)`` draws small figures of people and writes::

    root/bounding_box_train/0001_c1s1_000123_01.jpg   training identities
    root/query/0121_c2s1_000456_01.jpg                at most one per identity and camera
    root/bounding_box_test/...                        gallery: test identities on several
                                                      cameras, distractors (0000_...) and
                                                      junk (-1_...)
    root/synthetic.json                               the arguments and the counts

What separates identities: upper- and lower-body colours (from a shared palette, so single
colours collide between identities), the upper-body pattern (solid, horizontal or vertical
stripes, checks, chest logo), shorts or trousers, shoe colour, build (height and width of
the figure), hair colour, and accessories (backpack, shoulder bag on a fixed side, hat).

What each camera adds (the nuisance a model must learn to ignore): background colours and
texture, illumination gain and a left-right light gradient, a colour cast per channel,
blur, a resolution loss, the figure's scale, the viewpoints it sees (front, back or side:
the backpack is a patch on the back, two straps in front; the bag hides on the far side),
mirroring, and how often a box occludes the figure. Each image adds its own jitter:
position, size, gain, cast, noise, background offset. The colour cast and gain are
strong enough that matching raw colours across cameras is unreliable.

Everything is drawn with numpy from ``numpy.random.default_rng`` streams keyed by the
seed, so the same seed writes byte-identical files (given the same numpy and Pillow).
The folder is written atomically: into a temporary folder beside ``root``, then renamed.
"""

from __future__ import annotations

import io
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

from clipreid.errors import ConfigError
from clipreid.io import atomic_dir

GENERATOR_VERSION = 1

# Clothing palette (RGB); identities draw from it with a little jitter.
PALETTE = np.array(
    [
        (25, 25, 30),  # black
        (235, 235, 230),  # white
        (128, 128, 128),  # grey
        (30, 40, 90),  # navy
        (40, 90, 200),  # blue
        (120, 170, 230),  # light blue
        (200, 30, 40),  # red
        (110, 20, 30),  # dark red
        (40, 140, 60),  # green
        (100, 110, 40),  # olive
        (230, 200, 40),  # yellow
        (240, 130, 30),  # orange
        (240, 140, 180),  # pink
        (110, 50, 150),  # purple
        (110, 70, 40),  # brown
        (210, 190, 150),  # beige
    ],
    dtype=np.float32,
)
SKIN = np.array([(240, 200, 170), (200, 150, 110), (140, 95, 60), (90, 60, 40)], np.float32)
HAIR = np.array([(20, 15, 10), (70, 45, 25), (150, 110, 60), (200, 200, 200)], np.float32)
PATTERNS = ("solid", "hstripes", "vstripes", "checks", "logo")
BAGS = ("none", "backpack", "shoulder")
VIEWS = ("front", "back", "side")

# Stream keys for numpy SeedSequences: [seed, key, index].
_PLAN, _CAMERA, _IDENTITY, _IMAGE, _EXTRA = 0, 1, 2, 3, 4


@dataclass(frozen=True)
class Identity:
    """Appearance of one identity."""

    upper: np.ndarray
    accent: np.ndarray
    lower: np.ndarray
    shoes: np.ndarray
    skin: np.ndarray
    hair: np.ndarray
    pattern: str
    period: float  # stripe / check period, as a fraction of the figure height
    shorts: bool
    height: float  # figure height, fraction of the image height
    aspect: float  # figure width / figure height
    bag: str
    bag_colour: np.ndarray
    bag_side: int  # -1 left, +1 right (in the front view)
    hat: np.ndarray | None


@dataclass(frozen=True)
class Camera:
    """Nuisance of one camera."""

    background: np.ndarray  # H x W x 3 float32
    gain: float
    cast: np.ndarray  # per-channel multipliers
    light: float  # left-right illumination slope
    blur: float  # Gaussian blur radius (pixels)
    resolution: float  # 1.0 = full; < 1 loses detail (down- then up-sampling)
    scale: float  # figure size factor
    view_p: np.ndarray  # probabilities of front / back / side
    mirror_p: float
    occlusion_p: float


def _colour(rng: np.random.Generator, table: np.ndarray, jitter: float) -> np.ndarray:
    """A colour of ``table`` with uniform jitter."""
    base = table[rng.integers(len(table))]
    return np.clip(base + rng.uniform(-jitter, jitter, 3), 0, 255).astype(np.float32)


def make_identity(rng: np.random.Generator) -> Identity:
    """Draw an identity's appearance."""
    upper = _colour(rng, PALETTE, 18)
    accent = _colour(rng, PALETTE, 18)
    while np.abs(accent - upper).sum() < 120:  # a visible pattern
        accent = _colour(rng, PALETTE, 18)
    bag = BAGS[rng.choice(3, p=[0.45, 0.3, 0.25])]
    return Identity(
        upper=upper,
        accent=accent,
        lower=_colour(rng, PALETTE[[0, 2, 3, 4, 7, 9, 14, 15]], 18),
        shoes=_colour(rng, PALETTE[[0, 1, 2, 14]], 10),
        skin=_colour(rng, SKIN, 10),
        hair=_colour(rng, HAIR, 10),
        pattern=PATTERNS[rng.integers(len(PATTERNS))],
        period=float(rng.uniform(0.035, 0.07)),
        shorts=bool(rng.random() < 0.25),
        height=float(rng.uniform(0.78, 0.95)),
        aspect=float(rng.uniform(0.30, 0.44)),
        bag=bag,
        bag_colour=_colour(rng, PALETTE, 18),
        bag_side=int(rng.choice([-1, 1])),
        hat=_colour(rng, PALETTE, 18) if rng.random() < 0.25 else None,
    )


def _background(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A camera's background: two colours in one of four textures, darker floor."""
    first = rng.uniform(40, 220, 3).astype(np.float32)
    second = np.clip(first + rng.normal(0, 45, 3), 0, 255).astype(np.float32)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    kind = rng.integers(4)
    if kind == 0:  # vertical gradient
        mix = yy / (height - 1)
    elif kind == 1:  # floor tiles
        size = float(rng.integers(6, 14))
        mix = ((yy // size + xx // size) % 2).astype(np.float32)
    elif kind == 2:  # vertical stripes (shop fronts, railings)
        size = float(rng.integers(4, 12))
        mix = ((xx // size) % 2).astype(np.float32)
    else:  # smooth blotches
        small = rng.random((height // 16 + 1, width // 16 + 1)).astype(np.float32)
        mix = np.asarray(
            Image.fromarray((small * 255).astype(np.uint8)).resize(
                (width, height), Image.BILINEAR
            ),
            np.float32,
        ) / 255.0
    image = first + mix[..., None] * (second - first)
    floor = int(height * rng.uniform(0.6, 0.8))
    image[floor:] *= rng.uniform(0.6, 0.9)
    return image.astype(np.float32)


def make_camera(rng: np.random.Generator, height: int, width: int) -> Camera:
    """Draw a camera's nuisance."""
    return Camera(
        background=_background(rng, height, width),
        gain=float(rng.uniform(0.7, 1.3)),
        cast=(1.0 + rng.uniform(-0.18, 0.18, 3)).astype(np.float32),
        light=float(rng.uniform(-0.35, 0.35)),
        blur=float(rng.choice([0.0, 0.4, 0.8, 1.2])),
        resolution=float(rng.choice([1.0, 1.0, 0.6, 0.45])),
        scale=float(rng.uniform(0.82, 1.0)),
        view_p=rng.dirichlet([1.0, 1.0, 1.0]),
        mirror_p=float(rng.uniform(0.2, 0.8)),
        occlusion_p=float(rng.uniform(0.0, 0.35)),
    )


def _box(img, y0, y1, x0, x1):
    """Integer, clipped box bounds (or None when empty)."""
    h, w = img.shape[:2]
    y0, y1 = max(int(round(y0)), 0), min(int(round(y1)), h)
    x0, x1 = max(int(round(x0)), 0), min(int(round(x1)), w)
    return None if y0 >= y1 or x0 >= x1 else (y0, y1, x0, x1)


def _fill(img, y0, y1, x0, x1, colour):
    """Paint a rectangle."""
    box = _box(img, y0, y1, x0, x1)
    if box:
        img[box[0] : box[1], box[2] : box[3]] = colour


def _fill_pattern(img, y0, y1, x0, x1, colour, accent, pattern, period):
    """Paint a rectangle with a pattern in local coordinates (``period`` in pixels)."""
    box = _box(img, y0, y1, x0, x1)
    if not box:
        return
    by0, by1, bx0, bx1 = box
    img[by0:by1, bx0:bx1] = colour
    if pattern in ("solid", "logo"):
        if pattern == "logo":
            cy, cx, hh, hw = (y0 + y1) / 2 - (y1 - y0) * 0.1, (x0 + x1) / 2, (y1 - y0) * 0.18, (x1 - x0) * 0.22
            _fill(img, cy - hh, cy + hh, cx - hw, cx + hw, accent)
        return
    ys = (np.arange(by0, by1, dtype=np.float32) - y0)[:, None]
    xs = (np.arange(bx0, bx1, dtype=np.float32) - x0)[None, :]
    step = max(period, 2.0)
    hbands = (ys // step) % 2 == 1
    vbands = (xs // step) % 2 == 1
    if pattern == "hstripes":
        mask = np.broadcast_to(hbands, (by1 - by0, bx1 - bx0))
    elif pattern == "vstripes":
        mask = np.broadcast_to(vbands, (by1 - by0, bx1 - bx0))
    else:  # checks
        mask = hbands ^ vbands
    img[by0:by1, bx0:bx1][mask] = accent


def _ellipse(img, cy, cx, ry, rx, colour, top_fraction=1.0):
    """Paint an ellipse (only its top ``top_fraction`` of height when < 1)."""
    box = _box(img, cy - ry, cy - ry + 2 * ry * top_fraction, cx - rx, cx + rx)
    if not box:
        return
    y0, y1, x0, x1 = box
    ys = (np.arange(y0, y1, dtype=np.float32) + 0.5 - cy)[:, None] / max(ry, 0.5)
    xs = (np.arange(x0, x1, dtype=np.float32) + 0.5 - cx)[None, :] / max(rx, 0.5)
    img[y0:y1, x0:x1][ys**2 + xs**2 <= 1.0] = colour


def draw_person(img, ident: Identity, *, top, bottom, cx, width, view: str) -> None:
    """Draw ``ident`` standing between rows ``top`` and ``bottom``, centred at column
    ``cx``, ``width`` pixels wide (front view; narrower from the side)."""
    fh = bottom - top
    side = view == "side"
    fw = width * (0.72 if side else 1.0)
    y = lambda t: top + t * fh  # noqa: E731 - rows as fractions of the figure height
    x = lambda u: cx + u * fw  # noqa: E731 - columns as fractions of the figure width
    near = ident.bag_side if view == "front" else -ident.bag_side  # bag side in image

    if ident.bag == "backpack" and side:  # pack sticks out behind
        _fill(img, y(0.17), y(0.45), x(-0.62), x(-0.3), ident.bag_colour)
    # arms (sleeves, then hands); from the side only the near arm shows, over the torso
    sleeve = ident.upper * 0.82
    arms = [(-0.08, 0.1)] if side else [(-0.5, -0.34), (0.34, 0.5)]
    if not side:
        for u0, u1 in arms:
            _fill(img, y(0.16), y(0.47), x(u0), x(u1), sleeve)
            _fill(img, y(0.47), y(0.52), x(u0), x(u1), ident.skin)
    # torso with its pattern (a logo shows on the front only)
    pattern = ident.pattern if not (ident.pattern == "logo" and view != "front") else "solid"
    _fill_pattern(
        img, y(0.14), y(0.54), x(-0.35), x(0.35),
        ident.upper, ident.accent, pattern, ident.period * fh,
    )
    if side:
        for u0, u1 in arms:
            _fill(img, y(0.16), y(0.47), x(u0), x(u1), sleeve)
            _fill(img, y(0.47), y(0.52), x(u0), x(u1), ident.skin)
    # accessories on the torso
    if ident.bag == "backpack" and view == "back":
        _fill(img, y(0.17), y(0.47), x(-0.27), x(0.27), ident.bag_colour)
    elif ident.bag == "backpack" and view == "front":
        for u in (-0.22, 0.16):
            _fill(img, y(0.14), y(0.36), x(u), x(u + 0.07), ident.bag_colour)
    elif ident.bag == "shoulder" and not (side and near < 0):
        u0 = 0.5 if near > 0 else -0.78
        _fill(img, y(0.40), y(0.58), x(u0), x(u0 + 0.28), ident.bag_colour)
        strap = -0.3 if near > 0 else 0.25
        _fill(img, y(0.14), y(0.42), x(strap), x(strap + 0.05), ident.bag_colour * 0.8)
    # hips and legs (shorts leave skin below the knee)
    _fill(img, y(0.54), y(0.62), x(-0.33), x(0.33), ident.lower)
    legs = [(-0.12, 0.12)] if side else [(-0.3, -0.03), (0.03, 0.3)]
    for u0, u1 in legs:
        knee = 0.74 if ident.shorts else 0.94
        _fill(img, y(0.62), y(knee), x(u0), x(u1), ident.lower)
        if ident.shorts:
            _fill(img, y(knee), y(0.94), x(u0 + 0.03), x(u1 - 0.03), ident.skin)
        _fill(img, y(0.94), y(1.0), x(u0 - 0.03), x(u1 + 0.03), ident.shoes)
    # head: face with hair on top, or hair only from the back; hat on top
    _ellipse(img, y(0.075), cx, 0.07 * fh, 0.2 * width, ident.skin)
    _ellipse(img, y(0.075), cx, 0.07 * fh, 0.2 * width, ident.hair,
             top_fraction=1.0 if view == "back" else 0.4)
    if ident.hat is not None:
        _fill(img, y(-0.02), y(0.04), x(-0.24), x(0.24), ident.hat)


def _occlude(img, rng: np.random.Generator) -> None:
    """Cover part of the image with a box (a car, a pole, a bin)."""
    h, w = img.shape[:2]
    colour = rng.uniform(30, 200, 3).astype(np.float32)
    if rng.random() < 0.6:  # from below
        _fill(img, h * rng.uniform(0.55, 0.8), h, w * rng.uniform(-0.2, 0.3), w * rng.uniform(0.7, 1.2), colour)
    else:  # from one side
        x_edge = w * rng.uniform(0.25, 0.45)
        if rng.random() < 0.5:
            _fill(img, h * rng.uniform(0.0, 0.4), h, 0, x_edge, colour)
        else:
            _fill(img, h * rng.uniform(0.0, 0.4), h, w - x_edge, w, colour)


def render(ident: Identity | None, camera: Camera, rng: np.random.Generator, *,
           kind: str = "person") -> Image.Image:
    """Render one image of ``ident`` seen by ``camera``.

    ``kind``: ``person`` (a whole figure), ``distractor`` (a figure badly framed: half out
    of the crop), ``junk`` (mostly background with a sliver of a figure)."""
    img = np.roll(camera.background, int(rng.integers(-8, 9)), axis=1).copy()
    img *= rng.uniform(0.9, 1.1)
    h, w = img.shape[:2]
    view = VIEWS[rng.choice(3, p=camera.view_p)]
    if ident is not None:
        size = camera.scale * ident.height * rng.uniform(0.94, 1.06)
        fh = h * size
        bottom = h - h * rng.uniform(0.0, 0.05)
        cx = w / 2 + rng.normal(0, 0.05 * w)
        if kind == "distractor":
            cx += rng.choice([-1, 1]) * w * rng.uniform(0.35, 0.55)
            bottom += rng.uniform(0.0, 0.4) * h
        elif kind == "junk":
            cx += rng.choice([-1, 1]) * w * rng.uniform(0.6, 0.8)
        draw_person(img, ident, top=bottom - fh, bottom=bottom, cx=cx,
                    width=min(fh * ident.aspect, 0.95 * w), view=view)
    if rng.random() < camera.occlusion_p:
        _occlude(img, rng)
    if rng.random() < camera.mirror_p:
        img = img[:, ::-1]
    light = 1.0 + camera.light * (np.arange(w, dtype=np.float32) / (w - 1) - 0.5)
    cast = camera.cast * (1.0 + rng.uniform(-0.05, 0.05, 3)).astype(np.float32)
    img = img * (camera.gain * rng.uniform(0.88, 1.12)) * cast * light[None, :, None]
    img += rng.normal(0.0, 4.0, img.shape).astype(np.float32)
    out = Image.fromarray(np.clip(img, 0, 255).astype(np.uint8))
    if camera.resolution < 1.0:
        small = (max(int(w * camera.resolution), 8), max(int(h * camera.resolution), 8))
        out = out.resize(small, Image.BILINEAR).resize((w, h), Image.BILINEAR)
    if camera.blur > 0:
        out = out.filter(ImageFilter.GaussianBlur(camera.blur))
    return out


def _range(value, name: str) -> tuple[int, int]:
    """A ``[lo, hi]`` pair (inclusive) or one int, checked."""
    values = [int(value)] * 2 if isinstance(value, (int, np.integer)) else [int(v) for v in value]
    if len(values) != 2 or values[0] > values[1] or values[0] < 0:
        raise ConfigError(f"synthetic.{name}={value!r}: expected [low, high] with 0 <= low <= high")
    return values[0], values[1]


def _spread(rng: np.random.Generator, count: int, cameras: np.ndarray) -> list[int]:
    """Cameras of ``count`` images: each of ``cameras`` once first, then at random."""
    firsts = list(cameras[: min(count, len(cameras))])
    rest = list(rng.choice(cameras, size=count - len(firsts))) if count > len(firsts) else []
    return [int(c) for c in firsts + rest]


def plan_synthetic(
    *,
    seed: int,
    num_train_ids: int,
    num_test_ids: int,
    num_cameras: int,
    train_images_per_id,
    train_cameras_per_id,
    test_cameras_per_id,
    query_cameras_per_id,
    gallery_images_per_id,
    num_distractors: int,
    num_junk: int,
) -> list[tuple[str, int, int]]:
    """The images to draw, as ``(folder, pid, camera 0-based)``, in writing order.

    Train identities are pids 1..num_train_ids, test identities follow. Each test
    identity appears on ``test_cameras_per_id`` cameras; ``query_cameras_per_id`` of them
    hold one query each; its gallery images cover all of its cameras (so every query has
    gallery matches on other cameras)."""
    rng = np.random.default_rng([seed, _PLAN])
    plan = []
    train_n, train_k = train_images_per_id, train_cameras_per_id
    for pid in range(1, num_train_ids + 1):
        cams = rng.permutation(num_cameras)[: rng.integers(train_k[0], train_k[1] + 1)]
        count = int(rng.integers(train_n[0], train_n[1] + 1))
        plan += [("bounding_box_train", pid, c) for c in _spread(rng, count, cams)]
    for pid in range(num_train_ids + 1, num_train_ids + num_test_ids + 1):
        cams = rng.permutation(num_cameras)[: rng.integers(test_cameras_per_id[0], test_cameras_per_id[1] + 1)]
        num_query = int(rng.integers(query_cameras_per_id[0], query_cameras_per_id[1] + 1))
        plan += [("query", pid, int(c)) for c in cams[:num_query]]
        count = int(rng.integers(gallery_images_per_id[0], gallery_images_per_id[1] + 1))
        plan += [("bounding_box_test", pid, c) for c in _spread(rng, count, rng.permutation(cams))]
    plan += [("bounding_box_test", 0, int(c)) for c in rng.integers(0, num_cameras, num_distractors)]
    plan += [("bounding_box_test", -1, int(c)) for c in rng.integers(0, num_cameras, num_junk)]
    return plan


def _check(args: dict) -> None:
    """Fail with the setting at fault when the arguments cannot make a valid set."""
    cams = args["num_cameras"]
    problems = []
    if not 2 <= cams <= 9:
        problems.append(f"num_cameras={cams} must be 2..9 (one digit in Market names)")
    if args["num_train_ids"] < 1 or args["num_test_ids"] < 1:
        problems.append("num_train_ids and num_test_ids must be >= 1")
    if args["num_train_ids"] + args["num_test_ids"] > 9999:
        problems.append("num_train_ids + num_test_ids must be <= 9999 (4-digit pids)")
    for name in ("train_cameras_per_id", "test_cameras_per_id"):
        lo, hi = args[name]
        if lo < 2 or hi > cams:
            problems.append(f"{name}={[lo, hi]} must lie within 2..num_cameras")
    if args["query_cameras_per_id"][0] < 1 or args["query_cameras_per_id"][1] > args["test_cameras_per_id"][0]:
        problems.append("query_cameras_per_id must lie within 1..test_cameras_per_id[0]")
    if args["train_images_per_id"][0] < 2 or args["gallery_images_per_id"][0] < 2:
        problems.append("train_images_per_id and gallery_images_per_id must be >= 2")
    if args["height"] < 32 or args["width"] < 16:
        problems.append("height must be >= 32 and width >= 16")
    if problems:
        raise ConfigError("synthetic data set settings: " + "; ".join(problems))


def write_synthetic(
    root: str | os.PathLike,
    *,
    seed: int = 0,
    num_train_ids: int = 120,
    num_test_ids: int = 120,
    num_cameras: int = 6,
    train_images_per_id=(8, 12),
    train_cameras_per_id=(2, 4),
    test_cameras_per_id=(3, 5),
    query_cameras_per_id=(2, 3),
    gallery_images_per_id=(6, 10),
    num_distractors: int = 100,
    num_junk: int = 30,
    height: int = 128,
    width: int = 64,
    jpeg_quality: int = 90,
) -> dict:
    """Write the synthetic data set at ``root`` (replacing it) and return its counts.

    Ranges are inclusive ``[low, high]`` pairs. The counts: ``train_ids``,
    ``train_images``, ``query_ids``, ``query_images``, ``gallery_ids`` (test identities
    with gallery images), ``gallery_images`` (with distractors, without junk),
    ``distractor_images``, ``junk_images``, ``num_cameras``, ``files`` (images written)."""
    args = dict(
        seed=int(seed),
        num_train_ids=int(num_train_ids),
        num_test_ids=int(num_test_ids),
        num_cameras=int(num_cameras),
        train_images_per_id=_range(train_images_per_id, "train_images_per_id"),
        train_cameras_per_id=_range(train_cameras_per_id, "train_cameras_per_id"),
        test_cameras_per_id=_range(test_cameras_per_id, "test_cameras_per_id"),
        query_cameras_per_id=_range(query_cameras_per_id, "query_cameras_per_id"),
        gallery_images_per_id=_range(gallery_images_per_id, "gallery_images_per_id"),
        num_distractors=int(num_distractors),
        num_junk=int(num_junk),
    )
    shape = dict(height=int(height), width=int(width))
    _check({**args, **shape})
    if not 1 <= int(jpeg_quality) <= 100:
        raise ConfigError(f"synthetic.jpeg_quality={jpeg_quality} must be 1..100")
    plan = plan_synthetic(**args)
    seed = args["seed"]
    cameras = [
        make_camera(np.random.default_rng([seed, _CAMERA, c]), shape["height"], shape["width"])
        for c in range(args["num_cameras"])
    ]
    identities: dict[int, Identity] = {}
    frames = [int(v) for v in np.random.default_rng([seed, _CAMERA, 999]).integers(100, 2000, args["num_cameras"])]
    counts = {key: 0 for key in ("train_images", "query_images", "gallery_images", "distractor_images", "junk_images")}
    with atomic_dir(root) as tmp:
        os.chmod(tmp, 0o755)
        for folder in ("bounding_box_train", "query", "bounding_box_test"):
            (tmp / folder).mkdir()
        for index, (folder, pid, cam) in enumerate(plan):
            rng = np.random.default_rng([seed, _IMAGE, index])
            if pid > 0:
                if pid not in identities:
                    identities[pid] = make_identity(np.random.default_rng([seed, _IDENTITY, pid]))
                ident, kind = identities[pid], "person"
            else:  # distractors and junk: someone else, badly framed
                ident = make_identity(np.random.default_rng([seed, _EXTRA, index]))
                kind = "distractor" if pid == 0 else "junk"
            image = render(ident, cameras[cam], rng, kind=kind)
            frames[cam] += int(rng.integers(5, 60))
            name = f"{pid:04d}" if pid >= 0 else "-1"
            name += f"_c{cam + 1}s1_{frames[cam]:06d}_{int(rng.integers(1, 4)):02d}.jpg"
            buffer = io.BytesIO()
            image.save(buffer, format="JPEG", quality=int(jpeg_quality))
            (tmp / folder / name).write_bytes(buffer.getvalue())
            key = {"bounding_box_train": "train_images", "query": "query_images"}.get(folder, "gallery_images")
            if pid == 0:
                counts["distractor_images"] += 1
            if pid == -1:
                counts["junk_images"] += 1
            else:
                counts[key] += 1
        summary = {
            "train_ids": args["num_train_ids"],
            "train_images": counts["train_images"],
            "query_ids": args["num_test_ids"],
            "query_images": counts["query_images"],
            "gallery_ids": args["num_test_ids"],
            "gallery_images": counts["gallery_images"],
            "distractor_images": counts["distractor_images"],
            "junk_images": counts["junk_images"],
            "num_cameras": args["num_cameras"],
            "files": len(plan),
        }
        description = {
            "generator": "clipreid.data.synthetic.write_synthetic",
            "generator_version": GENERATOR_VERSION,
            "layout": "Market-1501 (bounding_box_train/, query/, bounding_box_test/)",
            "arguments": {**args, **shape, "jpeg_quality": int(jpeg_quality)},
            "counts": summary,
        }
        (tmp / "synthetic.json").write_text(json.dumps(description, indent=2) + "\n")
    return summary
