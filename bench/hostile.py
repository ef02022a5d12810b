"""The failure matrix of issue 28: the README's contracts under hostile but fair use.

    python bench/hostile.py --data-dir ../shared/data            # ~6 min on 2 CPU cores

Every case runs the real ``w2sprobe`` command line in a fresh process on a copy of one small
workspace (weak and strong MiniLM on SST-2, 200/50/100 examples, as in the issue) and checks
what a user would see: exit code, one ``error:`` line, what ``cache ls`` / ``cache verify``
say, and that the same command succeeds afterwards.  Kills are real: ``strace -e
inject=rename:signal=KILL`` where strace is installed (the issue's own repro), else the process
sends itself ``SIGKILL`` at the same rename; a full disk is a small tmpfs (needs root; cases
that need one are reported as not run without it).  Prints one line per case and the totals;
``--json FILE`` writes them too.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SIZES = ["--n-train", "200", "--n-val", "50", "--n-test", "100"]
MODELS = ["--weak", "minilm", "--strong", "minilm"]

#: A prefix that makes a Python process SIGKILL itself at the first rename / replace whose
#: source passes TEST (the fallback when strace is missing).
KILL_AT_RENAME = """
import os, signal, sys
from pathlib import Path
for _name in ("rename", "replace"):
    _real = getattr(os, _name)
    def _patched(src, dst, *a, _real=_real, **k):
        if TEST(Path(src)):
            os.kill(os.getpid(), signal.SIGKILL)
        return _real(src, dst, *a, **k)
    setattr(os, _name, _patched)
from w2sprobe.cli.app import main
main(sys.argv[1:])
"""

#: A prefix that kills the process half-way through writing any figure (PNG/SVG/PDF).
KILL_IN_SAVEFIG = """
import os, signal, sys
import matplotlib.figure
def _savefig(self, fname, *args, **kwargs):
    with open(fname, "wb") as fh:
        fh.write(b"half an image")
        fh.flush()
    os.kill(os.getpid(), signal.SIGKILL)
matplotlib.figure.Figure.savefig = _savefig
from w2sprobe.cli.app import main
main(sys.argv[1:])
"""


class Bench:
    def __init__(self, work: Path, data_dir: Path):
        self.work, self.data_dir = work, data_dir
        self.base = work / "base"
        self.only: str | None = None  # run only the cases whose name contains it
        self.results: list[dict] = []
        self.env = {**os.environ, "PYTHONPATH": str(REPO), "W2SPROBE_DATA_DIR": str(data_dir)}
        self.env.pop("W2SPROBE_CACHE", None)

    # -- running --------------------------------------------------------------------------
    def w2s(self, *args: str, cwd: Path, prefix: str | None = None, strace: list[str] = ()):
        """``w2sprobe ARGS`` in a fresh process (under strace, or with a Python prefix)."""
        if prefix is not None:
            command = [sys.executable, "-c", prefix, *args]
        else:
            command = [sys.executable, "-m", "w2sprobe", *args]
        if strace:
            command = ["strace", "-f", "-o", os.devnull, *strace, *command]
        done = subprocess.run(command, cwd=cwd, env=self.env, capture_output=True, text=True)
        return done.returncode, done.stdout, done.stderr

    def common(self, cache: Path) -> list[str]:
        return [*MODELS, *SIZES, "--data-dir", str(self.data_dir), "--cache-dir", str(cache)]

    def copy(self, name: str) -> Path:
        """A fresh copy of the base workspace's cache."""
        target = self.work / name
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(self.base / "cache", target)
        return target

    # -- bookkeeping ----------------------------------------------------------------------
    def case(self, group: str, name: str, check: Callable[[], str | None]) -> None:
        if self.only and self.only not in name:
            return
        started = time.perf_counter()
        try:
            problem = check()
        except NotRun as why:
            self.results.append(
                {"group": group, "case": name, "result": "not run", "detail": str(why)}
            )
            print(f"  not run  {name}: {why}", flush=True)
            return
        except Exception as exc:  # noqa: BLE001 - a crash of the check is a failure of the case
            problem = f"check crashed: {type(exc).__name__}: {exc}"
        result = "passed" if problem is None else "FAILED"
        self.results.append(
            {
                "group": group,
                "case": name,
                "result": result,
                "detail": problem or "",
                "seconds": time.perf_counter() - started,
            }
        )
        print(f"  {result:7}  {name}" + (f": {problem}" if problem else ""), flush=True)


