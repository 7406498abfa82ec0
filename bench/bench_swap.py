"""Swap-only cost per frame (engine-core): process_frame on moving synthetic 720p/1080p frames with one real
face (~450 px / ~650 px), and on the group photo. Prints ms/frame; decode/encode are measured by bench_engine.

Run: .venv/bin/python bench/bench_swap.py [--frames 100] [--occlusion] [--threads 1]
"cpu" is the process CPU time per frame: on a shared machine it is the steadier figure (wall time includes
waiting for the cores); with --threads 1 the two agree on an idle machine.
"""

from __future__ import annotations

import argparse
import time

import cv2
import numpy as np

from faceswap_engine import sample_media
from faceswap_engine.swap import FaceSwapSession, SourceFace, SwapOptions


def moving_frames(width: int, height: int, face_px: int, count: int) -> list[np.ndarray]:
    """A portrait scaled so the face is ~face_px, drifting and rotating slightly on a textured background."""
    photo = cv2.imread(str(sample_media.male_portrait()))
    side = int(face_px / 0.4)  # the face is ~40% of that portrait
    photo = cv2.resize(photo, (side, side), interpolation=cv2.INTER_CUBIC)
    rng = np.random.default_rng(0)
    background = cv2.GaussianBlur(rng.integers(0, 255, (height, width, 3), np.uint8), (0, 0), 8)
    frames = []
    for i in range(count):
        t = i / 25.0
        m = cv2.getRotationMatrix2D((side / 2, side / 2), 6 * np.sin(2 * np.pi * t / 3), 1.0)
        m[0, 2] += (width - side) / 2 + 40 * np.sin(2 * np.pi * t / 4)
        m[1, 2] += (height - side) / 2 + 10 * np.cos(2 * np.pi * t / 5)
        frames.append(cv2.warpAffine(photo, m, (width, height), dst=background.copy(), borderMode=cv2.BORDER_TRANSPARENT))
    return frames


def bench(label: str, session: FaceSwapSession, frames: list[np.ndarray]) -> None:
    session.process_frame(frames[0])  # warm-up
    t0, c0 = time.perf_counter(), time.process_time()
    for frame in frames:
        session.process_frame(frame)
    ms = (time.perf_counter() - t0) / len(frames) * 1000
    cpu = (time.process_time() - c0) / len(frames) * 1000
    s = session.stats
    print(f"{label:<28} wall {ms:6.1f} ms/frame ({1000 / ms:5.1f} fps)  cpu {cpu:6.1f} ms/frame  "
          f"faces_swapped={s.faces_swapped} tracks={s.tracks}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--frames", type=int, default=100)
    parser.add_argument("--occlusion", action="store_true")
    parser.add_argument("--threads", type=int, default=None, help="cv2.setNumThreads (default: leave as set)")
    args = parser.parse_args()
    if args.threads is not None:
        cv2.setNumThreads(args.threads)
    source = SourceFace(cv2.imread(str(sample_media.astronaut())))
    options = SwapOptions(occlusion=args.occlusion)
    for w, h, face in ((1280, 720, 400), (1280, 720, 550), (1920, 1080, 650)):
        bench(f"{w}x{h} face~{face}px", FaceSwapSession([source], options), moving_frames(w, h, face, args.frames))
    group = cv2.imread(str(sample_media.group_photo()))
    bench("group photo 1280x886 (6)", FaceSwapSession([source], options), [group] * args.frames)
    multi = [SourceFace(source.image_bgr, "female"), SourceFace(cv2.imread(str(sample_media.male_portrait())), "male")]
    bench("group photo multi", FaceSwapSession(multi, options), [group] * args.frames)


if __name__ == "__main__":
    main()
