"""Seeded synthetic workflow runs in Flow-Bench's format, so the workflow pipeline needs no download.

The workflow is a small DAG (12 jobs by default), named like Pegasus names jobs in Flow-Bench::

    create_dir_synthetic-workflow_0_condorpool -> stage_in_local_condorpool_0_0 -> preprocess_ID0000001
    -> simulate_ID0000002 ... simulate_ID0000007 -> merge_ID0000008 -> stage_out_local_condorpool_0_0
    -> cleanup_synthetic-workflow_0_condorpool

Each run is one CSV with the job name first and the 44 columns of a Flow-Bench run
(:data:`lmad.workflows.sentences.COLUMNS`), timestamps consistent with the DAG (a job is ready when
its parents' post scripts end). Missing values are where Flow-Bench has them (no stage-in for
auxiliary jobs, no ``kickstart_online_*`` outside compute jobs, never a pre script).

Anomalies follow Flow-Bench's kinds. A run is normal, or has one anomaly type on some of its compute
jobs (only those carry the label): ``cpu_K`` (K cores unusable) stretches the compute part of the
runtime and the cpu time by :data:`CPU_STRETCH`; ``hdd_K`` (disk capped at K MB/s) stretches the
stage-in and stage-out delays by :data:`HDD_STRETCH` (and the runtime, which contains them).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from lmad.errors import ConfigError
from lmad.io import atomic_write_json, atomic_write_text
from lmad.workflows.sentences import COLUMNS, NORMAL

WORKFLOW = "synthetic-workflow"
NAME = "synthetic_workflow"
ANOMALIES: tuple[str, ...] = ("cpu_2", "cpu_3", "cpu_4", "hdd_5", "hdd_10")
CPU_STRETCH = {"cpu_2": 1.8, "cpu_3": 2.3, "cpu_4": 2.8}
"""Factor on the compute seconds (runtime without staging) and the cpu time of an affected job."""
HDD_STRETCH = {"hdd_5": 4.0, "hdd_10": 2.5}
"""Factor on the stage-in and stage-out delays of an affected job."""
COMPUTE_SECONDS = {"preprocess": 40.0, "simulate": 90.0, "merge": 50.0}
"""Mean compute seconds of a normal job of each transformation."""
N_COMPUTE = 6
"""Parallel ``simulate`` jobs between preprocess and merge (12 jobs in all)."""


@dataclass(frozen=True)
class JobSpec:
    """One job of the synthetic workflow."""

    name: str
    type: str  # auxiliary, compute or transfer
    transformation: str
    parents: tuple[str, ...]


@dataclass
class SyntheticRaw:
    """What :func:`write_synthetic` wrote."""

    folder: Path
    dag: Path
    runs: list[Path]
    jobs: int
    anomalous: int


def job_specs(n_compute: int = N_COMPUTE) -> list[JobSpec]:
    """The jobs in DAG order: create_dir, stage_in, preprocess, ``n_compute`` simulate, merge, ..."""
    if n_compute < 1:
        raise ConfigError(
            f"the synthetic workflow needs at least one simulate job, not {n_compute}"
        )
    create = JobSpec(f"create_dir_{WORKFLOW}_0_condorpool", "auxiliary", "pegasus::dirmanager", ())
    stage_in = JobSpec(
        "stage_in_local_condorpool_0_0", "transfer", "pegasus::transfer", (create.name,)
    )
    pre = JobSpec("preprocess_ID0000001", "compute", "preprocess", (stage_in.name,))
    sims = [
        JobSpec(f"simulate_ID{i + 2:07d}", "compute", "simulate", (pre.name,))
        for i in range(n_compute)
    ]
    merge = JobSpec(f"merge_ID{n_compute + 2:07d}", "compute", "merge", tuple(s.name for s in sims))
    out = JobSpec("stage_out_local_condorpool_0_0", "transfer", "pegasus::transfer", (merge.name,))
    clean = JobSpec(
        f"cleanup_{WORKFLOW}_0_condorpool", "auxiliary", "pegasus::cleanup", (out.name,)
    )
    return [create, stage_in, pre, *sims, merge, out, clean]


def synthetic_dag(n_compute: int = N_COMPUTE) -> dict[str, list[str]]:
    """The adjacency list ``{job: [children]}`` of the synthetic workflow, as Flow-Bench writes it."""
    specs = job_specs(n_compute)
    return {s.name: [c.name for c in specs if s.name in c.parents] for s in specs}


def _job_row(
    spec: JobSpec, rng: np.random.Generator, ready: float, anomaly: str
) -> dict[str, object]:
    """One job's 44 values; ``anomaly`` is the type acting on it (``None`` when normal)."""
    nan = float("nan")
    row: dict[str, object] = dict.fromkeys(COLUMNS, nan)
    compute, local = spec.type == "compute", spec.type != "compute"
    wms = float(5 + rng.poisson(0.3)) if spec.type != "auxiliary" else float(rng.integers(1, 6))
    queue = float(np.round(rng.exponential(15.0))) if compute else float(rng.integers(0, 5))
    stage_in = stage_out = nan
    in_bytes = out_bytes = nan
    if compute:
        stage_in = max(1.0, np.round(rng.normal(16.0, 2.0)))
        stage_out = max(1.0, np.round(rng.normal(4.0, 1.0)))
        in_bytes = float(np.round(1.15e9 * rng.normal(1.0, 0.002)))
        out_bytes = float(np.round(5.2e5 * rng.normal(1.0, 0.05)))
        seconds = COMPUTE_SECONDS[spec.transformation] * rng.lognormal(0.0, 0.1)
        seconds *= CPU_STRETCH.get(anomaly, 1.0)
        stage_in = float(np.round(stage_in * HDD_STRETCH.get(anomaly, 1.0)))
        stage_out = float(np.round(stage_out * HDD_STRETCH.get(anomaly, 1.0)))
        runtime = float(np.round(stage_in + seconds + stage_out))
        cpu = float(np.round(0.65 * seconds * rng.lognormal(0.0, 0.05), 1))
    else:
        runtime = float(rng.integers(5, 11))
        cpu = float(np.round(rng.uniform(0.2, 1.5), 1))
        if spec.name.startswith("stage_in"):
            stage_in, in_bytes = float(rng.integers(3, 8)), float(rng.integers(10**6, 10**7))
        elif spec.name.startswith("stage_out"):
            stage_out, out_bytes = float(rng.integers(3, 8)), float(rng.integers(10**6, 10**7))
    submit = ready + wms
    start = submit + queue
    end = start + runtime
    post = 5.0
    row.update(
        anomaly_type=anomaly if compute else NORMAL,
        type=spec.type,
        is_clustered=0,
        ready=ready,
        submit=submit,
        execute_start=start,
        execute_end=end,
        post_script_start=end,
        post_script_end=end + post,
        wms_delay=wms,
        queue_delay=queue,
        runtime=runtime,
        post_script_delay=post,
        stage_in_delay=stage_in,
        stage_in_bytes=in_bytes,
        stage_out_delay=stage_out,
        stage_out_bytes=out_bytes,
        stage_in_effective_bytes_per_sec=0.0
        if np.isnan(stage_in)
        else float(np.round(in_bytes / stage_in, 1)),
        stage_out_effective_bytes_per_sec=0.0
        if np.isnan(stage_out)
        else float(np.round(out_bytes / stage_out, 1)),
        kickstart_user="lmad",
        kickstart_site="local" if local else "condorpool",
        kickstart_hostname="submit-host" if local else f"worker-{rng.integers(1, 9)}",
        kickstart_transformations=spec.transformation
        if local
        else f"{WORKFLOW}_{spec.transformation}",
        kickstart_executables="/opt/pegasus/bin/pegasus-transfer"
        if local
        else f"/srv/{spec.transformation}",
        kickstart_executables_cpu_time=cpu,
        kickstart_status=0,
        kickstart_executables_exitcode=0,
    )
    if not np.isnan(stage_in):
        row.update(stage_in_start=start, stage_in_end=start + stage_in)
    if not np.isnan(stage_out):
        row.update(stage_out_start=end - stage_out, stage_out_end=end)
    if local:
        row["kickstart_executables_argv"] = (
            f"pegasus-kickstart -n {spec.transformation} -N null -R local -L {WORKFLOW} "
            "pegasus-transfer"
        )
    else:
        read = float(np.round(in_bytes * rng.uniform(0.2, 0.3)))
        written = float(np.round(rng.uniform(3e7, 5e7)))
        row.update(
            kickstart_online_iowait=float(np.round(rng.uniform(0.0, 0.2), 1)),
            kickstart_online_bytes_read=read,
            kickstart_online_bytes_written=written,
            kickstart_online_read_system_calls=float(rng.integers(10**5, 2 * 10**5)),
            kickstart_online_write_system_calls=float(rng.integers(10**3, 10**4)),
            kickstart_online_utime=float(np.round(cpu * 0.9, 1)),
            kickstart_online_stime=float(np.round(cpu * 0.05, 1)),
            kickstart_online_bytes_read_per_second=float(np.round(read / runtime, 1)),
            kickstart_online_bytes_written_per_second=float(np.round(written / runtime, 1)),
        )
    return row


