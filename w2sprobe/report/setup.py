"""What a report compared: models, dataset sizes, seeds and the commands that made its runs.

The top of a report answers "what is this?" before any number: it is read from the same result
files as the tables (``metrics.json`` and ``manifest.json`` of each run). Runs written before
manifests recorded their command simply count as "not recorded".
"""

from __future__ import annotations

import json
from collections import Counter

from .collect import Collection, RunResult

#: Split names in the order a reader expects them (the data flow's order).
SPLIT_ORDER = ("weak_train", "strong_train", "val", "test")


def study_setup(found: Collection) -> dict:
    """Weak and strong models, per-dataset split sizes, seeds and producing commands."""
    runs = found.runs
    commands = Counter(run_command(run) for run in runs)
    unrecorded = commands.pop(None, 0)
    return {
        "student_kind": found.kind,
        "weak_models": _models(runs, ("weak",)),
        "strong_models": _models(runs, ("ceiling", "student", "probe")),
        "datasets": found.datasets,
        "sizes": {dataset: dataset_sizes(found.of(dataset)) for dataset in found.datasets},
        "seeds": sorted({run.seed for run in runs}),
        "commands": [
            {"command": command, "runs": count}
            for command, count in sorted(commands.items(), key=lambda kv: (-kv[1], kv[0]))
        ],
        "runs_without_command": unrecorded,
        "environments": environments(runs),
        "n_runs": len(runs),
    }


def environments(runs: list[RunResult]) -> list[dict]:
    """The distinct environments that made the runs (:mod:`w2sprobe.provenance`: versions,
    device, CPU, hashed host), each with its runs' count and experiments; runs written before
    manifests recorded one are one entry with ``environment`` None."""
    groups: dict[str, dict] = {}
    for run in runs:
        env = run.manifest.get("environment")
        env = env if isinstance(env, dict) else None
        key = json.dumps(env, sort_keys=True)
        entry = groups.setdefault(key, {"environment": env, "runs": 0, "experiments": set()})
        entry["runs"] += 1
        entry["experiments"].add(f"{run.dataset}/{run.experiment}")
    return [
        {**entry, "experiments": sorted(entry["experiments"])}
        for entry in sorted(groups.values(), key=lambda e: -e["runs"])
    ]


def environment_text(env: dict | None) -> str:
    """One line per environment, e.g. ``host 1a2b… · cuda NVIDIA H100 · CPU … · torch 2.13.0``."""
    if not env:
        return "not recorded (runs from before manifests recorded their environment)"
    versions = env.get("versions") or {}
    device = env.get("device") or "?"
    if env.get("device_name"):
        device += f" {env['device_name']}"
    packages = ", ".join(f"{k} {v}" for k, v in versions.items() if v)
    return f"host {env.get('host')} (hashed) · {device} · CPU {env.get('cpu')} · {packages}"


def run_command(run: RunResult) -> str | None:
    """The ``w2sprobe ...`` command line that wrote the run (recorded in its manifest), if any."""
    for source in (run.manifest, run.metrics):
        command = source.get("command")
        if isinstance(command, str) and command:
            return command
    return None


def dataset_sizes(runs: list[RunResult]) -> dict[str, int]:
    """Examples per split of a dataset: a run's recorded ``split_sizes`` (the weak run's first),
    else only the test size the runs report."""
    for run in sorted(runs, key=lambda r: r.stage != "weak"):
        sizes = run.metrics.get("split_sizes") or run.manifest.get("split_sizes")
        if isinstance(sizes, dict) and sizes:
            known = [s for s in SPLIT_ORDER if isinstance(sizes.get(s), int)]
            extra = sorted(
                s for s, n in sizes.items() if s not in SPLIT_ORDER and isinstance(n, int)
            )
            return {split: sizes[split] for split in known + extra}
    tests = sorted({run.n for run in runs if isinstance(run.n, int)})
    return {"test": tests[0]} if len(tests) == 1 else {}


def _models(runs: list[RunResult], stages: tuple[str, ...]) -> list[str]:
    return sorted({str(run.model) for run in runs if run.stage in stages and run.model})
