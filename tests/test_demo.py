"""`make demo` (scripts/demo.sh) runs to its end: the README promises it on a fresh machine, and the script is shell
run with `set -euo pipefail`, so any step that exits non-zero (a pipe closed early included) stops it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_demo_runs_to_its_end(tmp_path):
    env = os.environ | {"PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
                        "PVC_DEMO_DIR": str(tmp_path / "demo")}
    r = subprocess.run(["bash", str(ROOT / "scripts" / "demo.sh")], env=env, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "Demo finished" in r.stdout and r.stdout.count("  identical") == 2
    assert (tmp_path / "demo" / "clone" / ".pvc").is_dir() and (tmp_path / "demo" / "ls-v1.json").stat().st_size > 0