class NotRun(Exception):
    """The case needs something this machine lacks (root for a tmpfs)."""


def one_error_line(code: int, err: str, expected_code: int = 2) -> str | None:
    """None when the command failed with exactly one ``error:`` line (its last) and no
    traceback; else what is wrong."""
    lines = err.strip().splitlines()
    errors = [line for line in lines if line.startswith("error: ")]
    if code != expected_code:
        return f"exit {code}, expected {expected_code}: {lines[-1] if lines else ''}"
    if "Traceback" in err or len(errors) != 1 or lines[-1] != errors[0]:
        return f"not one error line: {err.strip()[-300:]!r}"
    return None


def need(condition: bool, problem: str) -> str | None:
    return None if condition else problem


# --------------------------------------------------------------------------- cases


def crash_cases(b: Bench) -> None:
    group = "crash safety"

    def label_rename_kill() -> str | None:
        cache = b.copy("kill-labels")
        args = ["relabel", "--probe", "knn", "--k", "30", *b.common(cache)]  # not cached yet
        if shutil.which("strace"):
            code, _, err = b.w2s(
                *args, cwd=b.work, strace=["-e", "trace=rename", "-e", "inject=rename:signal=KILL"]
            )
        else:
            test = "TEST = lambda p: p.name.startswith('.labels-')\n"
            code, _, err = b.w2s(*args, cwd=b.work, prefix=test + KILL_AT_RENAME)
        if code != -signal.SIGKILL and code != 128 + signal.SIGKILL:
            return f"the kill did not happen (exit {code}): {err[-200:]}"
        code, out, err = b.w2s("cache", "ls", "labels", "--cache-dir", str(cache), cwd=b.work)
        listed = "leftover" in out
        code, out, err = b.w2s(*args, "--json", cwd=b.work)
        if code != 0:
            return f"the rerun fails: {err.strip().splitlines()[-1]}"
        if not listed:
            return "cache ls does not report the staging folder"
        leftovers = list((cache / "labels" / "sst2").glob(".*"))
        return need(not leftovers, f"left behind: {leftovers}")

    def rerun_kill(command: list[str], kind: str) -> Callable[[], str | None]:
        def check() -> str | None:
            cache = b.copy(f"kill-{kind}")
            code, out, err = b.w2s(*command, "--cache-dir", str(cache), cwd=b.work)
            if code != 0:
                return f"first run failed: {err.strip()[-200:]}"
            code, _, err = b.w2s(
                *command, "--cache-dir", str(cache), cwd=b.work, prefix=KILL_IN_SAVEFIG
            )
            if code != -signal.SIGKILL:
                return f"the kill did not happen (exit {code})"
            code, out, _ = b.w2s(
                "cache", "ls", kind, "--json", "--cache-dir", str(cache), cwd=b.work
            )
            complete = [Path(e["path"]) for e in json.loads(out)["entries"] if e["complete"]]
            torn = [
                path
                for folder in complete
                for path in folder.rglob("*")
                if path.is_file()
                and not path.name.startswith(".")
                and (path.stat().st_size == 0 or path.read_bytes() == b"half an image")
            ]
            if torn:
                return f"a torn file in a {kind[:-1]} that looks complete: {torn[0]}"
            code, _, err = b.w2s(*command, "--cache-dir", str(cache), cwd=b.work)
            return need(code == 0, f"the rerun fails: {err.strip()[-200:]}")

        return check

    b.case(
        group, "kill at the label-set rename (strace inject rename:KILL), rerun", label_rename_kill
    )
    report = ["report", "--n-boot", "0", "--format", "md"]
    b.case(group, "kill while `report` rewrites a finished report", rerun_kill(report, "reports"))
    sweep = [
        "sweep",
        "--probe",
        "knn",
        "--k",
        "5,10",
        *MODELS,
        *SIZES,
        "--data-dir",
        str(b.data_dir),
    ]
    b.case(group, "kill while `sweep` rewrites a finished sweep", rerun_kill(sweep, "sweeps"))

    def extract_kill() -> str | None:
        cache = b.work / "kill-extract"
        shutil.rmtree(cache, ignore_errors=True)
        args = [
            "extract",
            "--strong",
            "minilm",
            "--layers",
            "all",
            "--max-length",
            "64",
            *SIZES,
            "--data-dir",
            str(b.data_dir),
            "--cache-dir",
            str(cache),
        ]
        proc = subprocess.Popen(
            [sys.executable, "-m", "w2sprobe", *args],
            cwd=b.work,
            env=b.env,
            stderr=subprocess.PIPE,
            text=True,
        )
        for line in proc.stderr:  # kill -9 once rows are being committed
            if "row " in line and "/350" in line:
                proc.send_signal(signal.SIGKILL)
                break
        proc.wait()
        if list(cache.rglob("*.h5")):
            return "a complete-looking file after kill -9"
        code, out, err = b.w2s(*args, "--json", cwd=b.work)
        if code != 0:
            return f"the rerun fails: {err.strip()[-200:]}"
        return need(json.loads(out).get("resumed_rows", 1) > 0, "the rerun did not resume")

    b.case(group, "kill -9 mid-extraction, rerun resumes", extract_kill)

    def metrics_kill() -> str | None:
        cache = b.copy("kill-metrics")
        args = ["probe", "--probe", "logreg", *b.common(cache)]
        test = "TEST = lambda p: p.name.startswith('.metrics.json')\n"
        code, _, _ = b.w2s(*args, cwd=b.work, prefix=test + KILL_AT_RENAME)
        if code != -signal.SIGKILL:
            return f"the kill did not happen (exit {code})"
        code, out, _ = b.w2s("cache", "ls", "runs", "--json", "--cache-dir", str(cache), cwd=b.work)
        if any(
            e["status"] == "complete" and e["name"] == "logreg-probe"
            for e in json.loads(out)["entries"]
        ):
            return "the killed probe run looks complete"
        code, _, err = b.w2s(*args, cwd=b.work)
        return need(code == 0, f"the rerun fails: {err.strip()[-200:]}")

    b.case(group, "kill at a run's metrics.json rename, rerun", metrics_kill)


