"""Atomic, reproducible writes of tensors."""

import torch

from clipreid.io import load_torch, save_torch


def test_saved_tensors_are_the_same_bytes_whatever_the_file_name(tmp_path):
    """The archive inside a torch file is named "archive", not after the temporary file
    the atomic write goes through: equal contents give equal bytes (and DVC hashes)."""
    obj = {"weights": torch.arange(12.0).reshape(3, 4), "epoch": 3}
    paths = [tmp_path / "a.pt", tmp_path / "b.pt", tmp_path / "a.pt"]
    contents = []
    for path in paths:
        save_torch(path, obj)
        contents.append(path.read_bytes())
    assert contents[0] == contents[1] == contents[2]
    loaded = load_torch(paths[0])
    assert loaded["epoch"] == 3 and torch.equal(loaded["weights"], obj["weights"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.pt", "b.pt"]  # no temporaries


def test_a_planted_pickle_is_refused_without_advice_to_disable_the_check(tmp_path):
    import pytest

    from clipreid.errors import WeightsError
    from clipreid.io import load_torch

    class Payload:
        def __reduce__(self):
            return (print, ("code ran",))

    import torch

    path = tmp_path / "prompts.pt"
    torch.save({"text_features": Payload()}, path)
    with pytest.raises(WeightsError) as err:
        load_torch(path)
    message = str(err.value)
    assert "is not a safe checkpoint" in message and "dvc repro" in message
    assert "weights_only=False" not in message
    assert err.value.__suppress_context__  # torch's advice to drop the check is not shown
