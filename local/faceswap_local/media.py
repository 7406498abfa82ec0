"""Demo media made from real photos: a 10-second 720p clip of a real face, encoded with PyAV.

Issue 4 measures the pipeline overhead on a 10 s 720p clip; the packaged video (Megamind.avi) is 720x528,
so the clip is built from a real portrait that drifts and zooms slowly across a 1280x720 frame (a moving
face is what the tracker and the swap do in real footage), with a tone on an AAC audio track.
"""

from __future__ import annotations

import math
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np


def clip_from_still(still: Path, out: Path, *, seconds: float = 10.0, fps: int = 25, width: int = 1280,
                    height: int = 720, audio: bool = True) -> Path:
    """Write an H.264 MP4 of ``still`` moving gently across a width×height frame for ``seconds``."""
    image = cv2.imread(str(still), cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError(f"cannot read {still}")
    background = cv2.GaussianBlur(cv2.resize(image, (width, height)), (0, 0), 25)
    base_h = int(height * 0.8)
    out.parent.mkdir(parents=True, exist_ok=True)
    frames = int(round(seconds * fps))
    with av.open(str(out), "w") as container:
        video = container.add_stream("libx264", rate=fps)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        video.options = {"preset": "veryfast", "crf": "20"}
        sound = None
        if audio:
            sound = container.add_stream("aac", rate=48000)
            sound.layout = "stereo"
        for index in range(frames):
            t = index / fps
            scale = 1.0 + 0.05 * math.sin(2 * math.pi * t / seconds)
            face_h = int(base_h * scale)
            face_w = int(image.shape[1] * face_h / image.shape[0])
            face = cv2.resize(image, (face_w, face_h), interpolation=cv2.INTER_AREA)
            x = int((width - face_w) / 2 + 0.15 * width * math.sin(2 * math.pi * t / seconds))
            y = int((height - face_h) / 2)
            frame = background.copy()
            x0, y0 = max(0, x), max(0, y)
            x1, y1 = min(width, x + face_w), min(height, y + face_h)
            frame[y0:y1, x0:x1] = face[y0 - y:y1 - y, x0 - x:x1 - x]
            for packet in video.encode(av.VideoFrame.from_ndarray(frame, format="bgr24")):
                container.mux(packet)
        for packet in video.encode():
            container.mux(packet)
        if sound is not None:
            rate, chunk = 48000, 1024
            total = int(seconds * rate)
            for start in range(0, total, chunk):
                n = min(chunk, total - start)
                tone = 0.1 * np.sin(2 * np.pi * 440 * (np.arange(start, start + n) / rate))
                samples = np.vstack([tone, tone]).astype(np.float32)
                frame = av.AudioFrame.from_ndarray(samples, format="fltp", layout="stereo")
                frame.sample_rate, frame.pts, frame.time_base = rate, start, Fraction(1, rate)
                for packet in sound.encode(frame):
                    container.mux(packet)
            for packet in sound.encode():
                container.mux(packet)
    return out


def probe(path: Path) -> dict[str, object]:
    """Frame count, fps, duration and audio presence of a video, by decoding it (counts are exact)."""
    with av.open(str(path)) as container:
        vstream = container.streams.video[0]
        fps = float(vstream.average_rate) if vstream.average_rate else 0.0
        has_audio = bool(container.streams.audio)
        frames = sum(1 for _ in container.decode(video=0))
        duration = float(container.duration / av.time_base) if container.duration else frames / fps if fps else 0.0
        width, height = vstream.codec_context.width, vstream.codec_context.height
    return {"frames": frames, "fps": fps, "duration": duration, "audio": has_audio, "width": width, "height": height}
