"""How a scripted donor-game society scales: time and peak memory by population size.

Each size runs in its own process (so peak memory is that run's alone): N
scripted donors (a mix of reciprocators, image scorers, free riders and
generous donors), random matching, 2 games x 12 rounds per generation, 10
generations, top-half selection with mutation, the full run directory written.

Usage: python benchmarks/donor_scale.py [N ...]   (default: 100 1000 10000)
"""

from __future__ import annotations

import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time


def one(n: int, out: str) -> dict:
    from societas.config import parse_config
    from societas.runners.run import run_experiment

    mix = {"reciprocator": 0.4, "image_scorer": 0.2, "free_rider": 0.3, "generous": 0.1}
    counts = {k: int(n * v) for k, v in mix.items()}
    counts["reciprocator"] += n - sum(counts.values())
    cfg = parse_config({
        "name": f"donor-scale-{n}", "seed": 0, "output_dir": out,
        "environment": {"id": "donor-game", "params": {"num_agents": n, "pairing": "random", "rounds": 12,
                                                        "games": 2}},
        "population": [{"name": k, "policy": f"scripted:{k}", "count": c} for k, c in counts.items()],
        "society": {"kind": "evolution", "generations": 10, "mutation": 0.05},
    })
    t0 = time.perf_counter()
    _, summary = run_experiment(cfg, progress=False)
    wall = time.perf_counter() - t0
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"agents": n, "decisions": summary["decisions"], "wall_s": wall, "peak_mb": peak_mb}


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "--one":
        print(json.dumps(one(int(sys.argv[2]), sys.argv[3])))
        return
    sizes = [int(a) for a in sys.argv[1:]] or [100, 1000, 10000]
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
          "10 generations x 2 games x 12 rounds, random matching, scripted donors")
    print(f"{'agents':>8} {'decisions':>10} {'wall s':>8} {'decisions/s':>12} {'peak MB':>8} {'KB/agent':>9}")
    base = None
    for n in sizes:
        with tempfile.TemporaryDirectory() as out:
            proc = subprocess.run([sys.executable, __file__, "--one", str(n), out], capture_output=True, text=True,
                                  check=True)
        r = json.loads(proc.stdout.strip().splitlines()[-1])
        if base is None:
            base = r
        print(f"{n:>8} {r['decisions']:>10} {r['wall_s']:>8.2f} {r['decisions'] / r['wall_s']:>12,.0f} "
              f"{r['peak_mb']:>8.0f} {1024 * (r['peak_mb'] - base['peak_mb']) / max(1, n - base['agents']):>9.1f}")


if __name__ == "__main__":
    main()
