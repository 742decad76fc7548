"""Flow-Bench workflow DAGs (``adjacency_list_dags/<name>.json``: ``{job: [children]}``): loading,
topological order, and matching the job names of run files to DAG nodes."""

from __future__ import annotations

import heapq
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from lmad.errors import DataError


def load_dag(path: str | os.PathLike) -> dict[str, list[str]]:
    """A DAG json ``{job: [children]}``; children that are no key become nodes without children."""
    path = Path(path)
    try:
        dag = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise DataError(f"no such DAG file: {path}") from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(f"DAG {path} is not valid JSON: {exc}") from exc
    if not isinstance(dag, dict) or not all(
        isinstance(v, list) and all(isinstance(c, str) for c in v) for v in dag.values()
    ):
        raise DataError(f"DAG {path} must be a JSON object {{job: [children, ...]}}")
    nodes = {k: list(v) for k, v in dag.items()}
    for children in dag.values():
        for child in children:
            nodes.setdefault(child, [])
    return nodes


def dag_order(dag: Mapping[str, Sequence[str]], source: str = "DAG") -> list[str]:
    """A topological order of the DAG (parents before children), ties broken by name."""
    indegree = dict.fromkeys(dag, 0)
    for children in dag.values():
        for child in set(children):
            indegree[child] = indegree.get(child, 0) + 1
    ready = [n for n, d in indegree.items() if d == 0]
    heapq.heapify(ready)
    order = []
    while ready:
        node = heapq.heappop(ready)
        order.append(node)
        for child in set(dag.get(node, ())):
            indegree[child] -= 1
            if indegree[child] == 0:
                heapq.heappush(ready, child)
    if len(order) < len(indegree):
        stuck = sorted(n for n, d in indegree.items() if d > 0)[:3]
        raise DataError(f"{source} has a cycle through {', '.join(stuck)}")
    return order


def _alias(name: str) -> str:
    """The original code's match for create_dir_/cleanup_ jobs: the name up to the first ``-``."""
    return name.split("-")[0] if name.startswith(("create_dir_", "cleanup_")) else name


def match_jobs(jobs: Sequence[str], nodes: Sequence[str], source: str) -> dict[str, str]:
    """Map job names to DAG nodes: the same name, else the original code's create_dir_/cleanup_
    alias when it is unambiguous. Unknown jobs raise :class:`DataError` with examples."""
    known = set(nodes)
    aliases: dict[str, list[str]] = {}
    for node in nodes:
        aliases.setdefault(_alias(node), []).append(node)
    mapping, unknown = {}, []
    for job in dict.fromkeys(jobs):
        if job in known:
            mapping[job] = job
        elif len(aliases.get(_alias(job), [])) == 1:
            mapping[job] = aliases[_alias(job)][0]
        else:
            unknown.append(job)
    if unknown:
        more = f" and {len(unknown) - 3} more" if len(unknown) > 3 else ""
        raise DataError(
            f"DAG {source} does not match the jobs: {', '.join(unknown[:3])}{more} "
            "are not in it; pass the DAG of this workflow with --dag"
        )
    return mapping


def find_dag(raw: str | os.PathLike, name: str) -> Path | None:
    """The DAG json of ``name`` (or of the raw data's stem) laid out as in Flow-Bench, or None.

    Looks for ``<name>.json`` (also with ``-`` for ``_`` and the other way round) in the raw
    folder, beside the raw data, and in an ``adjacency_list_dags`` folder there or one level up;
    else takes the only json file of a raw folder.
    """
    raw = Path(raw)
    base = raw if raw.is_dir() else raw.parent
    stems = [name, raw.stem if raw.suffix else raw.name]
    stems = [v for s in stems for v in (s, s.replace("_", "-"), s.replace("-", "_"))]
    for folder in (base, base / "adjacency_list_dags", base.parent / "adjacency_list_dags"):
        for stem in dict.fromkeys(stems):
            if (folder / f"{stem}.json").is_file():
                return folder / f"{stem}.json"
    inside = sorted(raw.glob("*.json")) if raw.is_dir() else []
    return inside[0] if len(inside) == 1 else None
