"""Stage 2's input pipeline: images decoded once into a uint8 cache, augmented as tensor
batches. The augmentations keep the PIL transform's distributions (flip rate, crop
offsets, erased area), a fixed seed gives the same batch twice, and the cache is
rebuilt exactly when its inputs change."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
import torchvision.transforms as T
from PIL import Image

from clipreid.config.schema import PreprocessConfig
from clipreid.loader.augment import BatchAugment
from clipreid.loader.decoded import decode_resized, decoded_images
from clipreid.loader.transforms import train_transform

H, W = 32, 16
PRE = PreprocessConfig()          # mean = std = 0.5: x -> 2x - 1 on [0, 1]


def coordinates(batch: int) -> torch.Tensor:
    """uint8 images whose channel 0 is 1 + the column and channel 1 is 1 + the row (0 only
    in padding), channel 2 a constant: where a pixel came from is readable after any
    flip, pad or crop."""
    image = torch.zeros(3, H, W, dtype=torch.uint8)
    image[0] = torch.arange(1, W + 1).view(1, W)
    image[1] = torch.arange(1, H + 1).view(H, 1)
    image[2] = 200
    return image.expand(batch, 3, H, W).clone()


def unnormalise(x: torch.Tensor) -> torch.Tensor:
    return torch.round((x * 0.5 + 0.5) * 255)


def test_a_fixed_seed_gives_the_same_batch_twice():
    augment = BatchAugment((H, W), PRE, 0.5, 4, 0.5)
    images = torch.randint(0, 256, (16, 3, H, W), dtype=torch.uint8)
    a = augment(images, torch.Generator().manual_seed(7))
    b = augment(images, torch.Generator().manual_seed(7))
    c = augment(images, torch.Generator().manual_seed(8))
    assert a.dtype == torch.float32 and a.shape == (16, 3, H, W)
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_flip_rate_is_flip_p():
    n, p = 4000, 0.5
    out = unnormalise(BatchAugment((H, W), PRE, p, 0, 0.0)(
        coordinates(n), torch.Generator().manual_seed(0)))
    columns = out[:, 0, 0, :]                        # first row, channel 0: 1 + column
    flipped = (columns[:, 0] == W).float()
    assert torch.equal(columns[flipped.bool()], torch.arange(W, 0, -1).float().expand(
        int(flipped.sum()), W))
    assert torch.equal(columns[~flipped.bool()], torch.arange(1, W + 1).float().expand(
        n - int(flipped.sum()), W))
    # Binomial(4000, 0.5): standard deviation 0.0079; 4 of them.
    assert abs(flipped.mean().item() - p) < 4 * (p * (1 - p) / n) ** 0.5


def test_crop_offsets_are_uniform_over_the_padding():
    n, pad = 9000, 4
    out = unnormalise(BatchAugment((H, W), PRE, 0.0, pad, 0.0)(
        coordinates(n), torch.Generator().manual_seed(1)))
    # The output's top-left pixel came from (top - pad, left - pad) of the image.
    rows, cols = out[:, 1], out[:, 0]
    top = torch.where((rows > 0).any(2), torch.arange(H).expand(n, H), H).min(1).values
    left = torch.where((cols > 0).any(1), torch.arange(W).expand(n, W), W).min(1).values
    first_row = rows[torch.arange(n), top, left]
    offset_y = pad - top + (first_row.long() - 1)   # top-left source row + pad
    offset_x = pad - left + (cols[torch.arange(n), top, left].long() - 1)
    counts = torch.bincount(offset_y * (2 * pad + 1) + offset_x, minlength=(2 * pad + 1) ** 2)
    assert counts.numel() == (2 * pad + 1) ** 2     # no offset outside 0 .. 2 * pad
    expected = n / counts.numel()                   # 111 per offset pair
    # Poisson-like counts: sd ~10.5; 5 of them for the extremes of 81 cells.
    assert ((counts - expected).abs() < 5 * expected ** 0.5).all(), counts


def test_flip_pad_and_crop_equal_doing_them_one_after_another():
    """Flip the image, pad it with zeros, crop at the drawn offset: per image, as the PIL
    transform does it."""
    augment = BatchAugment((H, W), PRE, 0.5, 4, 0.0)
    images = torch.randint(0, 256, (64, 3, H, W), dtype=torch.uint8)
    generator = torch.Generator().manual_seed(3)
    params = augment.sample(64, generator)
    assert 0 < int(params.flip.sum()) < 64
    got = augment.apply(images, params)
    for i in range(64):
        image = images[i].flip(-1) if params.flip[i] else images[i]
        padded = torch.nn.functional.pad(image, (4, 4, 4, 4))
        top, left = int(params.top[i]), int(params.left[i])
        crop = padded[:, top:top + H, left:left + W].float() / 255
        assert torch.allclose(got[i], (crop - 0.5) / 0.5, atol=1e-6)


def test_erased_area_and_rate_match_torchvisions_random_erasing():
    n = 4000
    images = torch.full((n, 3, H, W), 128, dtype=torch.uint8)
    out = BatchAugment((H, W), PRE, 0.0, 0, 0.5)(images, torch.Generator().manual_seed(2))
    constant = (128 / 255 - 0.5) / 0.5
    erased = (out - constant).abs().amax(1) > 1e-6          # (n, H, W) changed pixels
    fraction = erased.float().mean((1, 2))
    was_erased = fraction > 0
    assert abs(was_erased.float().mean().item() - 0.5) < 4 * (0.25 / n) ** 0.5
    # Each erased region is one rectangle.
    for mask in erased[was_erased][:200]:
        rows, cols = mask.any(1).nonzero(), mask.any(0).nonzero()
        assert mask[rows.min():rows.max() + 1, cols.min():cols.max() + 1].all()
    # torchvision's own RandomErasing draws, for the same image size.
    reference = torch.tensor([
        float(h * w) / (H * W) for i, j, h, w, _ in (
            T.RandomErasing.get_params(torch.zeros(3, H, W), (0.02, 0.33), (0.3, 3.3),
                                       value=[0.0]) for _ in range(20000)) if h < H])
    ours = fraction[was_erased]
    assert ours.min() >= reference.min() - 1e-6 and ours.max() <= reference.max() + 1e-6
    assert abs(ours.mean() - reference.mean()) < 4 * reference.std() / len(ours) ** 0.5
    # Erased pixels hold standard-normal values.
    values = out.permute(0, 2, 3, 1)[erased]
    assert abs(values.mean().item()) < 0.05 and abs(values.std().item() - 1) < 0.05


def test_without_randomness_it_equals_the_pil_transform(tmp_path):
    """flip 0, padding 0, erasing 0: both pipelines are resize + normalise, and give the
    same tensor (the cache stores what PIL's resize gives)."""
    rng = np.random.default_rng(0)
    path = tmp_path / "a.png"
    Image.fromarray(rng.integers(0, 256, (97, 45, 3), dtype=np.uint8)).save(path)
    pil = train_transform((H, W), PRE, 0.0, 0, 0.0)(Image.open(path).convert("RGB"))
    cached = torch.from_numpy(decode_resized(str(path), (H, W), "bicubic").copy())[None]
    ours = BatchAugment((H, W), PRE, 0.0, 0, 0.0)(cached, torch.Generator())
    assert torch.allclose(ours[0], pil, atol=1e-6)


def write_images(folder, count: int):
    rng = np.random.default_rng(3)
    paths = []
    for i in range(count):
        path = folder / f"{i}.jpg"
        Image.fromarray(rng.integers(0, 256, (40, 20, 3), dtype=np.uint8)).save(path)
        paths.append(str(path))
    return paths


def test_the_cache_is_built_once_and_rebuilt_when_its_inputs_change(tmp_path):
    paths = write_images(tmp_path, 5)
    cache = tmp_path / "cache"
    first = decoded_images(paths, (H, W), "bicubic", cache)
    assert first.shape == (5, 3, H, W) and first.dtype == np.uint8
    assert not first.flags.writeable                       # memory-mapped read-only
    for i, path in enumerate(paths):
        assert np.array_equal(first[i], decode_resized(path, (H, W), "bicubic"))
    (built,) = cache.glob("*.npy")
    stamp = built.stat().st_mtime_ns
    again = decoded_images(paths, (H, W), "bicubic", cache)
    assert np.array_equal(again, first) and built.stat().st_mtime_ns == stamp  # reused
    # Another input size, another interpolation, a replaced image: another file, and
    # the old one is gone.
    for args in (((H + 8, W), "bicubic"), ((H, W), "bilinear")):
        decoded_images(paths, *args, cache)
        assert len(list(cache.glob("*.npy"))) == 1 and not built.exists()
    Image.fromarray(np.zeros((40, 20, 3), np.uint8)).save(paths[2])
    os.utime(paths[2], ns=(1, 1))
    rebuilt = decoded_images(paths, (H, W), "bicubic", cache)
    assert (rebuilt[2] == 0).all() and np.array_equal(rebuilt[0], first[0])


def test_a_killed_build_leaves_no_cache(tmp_path, monkeypatch):
    paths = write_images(tmp_path, 3)
    cache = tmp_path / "cache"
    import clipreid.loader.decoded as decoded

    def broken(path, size, interpolation):
        raise KeyboardInterrupt
    monkeypatch.setattr(decoded, "decode_resized", broken)
    with pytest.raises(KeyboardInterrupt):
        decoded_images(paths, (H, W), "bicubic", cache)
    assert [p.name for p in cache.iterdir()] == [".lock"]   # no cache, no temporary file


def build_in_a_process(paths, cache):
    decoded_images(paths, (H, W), "bicubic", cache)


def test_two_runs_building_the_same_cache_at_once_both_succeed(tmp_path):
    """The second waits for the first's build (a lock) instead of removing its
    temporary file as a killed build's."""
    import multiprocessing

    paths = write_images(tmp_path, 200)
    cache = tmp_path / "cache"
    context = multiprocessing.get_context("spawn")
    runs = [context.Process(target=build_in_a_process, args=(paths, cache)) for _ in range(2)]
    for run in runs:
        run.start()
    for run in runs:
        run.join()
    assert [run.exitcode for run in runs] == [0, 0]
    (built,) = cache.glob("*.npy")
    decoded = decoded_images(paths, (H, W), "bicubic", cache)
    assert all(np.array_equal(decoded[i], decode_resized(paths[i], (H, W), "bicubic"))
               for i in range(0, 200, 13))
