"""Per-epoch training curves with dvclive, rebuilt from the checkpoint's history on
resume so the curves of an interrupted run are complete."""

from __future__ import annotations

from typing import Mapping, Sequence


class EpochLog:
    """Writes ``<dir>/metrics.json`` and ``<dir>/plots/metrics/<name>.tsv`` per epoch."""

    def __init__(self, directory: str, history: Sequence[Mapping[str, float]] = (),
                 enabled: bool = True):
        """``enabled=False`` keeps the history only (the processes other than the main
        one under DDP: one process writes)."""
        self.live = None
        if enabled:
            from dvclive import Live

            self.live = Live(dir=str(directory), dvcyaml=None, save_dvc_exp=False,
                             report=None, resume=False)
        self.history: list[dict[str, float]] = []
        for row in history:
            self.log(row)

    def log(self, row: Mapping[str, float]) -> None:
        self.history.append(dict(row))
        if self.live is not None:
            for name, value in row.items():
                self.live.log_metric(name, float(value))
            self.live.next_step()

    def close(self) -> None:
        if self.live is not None:
            self.live.end()
