"""A deterministic synthetic multi-camera person re-ID data set in Market-1501 layout.

``write_synthetic(root, ...)`` draws small figures of people and writes::

    root/bounding_box_train/0001_c1s1_000123_01.jpg   training identities
    root/query/0121_c2s1_000456_01.jpg                at most one per identity and camera
    root/bounding_box_test/...                        gallery: test identities on several
                                                      cameras, distractors (0000_...) and
                                                      junk (-1_...)
    root/synthetic.json                               the settings and the counts

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
from pathlib import Path
from dataclasses import asdict, dataclass

import numpy as np
from PIL import Image

from clipreid.config.schema import SyntheticConfig, from_dict
from clipreid.errors import DatasetError
from clipreid.io import atomic_dir

#: The file the generator writes beside the images (settings and counts): marks a folder
#: as a synthetic set this project made.
MARKER = "synthetic.json"

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
    blur: int  # passes of a [1, 2, 1] / 4 blur
    noise: np.ndarray  # 2H x 2W x 3 sensor noise bank; each image takes a random window
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
        blur=int(rng.choice([0, 0, 1, 2])),
        resolution=float(rng.choice([1.0, 1.0, 0.6, 0.45])),
        scale=float(rng.uniform(0.82, 1.0)),
        view_p=rng.dirichlet([1.0, 1.0, 1.0]),
        mirror_p=float(rng.uniform(0.2, 0.8)),
        occlusion_p=float(rng.uniform(0.0, 0.35)),
        noise=rng.normal(0.0, rng.uniform(2.0, 6.0), (2 * height, 2 * width, 3)).astype(np.float32),
    )


def _blur(img: np.ndarray) -> np.ndarray:
    """One pass of a separable [1, 2, 1] / 4 blur (edges repeated)."""
    out = img * 0.5
    out[1:] += img[:-1] * 0.25
    out[0] += img[0] * 0.25
    out[:-1] += img[1:] * 0.25
    out[-1] += img[-1] * 0.25
    rows = out
    out = rows * 0.5
    out[:, 1:] += rows[:, :-1] * 0.25
    out[:, 0] += rows[:, 0] * 0.25
    out[:, :-1] += rows[:, 1:] * 0.25
    out[:, -1] += rows[:, -1] * 0.25
    return out


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
            cy, cx = (y0 + y1) / 2 - (y1 - y0) * 0.1, (x0 + x1) / 2
            hh, hw = (y1 - y0) * 0.18, (x1 - x0) * 0.22
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
        top, left, right = rng.uniform(0.55, 0.8), rng.uniform(-0.2, 0.3), rng.uniform(0.7, 1.2)
        _fill(img, h * top, h, w * left, w * right, colour)
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
    img = np.roll(camera.background, int(rng.integers(-8, 9)), axis=1)  # a new array
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
    gain = np.float32(camera.gain * rng.uniform(0.88, 1.12))
    img *= (gain * cast)[None, :] * light[:, None]  # (w, 3) factors, broadcast over rows
    for _ in range(camera.blur):
        img = _blur(img)
    dy, dx = int(rng.integers(0, h)), int(rng.integers(0, w))
    img += camera.noise[dy : dy + h, dx : dx + w]
    out = Image.fromarray(np.clip(img, 0, 255, out=img).astype(np.uint8))
    if camera.resolution < 1.0:
        small = (max(int(w * camera.resolution), 8), max(int(h * camera.resolution), 8))
        out = out.resize(small, Image.BILINEAR).resize((w, h), Image.BILINEAR)
    return out


def require_writable(root: Path) -> None:
    """Refuse to replace anything this project did not write: ``root`` must be missing, an
    empty folder, or a synthetic set written before (it holds the marker file)."""
    if root.is_file() or root.is_symlink() and not root.is_dir():
        raise DatasetError(
            f"dataset.root={str(root)!r} is a file, not a folder: the synthetic set is not "
            "written over it. Point dataset.root at a new folder (the default is "
            "data/prepared/synthetic), or choose your data set's group (e.g. "
            "dataset=market1501) if this is real data")
    if root.is_dir() and not (root / MARKER).is_file():
        found = sorted(p.name for p in root.iterdir())
        if found:
            shown = ", ".join(found[:5]) + (", ..." if len(found) > 5 else "")
            raise DatasetError(
                f"dataset.root={str(root)!r} holds files this project did not write ({shown}):"
                " the synthetic set goes only into an empty folder or one it wrote before "
                f"(with {MARKER}). Point dataset.root at a new folder (the default is "
                "data/prepared/synthetic), or choose your data set's group (e.g. "
                "dataset=market1501) if this is real data")


def _settings(settings: SyntheticConfig | None, kwargs: dict) -> SyntheticConfig:
    """The generator's settings: given, or built (and checked) from keyword arguments."""
    if settings is not None:
        if kwargs:
            raise TypeError("pass either settings or keyword arguments, not both")
        return settings
    return from_dict(SyntheticConfig, kwargs, "dataset.synthetic")


def _spread(rng: np.random.Generator, count: int, cameras: np.ndarray) -> list[int]:
    """Cameras of ``count`` images: each of ``cameras`` once first, then at random."""
    firsts = [int(c) for c in cameras[: min(count, len(cameras))]]
    rest = rng.choice(cameras, size=count - len(firsts)) if count > len(firsts) else []
    return firsts + [int(c) for c in rest]


