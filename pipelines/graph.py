"""The stage list, in graph order, as DVC itself reports it (`dvc dag --dot`).

Nothing here copies dvc.yaml: a stage added there (say `validate` between `prepare` and
`prompt`) shows up in the flows without a change in `pipelines/`.
"""

from __future__ import annotations

import re
from pathlib import Path

from pipelines.commands import query

_NODE = re.compile(r'^\s*"(?P<name>(?:[^"\\]|\\.)+)";\s*$', re.M)
_EDGE = re.compile(r'^\s*"(?P<src>(?:[^"\\]|\\.)+)"\s*->\s*"(?P<dst>(?:[^"\\]|\\.)+)";\s*$',
                   re.M)


def parse_dot(dot: str) -> tuple[list[str], list[tuple[str, str]]]:
    """Nodes (in DVC's order) and edges (upstream -> downstream) of `dvc dag --dot`."""
    nodes = [m["name"] for m in _NODE.finditer(dot)]
    edges = [(m["src"], m["dst"]) for m in _EDGE.finditer(dot)]
    for src, dst in edges:
        for name in (src, dst):
            if name not in nodes:
                nodes.append(name)
    return nodes, edges


def topological_order(nodes: list[str], edges: list[tuple[str, str]]) -> list[str]:
    """Every node after all of its upstream nodes; ties keep the given order (dvc.yaml's)."""
    upstream = {n: set() for n in nodes}
    for src, dst in edges:
        upstream[dst].add(src)
    order: list[str] = []
    done: set[str] = set()
    while len(order) < len(nodes):
        ready = [n for n in nodes if n not in done and upstream[n] <= done]
        if not ready:
            raise ValueError(f"the stage graph has a cycle among {sorted(set(nodes) - done)}")
        order.append(ready[0])
        done.add(ready[0])
    return order


def stage_order(repo: str | Path) -> list[str]:
    """The pipeline stages of the DVC project at `repo`, upstream first.

    `.dvc` files (data added with `dvc add`) are graph nodes but not stages to run.
    """
    nodes, edges = parse_dot(query(["dvc", "dag", "--dot"], repo, timeout=120).stdout)
    return [n for n in topological_order(nodes, edges) if not n.endswith(".dvc")]
