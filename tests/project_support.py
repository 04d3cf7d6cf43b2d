"""Building and running throwaway copies of the project: a fresh git + DVC repository
with the micro configuration, for the end-to-end tests."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent

# Merged into the copy's conf/dataset/synthetic.yaml: a small synthetic set.
MICRO_DATASET = """
synthetic:
  num_train_ids: 8
  num_test_ids: 6
  train_images_per_id: [4, 6]
  gallery_images_per_id: [3, 5]
  num_distractors: 5
  num_junk: 2
"""

# Merged into the copy's conf/config.yaml (after _self_ in the defaults list these values
# win), so `dvc exp run` recomposes to the micro configuration too.
MICRO = """
model:
  input_size: [64, 32]
  architecture:
    vision_layers: 1
    vision_width: 64
    transformer_layers: 1
prompt:
  epochs: 2
finetune:
  epochs: 2
  num_identities: 4
  num_instances: 2
num_workers: 0
export:
  num_images: 4
"""


def run(cmd, cwd, check=True):
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
           "DVC_NO_ANALYTICS": "1", "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise AssertionError(f"{cmd} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def merge(base: dict, extra: dict) -> dict:
    """``base`` with ``extra`` merged in, recursively."""
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def make_project(root: Path) -> Path:
    for name in ("conf", "src"):
        shutil.copytree(ROOT / name, root / name,
                        ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    for name in ("dvc.yaml", ".dvcignore", ".gitignore"):
        shutil.copy(ROOT / name, root / name)
    (root / ".dvc").mkdir()
    shutil.copy(ROOT / ".dvc" / "config", root / ".dvc" / "config")
    shutil.copy(ROOT / ".dvc" / ".gitignore", root / ".dvc" / ".gitignore")
    shutil.copytree(ROOT / ".dvc" / "plots", root / ".dvc" / "plots")
    for name, extra in (("config.yaml", MICRO), ("dataset/synthetic.yaml", MICRO_DATASET)):
        path = root / "conf" / name
        config = yaml.safe_load(path.read_text())
        path.write_text(yaml.safe_dump(merge(config, yaml.safe_load(extra)), sort_keys=False))
    run(["git", "init", "-q"], root)
    run(["clipreid", "compose"], root)
    run(["git", "add", "-A"], root)
    run(["git", "commit", "-qm", "micro project"], root)
    return root


def copy_project(src: Path, dst: Path) -> Path:
    """A copy of a project (git history and DVC cache included) to change freely."""
    shutil.copytree(src, dst, symlinks=True)
    return dst