def disk_cases(b: Bench) -> None:
    group = "disk full"

    def full(name: str, command: Callable[[Path], list[str]], leave: int, size: str = "16m"):
        def check() -> str | None:
            disk = b.work / f"disk-{name}"
            shutil.rmtree(disk, ignore_errors=True)
            disk.mkdir()
            if subprocess.run(
                ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(disk)],
                capture_output=True,
            ).returncode:
                raise NotRun("needs root to mount a small tmpfs")
            try:
                shutil.copytree(b.base / "cache", disk / "cache")
                filler = disk / "filler"
                with filler.open("wb") as fh:
                    try:
                        while (free := shutil.disk_usage(disk).free) > leave:
                            fh.write(b"\0" * min(1 << 20, max(4096, free - leave)))
                            fh.flush()
                    except OSError:
                        pass
                before = {p for p in (disk / "cache").rglob("*")}
                code, _, err = b.w2s(*command(disk / "cache"), cwd=b.work)
                problem = one_error_line(code, err)
                if problem:
                    return problem
                if "error: no space left on device while writing" not in err:
                    return f"unexpected error: {err.strip().splitlines()[-1]}"
                new = {p for p in (disk / "cache").rglob("*")} - before
                stray = [p for p in new if p.name.endswith(".tmp") or ".staging-" in p.name]
                if stray:
                    return f"temporary files left: {stray}"
                filler.unlink()
                code, _, err = b.w2s(*command(disk / "cache"), cwd=b.work)
                return need(code == 0, f"the rerun with space fails: {err.strip()[-200:]}")
            finally:
                subprocess.run(["umount", "-l", str(disk)], capture_output=True)

        return check

    b.case(
        group,
        "`extract` on a full disk: one line, rerun works",
        full(
            "extract",
            lambda c: [
                "extract",
                "--strong",
                "minilm",
                "--max-length",
                "100",
                *SIZES,
                "--data-dir",
                str(b.data_dir),
                "--cache-dir",
                str(c),
            ],
            64 << 10,
        ),
    )
    b.case(
        group,
        "`relabel` on a full disk: one line, rerun works",
        full("relabel", lambda c: ["relabel", "--probe", "knn", "--k", "7", *b.common(c)], 0),
    )
    b.case(
        group,
        "`report` on a full disk: one line, rerun works",
        full(
            "report",
            lambda c: [
                "report",
                "--cache-dir",
                str(c),
                "--n-boot",
                "0",
                "--format",
                "md",
                "--out",
                str(c.parent / "r"),
            ],
            16 << 10,
        ),
    )
    b.case(
        group,
        "`train` checkpoint on a full disk: one line, rerun works",
        full("train", lambda c: ["train", "ceiling", "--epochs", "2", *b.common(c)], 64 << 10),
    )


