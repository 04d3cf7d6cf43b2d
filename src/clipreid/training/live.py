"""Per-epoch training curves with dvclive, rebuilt from the checkpoint's history on
resume so the curves of an interrupted run are complete."""

from __future__ import annotations

from typing import Mapping, Sequence


class EpochLog:
    """Writes ``<dir>/metrics.json`` and ``<dir>/plots/metrics/<name>.tsv`` per epoch."""

    def __init__(self, directory: str, history: Sequence[Mapping[str, float]] = ()):
        from dvclive import Live

        self.live = Live(dir=str(directory), dvcyaml=None, save_dvc_exp=False,
                         report=None, resume=False)
        self.history: list[dict[str, float]] = []
        for row in history:
            self.log(row)

    def log(self, row: Mapping[str, float]) -> None:
        for name, value in row.items():
            self.live.log_metric(name, float(value))
        self.history.append(dict(row))
        self.live.next_step()

    def close(self) -> None:
        self.live.end()
