"""Engine benchmark: decode+encode floor vs end-to-end swap, at 720p and 1080p, with peak memory — in one run.

    .venv/bin/python bench/bench_engine.py [--seconds 10] [--keep DIR]

Clips are generated here with PyAV from a real face photo (the male portrait of opencv-doc), moving and rotating,
with an AAC tone, so nothing is downloaded. Targets (issue 3): 720p ≥ 25 fps, 1080p ≥ 12 fps, peak RSS < 1.5 GB.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for sub in ("engine", "layers/common"):
    sys.path.insert(0, str(ROOT / sub))

import cv2  # noqa: E402

from faceswap_engine import sample_media  # noqa: E402
from faceswap_engine.server.testing import make_clip  # noqa: E402
from faceswap_engine.video import transcode  # noqa: E402


def cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


class PeakRss:
    """Samples this process's RSS every 20 ms while a stage runs."""

    def __enter__(self) -> PeakRss:
        self.peak = rss_mb()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, rss_mb())

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--keep", type=Path, help="keep the generated clips and outputs here")
    parser.add_argument("--long", type=float, default=0.0,
                        help="also run a clip of this many seconds at 1080p (swap) to show memory stays flat with length")
    args = parser.parse_args()

    from faceswap_engine.swap import FaceSwapSession, SourceFace

    work = args.keep or Path(tempfile.mkdtemp(prefix="bench-engine-"))
    work.mkdir(parents=True, exist_ok=True)
    still = cv2.imread(str(sample_media.male_portrait()))
    source = SourceFace(cv2.imread(str(sample_media.astronaut())))
    frames = int(round(args.seconds * 25))
    rows = []
    for label, size in (("720p", (1280, 720)), ("1080p", (1920, 1080))):
        clip = work / f"synth_{label}.mp4"
        t0 = time.perf_counter()
        make_clip(clip, frames=frames, fps=25, size=size, container="mp4", still=still)
        gen_s = time.perf_counter() - t0
        c0 = cpu_s()
        with PeakRss() as floor_mem:
            floor = transcode(clip, work / f"floor_{label}.mp4", lambda f: f)
        floor_cpu = (cpu_s() - c0) / floor.frames_out * 1000
        floor_fps = floor.frames_out / (floor.processing_time_ms / 1000)
        session = FaceSwapSession([source])
        c0 = cpu_s()
        with PeakRss() as swap_mem:
            swapped = transcode(clip, work / f"swap_{label}.mp4", session.process_frame)
        swap_cpu = (cpu_s() - c0) / swapped.frames_out * 1000
        swap_fps = swapped.frames_out / (swapped.processing_time_ms / 1000)
        stats = session.stats
        rows.append((label, size, swapped.frames_out, floor_fps, swap_fps, swap_fps / floor_fps,
                     stats.frames_with_face, floor_mem.peak, swap_mem.peak, gen_s, floor_cpu, swap_cpu))
        del session

    if args.long:
        clip = work / "synth_long_1080p.mp4"
        make_clip(clip, frames=int(args.long * 25), fps=25, size=(1920, 1080), container="mp4", still=still)
        session = FaceSwapSession([source])
        with PeakRss() as long_mem:
            long_run = transcode(clip, work / "swap_long_1080p.mp4", session.process_frame)
        rows_long = (args.long, long_run.frames_out, long_mem.peak,
                     long_run.frames_out / (long_run.processing_time_ms / 1000))
    peak_total = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\nengine benchmark: {args.seconds:g} s clips at 25 fps, real face (moving/rotating), AAC audio; "
          f"2 cores; libx264 veryfast crf 20")
    header = f"{'clip':<6} {'size':>10} {'frames':>6} {'floor fps':>10} {'swap fps':>9} {'ratio':>6} " \
             f"{'w/ face':>7} {'floor MB':>9} {'swap MB':>8} {'target':>12}"
    print(header)
    print("-" * len(header))
    targets = {"720p": 25.0, "1080p": 12.0}
    ok = True
    for label, size, n, ffps, sfps, ratio, with_face, fmem, smem, *_ in rows:
        met = sfps >= targets[label]
        ok &= met
        print(f"{label:<6} {size[0]:>5}x{size[1]:<4} {n:>6} {ffps:>10.1f} {sfps:>9.1f} {ratio:>6.2f} "
              f"{with_face:>7} {fmem:>9.0f} {smem:>8.0f} {'>= %g fps %s' % (targets[label], 'ok' if met else 'MISSED'):>12}")
    load = os.getloadavg()[0]
    print(f"\nCPU time per frame (load-independent; 2 cores bound fps ≈ 2000 / ms), load average now {load:.1f}:")
    for label, *_rest, floor_cpu, swap_cpu in rows:
        print(f"  {label:<6} floor {floor_cpu:6.1f} ms/frame (≤ {2000 / floor_cpu:5.1f} fps)   "
              f"swap {swap_cpu:6.1f} ms/frame (≤ {2000 / swap_cpu:5.1f} fps)")
    print(f"peak RSS of the whole run: {peak_total:.0f} MB (target < 1536 MB: {'ok' if peak_total < 1536 else 'MISSED'})")
    if args.long:
        secs, n, peak, fps = rows_long
        print(f"long 1080p swap: {secs:g} s, {n} frames, {fps:.1f} fps, peak RSS {peak:.0f} MB "
              f"(10 s clip: {rows[1][8]:.0f} MB) — memory does not grow with length")
    print(f"clips and outputs in {work}")
    return 0 if ok and peak_total < 1536 else 1


if __name__ == "__main__":
    sys.exit(main())