def corruption_cases(b: Bench) -> None:
    group = "corruption"

    def relabeled_table(cache: Path) -> tuple[str, Path]:
        code, out, err = b.w2s(
            "relabel", "--probe", "knn", "--k", "40", "--json", *b.common(cache), cwd=b.work
        )
        key = json.loads(out)["key"]
        return key, next((cache / "labels").glob(f"*/{key}")) / "labels.csv"

    def lost_rows() -> str | None:
        cache = b.copy("lost-rows")
        key, table = relabeled_table(cache)
        lines = table.read_text().splitlines(keepends=True)
        table.write_text("".join(lines[:31]))
        code, _, err = b.w2s(
            "probe", "--probe", "knn", "--labels", "knn-relabel@weak", *b.common(cache), cwd=b.work
        )
        problem = one_error_line(code, err)
        return problem or need(
            f"cache rm {key}" in err and "30 strong_train rows" in err,
            f"does not name the damage and the way out: {err.strip()}",
        )

    def cut_mid_line(command: str) -> Callable[[], str | None]:
        def check() -> str | None:
            cache = b.copy(f"cut-{command}")
            key, table = relabeled_table(cache)
            data = table.read_bytes()
            table.write_bytes(data[: len(data) // 2].rsplit(b",", 1)[0])
            code, _, err = b.w2s(
                command,
                "--probe",
                "knn",
                "--labels",
                "knn-relabel@weak",
                *b.common(cache),
                cwd=b.work,
            )
            return one_error_line(code, err) or need(f"cache rm {key}" in err, err.strip())

        return check

    b.case(group, "labels.csv cut to 30 rows: `probe` refuses, names cache rm", lost_rows)
    b.case(group, "labels.csv cut mid-line: `probe` is one line", cut_mid_line("probe"))
    b.case(group, "labels.csv cut mid-line: `filter` is one line", cut_mid_line("filter"))

    def verify_catches(kind: str, name: str) -> Callable[[], str | None]:
        def check() -> str | None:
            cache = b.copy(f"verify-{name}")
            code, out, _ = b.w2s(
                "cache", "ls", kind, "--json", "--cache-dir", str(cache), cwd=b.work
            )
            entry = next(
                e for e in json.loads(out)["entries"] if (Path(e["path"]) / name).is_file()
            )
            path = Path(entry["path"]) / name
            path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
            code, out, _ = b.w2s("cache", "verify", "--cache-dir", str(cache), cwd=b.work)
            return need(
                code == 1 and "BAD" in out and f"cache rm {entry['key']}" in out,
                f"exit {code}: {out.strip()[-200:]}",
            )

        return check

    for kind, name in (
        ("labels", "labels.csv"),
        ("runs", "metrics.json"),
        ("runs", "predictions.csv"),
        ("reports", "report.json"),
        ("sweeps", "sweep.json"),
        ("sweeps", "sweep.csv"),
    ):
        b.case(group, f"`cache verify` catches a truncated {name}", verify_catches(kind, name))

    def verify_missing() -> str | None:
        code, _, err = b.w2s("cache", "verify", "--cache-dir", "/nonexistent", cwd=b.work)
        return need(code != 0, "exit 0 for a cache that does not exist")

    b.case(group, "`cache verify --cache-dir /nonexistent` is not exit 0", verify_missing)

    def truncated_h5() -> str | None:
        cache = b.copy("truncated-h5")
        (path,) = cache.rglob("*.h5")
        path.write_bytes(path.read_bytes()[:4000])
        code, out, _ = b.w2s("cache", "verify", "--cache-dir", str(cache), cwd=b.work)
        key = path.name.removesuffix(".h5")
        return need(code == 1 and f"cache rm {key}" in out, f"exit {code}: {out.strip()[-200:]}")

    b.case(group, "a truncated activation file: verify names its cache rm", truncated_h5)

    def umask() -> str | None:
        modes = {p.stat().st_mode & 0o777 for p in (b.base / "cache" / "labels").glob("*/*")}
        return need(modes == {0o755}, f"label-set folder modes {sorted(map(oct, modes))}")

    b.case(group, "label-set folders follow the umask (022 -> 0755)", umask)

    def stale() -> str | None:
        cache = b.copy("stale")
        keys = []
        for k in ("40", "41"):
            code, out, err = b.w2s(
                "relabel", "--probe", "knn", "--k", k, "--json", *b.common(cache), cwd=b.work
            )
            keys.append(json.loads(out)["key"])
        return need(keys[0] != keys[1], "another k reused the same label set")

    b.case(group, "a changed input gives a new key (relabel --k 40 vs 41)", stale)


BAD_FILES = {
    "maybe.jsonl": "".join(
        json.dumps({"text": f"example {i}", "label": "maybe" if i == 7 else i % 2}) + "\n"
        for i in range(40)
    ).encode(),
    "utf8.jsonl": b"".join(
        json.dumps({"text": f"example {i}", "label": i % 2}).encode().replace(b"ple 5", b"\xff\xfe")
        + b"\n"
        for i in range(40)
    ),
    "malformed.jsonl": "".join(
        (
            json.dumps({"text": f"example {i}", "label": i % 2})
            if i != 9
            else '{"text": "x", "label": 1'
        )
        + "\n"
        for i in range(40)
    ).encode(),
    "utf8.csv": b"text,label\n"
    + b"".join(
        (b"bad \xff" if i == 5 else f"example {i}".encode()) + f",{i % 2}\n".encode()
        for i in range(40)
    ),
    "garbage.parquet": b"this is not parquet\n" * 10,
    "empty.jsonl": b"",
}


#: What the error line must say about each file (where, and what is wrong).
SAYS = {
    "maybe.jsonl": "row 8",
    "utf8.jsonl": "line 6 is not valid UTF-8",
    "malformed.jsonl": "line 10 is not valid JSON",
    "utf8.csv": "line 7 is not valid UTF-8",
    "garbage.parquet": "not a parquet file",
    "empty.jsonl": "the file is empty",
}


def input_cases(b: Bench) -> None:
    group = "bad input"
    folder = b.work / "files"
    folder.mkdir(exist_ok=True)
    for name, content in BAD_FILES.items():
        (folder / name).write_bytes(content)

        def check(path: Path = folder / name) -> str | None:
            code, _, err = b.w2s("data", "show", str(path), cwd=b.work)
            problem = one_error_line(code, err)
            if problem:
                return problem
            says = SAYS[path.name]
            return need(
                err.count("\n") == 1 and str(path) in err and says in err,
                f"not one line naming the file and saying {says!r}: {err.strip()!r}",
            )

        b.case(group, f"`data show {name}`: one line naming the file", check)

    cache = b.work / "never"

    def early(args: list[str], must: str) -> Callable[[], str | None]:
        def check() -> str | None:
            started = time.perf_counter()
            code, out, err = b.w2s(*args, cwd=b.work)
            problem = one_error_line(code, err)
            if problem:
                return problem
            if err.count("\n") != 1 or must not in err:
                return f"not the only output before work: {err.strip()!r}"
            if cache.exists():
                return "the cache was touched"
            return need(time.perf_counter() - started < 60, "slow: work ran before the check")

        return check

    common = [*MODELS, *SIZES, "--data-dir", str(b.data_dir), "--cache-dir", str(cache)]
    b.case(
        group,
        "`relabel --knn-backend cuml` without cuML: before any training",
        early(
            ["relabel", "--probe", "knn", "--knn-backend", "cuml", "--device", "cpu", *common],
            "cuML",
        ),
    )
    for shard in ("3/2", "0/0", "x"):
        b.case(
            group,
            f"`run --shard {shard}`: before the banner",
            early(["run", "--shard", shard, *common], "--shard"),
        )
    target = b.work / "a-file.txt"
    target.write_text("keep")
    b.case(
        group,
        "`report --out <a file>`: before the bootstrap",
        early(["report", "--out", str(target), "--cache-dir", str(b.base / "cache")], "--out"),
    )
    b.case(
        group,
        "`relabel --name ''` is refused",
        early(["relabel", "--probe", "knn", "--name", "", *common], "--name"),
    )

    def unknown_key() -> str | None:
        code, _, err = b.w2s(
            "cache", "rm", "ffffffff", "--cache-dir", str(b.base / "cache"), cwd=b.work
        )
        return one_error_line(code, err)

    b.case(group, "`cache rm` of an unknown key is one line", unknown_key)


# --------------------------------------------------------------------------- main


def build_base(b: Bench) -> None:
    """The workspace every case copies: weak labels, activations, a knn-relabel set, a knn
    probe run (with the ceiling its PGR needs), a sweep and a report."""
    cache = b.base / "cache"
    steps = [
        ["relabel", "--probe", "knn", "--k", "40", *b.common(cache)],
        ["probe", "--probe", "knn", "--k", "40", *b.common(cache)],
        ["sweep", "--probe", "knn", "--k", "5,10", *b.common(cache)],
        ["report", "--n-boot", "0", "--format", "md", "--cache-dir", str(cache)],
    ]
    for step in steps:
        code, _, err = b.w2s(*step, cwd=b.work)
        if code != 0:
            sys.exit(f"building the base workspace failed at {step[0]}: {err.strip()[-500:]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=str(REPO.parent / "shared" / "data"))
    parser.add_argument("--work", default=None, help="scratch folder [default: a temp dir]")
    parser.add_argument("--json", default=None, help="also write the results here")
    parser.add_argument("--only", default=None, help="run only cases whose name contains this")
    args = parser.parse_args()
    os.umask(0o022)
    work = Path(args.work or tempfile.mkdtemp(prefix="w2s-hostile-"))
    work.mkdir(parents=True, exist_ok=True)
    bench = Bench(work, Path(args.data_dir).resolve())
    bench.only = args.only
    started = time.perf_counter()
    print(f"base workspace in {work} ...", flush=True)
    if not (bench.base / "cache").is_dir():  # a --work of an earlier run keeps its base
        build_base(bench)
    for group in (crash_cases, disk_cases, corruption_cases, input_cases):
        print(group.__name__.replace("_cases", "").replace("_", " ") + ":", flush=True)
        group(bench)
    tried = [r for r in bench.results if r["result"] != "not run"]
    passed = [r for r in tried if r["result"] == "passed"]
    not_run = len(bench.results) - len(tried)
    print(
        f"\ntried {len(tried)}, passed {len(passed)}"
        + (f", not run {not_run}" if not_run else "")
        + f" ({time.perf_counter() - started:.0f} s)"
    )
    for group in dict.fromkeys(r["group"] for r in bench.results):
        rows = [r for r in tried if r["group"] == group]
        ok = sum(r["result"] == "passed" for r in rows)
        print(f"| {group} | {len(rows)} | {ok} |")
    if args.json:
        Path(args.json).write_text(json.dumps(bench.results, indent=1))
    shutil.rmtree(work / "files", ignore_errors=True)
    sys.exit(0 if len(passed) == len(tried) else 1)


if __name__ == "__main__":
    main()