def generate_run(
    rng: np.random.Generator,
    anomaly: str = NORMAL,
    affected: frozenset[str] | set[str] = frozenset(),
    start: float = 1.7e9,
    n_compute: int = N_COMPUTE,
) -> pd.DataFrame:
    """One run, indexed by job name: ``anomaly`` acts on the jobs in ``affected`` only."""
    end: dict[str, float] = {}
    rows = {}
    for spec in job_specs(n_compute):
        ready = max((end[p] for p in spec.parents), default=start)
        row = _job_row(spec, rng, ready, anomaly if spec.name in affected else NORMAL)
        end[spec.name] = float(row["post_script_end"])
        rows[spec.name] = row
    return pd.DataFrame.from_dict(rows, orient="index", columns=list(COLUMNS))


def generate_runs(
    n_runs: int,
    seed: int,
    normal_share: float,
    affected_share: float,
    n_compute: int = N_COMPUTE,
) -> dict[str, pd.DataFrame]:
    """``n_runs`` runs named ``synthetic-workflow-run0001`` ...; the same seed gives the same runs.

    A run is normal with probability ``normal_share``; otherwise one anomaly type (uniform over
    :data:`ANOMALIES`) hits each compute job with probability ``affected_share`` (at least one).
    """
    if n_runs < 1:
        raise ConfigError(f"--runs must be at least 1, not {n_runs}")
    if not (0 <= normal_share <= 1 and 0 < affected_share <= 1):
        raise ConfigError("normal_share must lie in [0, 1] and affected_share in (0, 1]")
    rng = np.random.default_rng(seed)
    compute = [s.name for s in job_specs(n_compute) if s.type == "compute"]
    runs = {}
    for i in range(n_runs):
        anomaly, affected = NORMAL, frozenset()
        if rng.random() >= normal_share:
            anomaly = str(rng.choice(ANOMALIES))
            hit = rng.random(len(compute)) < affected_share
            if not hit.any():
                hit[rng.integers(len(compute))] = True
            affected = frozenset(np.asarray(compute)[hit].tolist())
        start = 1.7e9 + 3600.0 * i + float(rng.integers(0, 600))
        runs[f"{WORKFLOW}-run{i + 1:04d}"] = generate_run(rng, anomaly, affected, start, n_compute)
    return runs


def write_synthetic(
    folder: str | os.PathLike,
    n_runs: int,
    seed: int,
    normal_share: float,
    affected_share: float,
    n_compute: int = N_COMPUTE,
) -> SyntheticRaw:
    """Write the runs as ``<folder>/<run>.csv`` and the DAG as ``<folder>/synthetic_workflow.json``.

    Run CSVs of an earlier, larger generation in the folder are removed, so the folder always holds
    exactly this generation.
    """
    folder = Path(folder)
    runs = generate_runs(n_runs, seed, normal_share, affected_share, n_compute)
    dag = atomic_write_json(folder / f"{NAME}.json", synthetic_dag(n_compute))
    paths = []
    for run, frame in runs.items():
        paths.append(atomic_write_text(folder / f"{run}.csv", frame.to_csv(index_label="")))
    for stale in set(folder.glob(f"{WORKFLOW}-run*.csv")) - set(paths):
        stale.unlink()
    jobs = sum(len(f) for f in runs.values())
    anomalous = sum(int((f["anomaly_type"] != NORMAL).sum()) for f in runs.values())
    return SyntheticRaw(folder=folder, dag=dag, runs=paths, jobs=jobs, anomalous=anomalous)
