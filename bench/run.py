"""Entry point: `python -m bench` (or `python bench/run.py`); settings come from BENCH_* variables.

    BENCH_ITEMS=5000        image project items (20000 and 100000 work too)
    BENCH_DATASETS=4        top-level datasets (plus one nested)
    BENCH_REPS=3            repetitions of every timed operation
    BENCH_RESTORE_REPS=5    repetitions of the image profiles' restores (pvc, cp -a, git, restic)
    BENCH_BIGFILE_MB=256    the big file (1024 for the 1 GiB case; 0 skips it)
    BENCH_VIDEOS=3          PyAV-encoded videos (0 skips), BENCH_VIDEO_FRAMES=150 frames each
    BENCH_VOLUME_MB=64      NRRD volumes, total MiB (0 skips; a few hundred for the large-file path)
    BENCH_LOG_VERSIONS=300  versions for the `pvc log` timing (0 skips; the target is stated for 1000)
    BENCH_HISTORY_VERSIONS=1000  versions of the JPEG-only project for log/show/tag/diff --stat (0 skips)
    BENCH_PEERS=auto        restic / DVC (bench/.peers-venv) when installed; 0 never; 1 required
    BENCH_FRESHFS=auto      restore and clone targets on a new ext4 file system each run (root only); 0 never; 1 required
    BENCH_SCENARIOS=cli,images,jpeg,bigfile,video,volume,log,history,remote,remote_jpeg   (jpeg: the JPEG-only profile)
    BENCH_TINY=1            the JPEG-only profile with 28-52 px images (for BENCH_ITEMS=100000)
    BENCH_LOST_FRACTION=0.05 share of v1's media blobs lost before `restore --skip-missing`
    BENCH_KEEP=1            keep the work directory under bench/work/
    BENCH_SEED=0
    BENCH_WORK, BENCH_RESULTS  where to work (default bench/work) and write results (bench/results)

Writes bench/results/<date>-<items>.json (every run of every operation) and .md (the tables), and
prints the tables.
"""

from __future__ import annotations

import json
import signal
import sys
import time
import traceback
from pathlib import Path

if __package__ in (None, ""):  # `python bench/run.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import scenarios  # noqa: E402
from bench.remote import remote, remote_jpeg  # noqa: E402
from bench.bench import Bench, Config  # noqa: E402
from bench.data import remove  # noqa: E402
from bench.report import machine_facts, to_json, to_markdown  # noqa: E402

STEPS = {
    "cli": (scenarios.cli_start, lambda c: True),
    "images": (scenarios.images, lambda c: c.items > 0),
    "jpeg": (scenarios.jpeg, lambda c: c.items > 0),
    "bigfile": (scenarios.bigfile, lambda c: c.bigfile_mb > 0),
    "video": (scenarios.video, lambda c: c.videos > 0),
    "volume": (scenarios.volume, lambda c: c.volume_mb > 0),
    "log": (scenarios.log_versions, lambda c: c.log_versions > 0),
    "history": (scenarios.history, lambda c: c.items > 0 and c.history_versions > 1),
    "remote": (remote, lambda c: c.items > 0),
    "remote_jpeg": (remote_jpeg, lambda c: c.items > 0),
}


def main() -> int:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so `finally` removes the work dir
    cfg = Config.from_env()
    b = Bench(cfg)
    b.log(f"work dir {b.work}; pvc commands: {', '.join(sorted(b.pvc_commands))}; "
          f"restic: {b.restic or 'no'}; DVC: {b.dvc or 'no'}")
    b.work.mkdir(parents=True, exist_ok=True)  # (Bench made it for its trial mount)
    failed = False
    try:
        for name in cfg.scenarios:
            step, wanted = STEPS[name]
            if not wanted(cfg):
                continue
            try:
                step(b)
            except Exception:  # a broken scenario is reported; the others still run
                failed = True
                b.log(f"scenario {name} failed:\n{traceback.format_exc()}")
                b.skipped.append(f"{name}: scenario failed ({traceback.format_exc(limit=0).strip()})")
    finally:
        try:
            b.close()  # the fresh file system unmounted before its mount point goes with the work dir
        except Exception as exc:  # noqa: BLE001 - the results are still written; the work dir stays
            b.log(f"the fresh file system could not be unmounted ({exc}); {b.work} is kept")
        else:
            if not cfg.keep:
                remove(b.work)
    runtime = b.elapsed()
    machine = machine_facts(b)
    cfg.results.mkdir(parents=True, exist_ok=True)
    stem = cfg.results / f"{time.strftime('%Y-%m-%d')}-{cfg.items}"
    stem.with_suffix(".json").write_text(json.dumps(to_json(b, machine, runtime), indent=1) + "\n")
    markdown = to_markdown(b, machine, runtime)
    stem.with_suffix(".md").write_text(markdown)
    print(markdown)
    b.log(f"done in {runtime / 60:.1f} min; results in {stem}.json and {stem}.md")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
