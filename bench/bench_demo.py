"""Pipeline overhead of the demo's video job: wall time (object created → job COMPLETED) vs the engine's own
processing_time_ms, on a 10-second 1280x720 clip made from a real photo (issue 4: overhead <= 15 %).

Runs the real local stack (moto + engine + the deployed handlers) on free ports in .bench/local-stack.
Usage: python bench/bench_demo.py [--runs 3] [--megamind]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for sub in ("local", "layers/common", "engine"):
    sys.path.insert(0, str(ROOT / sub))

from faceswap_engine import sample_media  # noqa: E402

from faceswap_local.client import Pipeline, Target  # noqa: E402
from faceswap_local.config import StackConfig  # noqa: E402
from faceswap_local.demo import JobReport, _put, run_job  # noqa: E402
from faceswap_local.media import clip_from_still  # noqa: E402
from faceswap_local.stack import LocalStack  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--megamind", action="store_true", help="also time Megamind.avi (720x528, 11 s)")
    args = parser.parse_args()
    work = ROOT / ".bench" / "local-stack"
    work.mkdir(parents=True, exist_ok=True)
    clip = work / "grace_720p_10s.mp4"
    if not clip.is_file():
        clip_from_still(sample_media.grace_hopper(), clip)

    t0 = time.monotonic()
    with LocalStack(StackConfig(state_dir=work, moto_port=0, engine_port=0, gateway_port=0, console=False)) as stack:
        startup = time.monotonic() - t0
        pipeline = Pipeline(Target.local(stack.state_dir))
        _put(pipeline, sample_media.astronaut(), "faces/eileen.png")
        jobs: list[tuple[str, Path]] = [("720p 10 s clip", clip)] * args.runs
        if args.megamind:
            jobs += [("Megamind.avi", sample_media.megamind_video())]
        reports: list[JobReport] = []
        for n, (label, video) in enumerate(jobs):
            key = f"inbox/eileen/run{n}-{video.name}"
            reports.append(run_job(pipeline, label, lambda v=video, k=key: _put(pipeline, v, k), work / "out",
                                   progress=False))
    print(f"local stack start: {startup:.1f} s (moto, resources from template.yaml, engine, handlers)")
    print(f"{'job':<18} {'wall s':>7} {'engine s':>9} {'overhead s':>11} {'overhead %':>11}")
    failed = False
    for r in reports:
        if not r.ok or r.processing_seconds is None:
            print(f"{r.label:<18} {r.record.get('status')}: {r.record.get('error')}")
            failed = True
            continue
        print(f"{r.label:<18} {r.wall_seconds:7.2f} {r.processing_seconds:9.2f} "
              f"{r.wall_seconds - r.processing_seconds:11.2f} {r.overhead_percent:10.1f}%")
    clip_runs = [r.overhead_percent for r in reports if r.label.startswith("720p") and r.overhead_percent is not None]
    if clip_runs:
        median = statistics.median(clip_runs)
        print(f"median overhead, 10 s 720p clip: {median:.1f} % (target <= 15 %): {'OK' if median <= 15 else 'OVER'}")
    print("clone-to-result and test-suite timings: measured by the lead (make demo / make test on a fresh clone)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
