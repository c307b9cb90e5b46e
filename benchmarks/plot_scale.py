"""Draw benchmarks/scale.py's record as a small PNG: controller CPU per host and wall time by fleet size.

.venv/bin/python benchmarks/plot_scale.py benchmarks/results/2026-12-01-scale.json docs/scale.png
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt


def main(record: Path, image: Path) -> None:
    runs = json.loads(record.read_text())["runs"]
    series: dict[tuple[str, int, str], list[tuple[int, float, float]]] = defaultdict(list)
    for r in runs:
        if not r["problems"]:
            series[(r["contender"], r["forks"], r["phase"])].append(
                (r["hosts"], r["controller_ms_per_host"], r["seconds"])
            )
    fig, (cpu, wall) = plt.subplots(1, 2, figsize=(9, 3.4), dpi=100)
    for (contender, forks, phase), points in sorted(series.items()):
        points.sort()
        sizes = [p[0] for p in points]
        style = "-" if contender == "sshd-setup" else "--"
        label = f"{contender} {phase}, forks {forks}"
        cpu.plot(sizes, [p[1] for p in points], style, marker="o", markersize=3, label=label)
        wall.plot(sizes, [p[2] for p in points], style, marker="o", markersize=3, label=label)
    cpu.set(xlabel="hosts", ylabel="controller CPU per host (ms)", xscale="log", ylim=(0, None))
    wall.set(xlabel="hosts", ylabel="wall time (s)", xscale="log", yscale="log")
    sizes = sorted({r["hosts"] for r in runs})
    for ax in (cpu, wall):
        ax.grid(True, alpha=0.3)
        ax.set_xticks(sizes, [str(n) for n in sizes])
        ax.minorticks_off()
    wall.legend(fontsize=6, loc="upper left")
    fig.suptitle("sshd-setup and pyinfra on light hosts (2 CPUs shared by the controller and all hosts)", fontsize=9)
    fig.tight_layout()
    image.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(image)


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