def plan_synthetic(settings: SyntheticConfig) -> list[tuple[str, int, int]]:
    """The images to draw, as ``(folder, pid, camera 0-based)``, in writing order.

    Train identities are pids 1..num_train_ids, test identities follow. Each test
    identity appears on ``test_cameras_per_id`` cameras; ``query_cameras_per_id`` of them
    hold one query each; its gallery images cover all of its cameras (so every query has
    gallery matches on other cameras). Distractors (pid 0) and junk (pid -1) go to the
    gallery on random cameras."""
    st = settings
    rng = np.random.default_rng([st.seed, _PLAN])

    def draw(low_high) -> int:
        return int(rng.integers(low_high[0], low_high[1] + 1))

    plan = []
    for pid in range(1, st.num_train_ids + 1):
        cams = rng.permutation(st.num_cameras)[: draw(st.train_cameras_per_id)]
        count = draw(st.train_images_per_id)
        plan += [("bounding_box_train", pid, c) for c in _spread(rng, count, cams)]
    for pid in range(st.num_train_ids + 1, st.num_train_ids + st.num_test_ids + 1):
        cams = rng.permutation(st.num_cameras)[: draw(st.test_cameras_per_id)]
        num_query = draw(st.query_cameras_per_id)
        plan += [("query", pid, int(c)) for c in cams[:num_query]]
        count = draw(st.gallery_images_per_id)
        plan += [("bounding_box_test", pid, c) for c in _spread(rng, count, rng.permutation(cams))]
    for pid, number in ((0, st.num_distractors), (-1, st.num_junk)):
        cams = rng.integers(0, st.num_cameras, number)
        plan += [("bounding_box_test", pid, int(c)) for c in cams]
    return plan


def summarize(plan: list[tuple[str, int, int]], settings: SyntheticConfig) -> dict:
    """The counts of a plan (see :func:`write_synthetic`)."""
    def ids(folder):
        return len({pid for f, pid, _ in plan if f == folder and pid > 0})

    def images(folder, keep=lambda pid: pid != -1):
        return sum(1 for f, pid, _ in plan if f == folder and keep(pid))

    return {
        "train_ids": ids("bounding_box_train"),
        "train_images": images("bounding_box_train"),
        "query_ids": ids("query"),
        "query_images": images("query"),
        "gallery_ids": ids("bounding_box_test"),
        "gallery_images": images("bounding_box_test"),
        "distractor_images": images("bounding_box_test", lambda pid: pid == 0),
        "junk_images": images("bounding_box_test", lambda pid: pid == -1),
        "num_cameras": settings.num_cameras,
        "files": len(plan),
    }


def synthetic_summary(settings: SyntheticConfig | None = None, **kwargs) -> dict:
    """The counts that :func:`write_synthetic` with these arguments reports, without
    drawing anything."""
    settings = _settings(settings, kwargs)
    return summarize(plan_synthetic(settings), settings)


def write_synthetic(root: str | os.PathLike, settings: SyntheticConfig | None = None,
                    **kwargs) -> dict:
    """Write the synthetic data set at ``root`` (replacing it) and return its counts.

    ``settings``, or keyword arguments (defaults in
    :class:`~clipreid.config.schema.SyntheticConfig`; ranges are inclusive ``[low, high]``
    pairs): ``seed``, ``num_train_ids``, ``num_test_ids``,
    ``num_cameras``, ``train_images_per_id``, ``train_cameras_per_id``,
    ``test_cameras_per_id``, ``query_cameras_per_id`` (one query per camera),
    ``gallery_images_per_id``, ``num_distractors``, ``num_junk``, ``height``, ``width``,
    ``jpeg_quality``.

    The counts: ``train_ids``, ``train_images``, ``query_ids``, ``query_images``,
    ``gallery_ids`` (test identities in the gallery, distractors not counted),
    ``gallery_images`` (distractors included, junk not), ``distractor_images``,
    ``junk_images``, ``num_cameras``, ``files`` (images written, junk included)."""
    st = _settings(settings, kwargs)
    require_writable(Path(root))
    plan = plan_synthetic(st)
    summary = summarize(plan, st)
    cameras = [
        make_camera(np.random.default_rng([st.seed, _CAMERA, c]), st.height, st.width)
        for c in range(st.num_cameras)
    ]
    first_frames = np.random.default_rng([st.seed, _PLAN, 1]).integers(100, 2000, st.num_cameras)
    frames = [int(v) for v in first_frames]
    identities: dict[int, Identity] = {}
    with atomic_dir(root) as tmp:
        os.chmod(tmp, 0o755)
        for folder in ("bounding_box_train", "query", "bounding_box_test"):
            (tmp / folder).mkdir()
        for index, (folder, pid, cam) in enumerate(plan):
            rng = np.random.default_rng([st.seed, _IMAGE, index])
            if pid > 0:
                if pid not in identities:
                    ident_rng = np.random.default_rng([st.seed, _IDENTITY, pid])
                    identities[pid] = make_identity(ident_rng)
                ident, kind = identities[pid], "person"
            else:  # distractors and junk: someone else, badly framed
                ident = make_identity(np.random.default_rng([st.seed, _EXTRA, index]))
                kind = "distractor" if pid == 0 else "junk"
            image = render(ident, cameras[cam], rng, kind=kind)
            frames[cam] += int(rng.integers(5, 60))  # strictly increasing: unique names
            head = f"{pid:04d}" if pid >= 0 else "-1"
            name = f"{head}_c{cam + 1}s1_{frames[cam]:06d}_{int(rng.integers(1, 4)):02d}.jpg"
            buffer = io.BytesIO()
            image.save(buffer, format="JPEG", quality=st.jpeg_quality)
            (tmp / folder / name).write_bytes(buffer.getvalue())
        description = {
            "generator": "clipreid.dataset.synthetic.write_synthetic",
            "generator_version": GENERATOR_VERSION,
            "layout": "Market-1501 (bounding_box_train/, query/, bounding_box_test/)",
            "settings": asdict(st),
            "counts": summary,
        }
        (tmp / MARKER).write_text(json.dumps(description, indent=2) + "\n")
    return summary
