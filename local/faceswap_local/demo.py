"""``make demo``: a real face swap through the real pipeline, on this machine, as a user would do it.

Starts the local stack (or uses one already running from ``make up``), registers a face, drops videos into
``inbox/<face>/`` with boto3, follows each job (job record + the engine's progress), downloads the results to
``out/`` and prints the job records and timings; then a manifest job with two faces by gender on a group
photo. Exit status 1 if any job did not complete.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from faceswap_local.client import Pipeline, Target
from faceswap_local.progress import ProgressDisplay
from faceswap_local.config import REPO_ROOT, StackConfig, StackInfo
from faceswap_local.stack import LocalStack


@dataclass
class JobReport:
    """One job as the user saw it: record, result file and timings."""

    label: str
    trigger_key: str
    record: dict[str, Any]
    result: Path | None
    upload_seconds: float
    wall_seconds: float  # object created → job COMPLETED (or terminal)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.record.get("status") == "COMPLETED" and self.result is not None

    @property
    def processing_seconds(self) -> float | None:
        ms = self.record.get("processing_time_ms")
        return float(ms) / 1000 if ms is not None else None

    @property
    def overhead_percent(self) -> float | None:
        proc = self.processing_seconds
        return 100.0 * (self.wall_seconds - proc) / proc if proc else None

    def summary(self) -> str:
        lines = [f"== {self.label}: {self.record.get('status')}  job {self.record.get('job_id')}"]
        if self.result:
            lines.append(f"   result        {self.result}")
        lines.append(f"   trigger       s3://…/{self.trigger_key}")
        lines.append(f"   upload        {self.upload_seconds:.2f} s")
        lines.append(f"   wall          {self.wall_seconds:.2f} s  (object created → {self.record.get('status')})")
        if self.processing_seconds is not None:
            lines.append(f"   engine        {self.processing_seconds:.2f} s  (processing_time_ms)")
            target = " (target ≤ 15 % for video)" if str(self.record.get("endpoint", "")).startswith("faceswapvideo") else ""
            lines.append(f"   overhead      {self.wall_seconds - self.processing_seconds:.2f} s = "
                         f"{self.overhead_percent:.1f} % of engine time{target}")
        for name, value in self.extra.items():
            lines.append(f"   {name:<13} {value}")
        if self.record.get("warning"):
            lines.append(f"   warning       {self.record['warning']}")
        if self.record.get("error"):
            lines.append(f"   error         {json.dumps(self.record['error'], default=str)}")
        return "\n".join(lines)


def run_job(pipeline: Pipeline, label: str, upload: Any, out_dir: Path, progress: bool = True,
            timeout: float = 1800.0) -> JobReport:
    """``upload()`` puts the trigger object and returns its key; then find, follow and download the job."""
    from faceswap_local.client import utcnow

    started_at = utcnow()
    t0 = time.monotonic()
    key = upload()
    t_created = time.monotonic()
    job = pipeline.find_job(key, started_at)
    display = ProgressDisplay(label, progress)
    try:
        record = pipeline.follow(str(job["job_id"]), display, interval=0.2, timeout=timeout)
    finally:
        display.close()
    wall = time.monotonic() - t_created
    result = pipeline.download_output(record, out_dir) if record.get("status") == "COMPLETED" else None
    return JobReport(label, key, record, result, t_created - t0, wall)


def _video_checks(source: Path, result: Path) -> dict[str, str]:
    from faceswap_local.media import probe

    before, after = probe(source), probe(result)
    return {"input": f"{before['width']}x{before['height']} {before['frames']} frames {before['fps']:.3f} fps "
                     f"{before['duration']:.2f} s audio={before['audio']}",
            "output": f"{after['width']}x{after['height']} {after['frames']} frames {after['fps']:.3f} fps "
                      f"{after['duration']:.2f} s audio={after['audio']}"}


def run_demo(pipeline: Pipeline, out_dir: Path, work_dir: Path, *, progress: bool = True,
             only_clip: bool = False) -> list[JobReport]:
    """The demo's jobs, in order; each report says whether it completed."""
    from faceswap_engine import sample_media

    from faceswap_local.media import clip_from_still

    reports: list[JobReport] = []
    bucket = pipeline.target.bucket
    if not only_clip:
        face = sample_media.male_portrait()
        pipeline.s3.upload_file(str(face), bucket, "faces/ben.jpg", ExtraArgs={"ContentType": "image/jpeg"})
        print(f"registered face s3://{bucket}/faces/ben.jpg  ({face})")
        video = sample_media.megamind_video()
        report = run_job(pipeline, "Megamind.avi", lambda: _put(pipeline, video, "inbox/ben/Megamind.avi"),
                         out_dir, progress)
        if report.result:
            report.extra.update(_video_checks(video, report.result))
        reports.append(report)
        print(report.summary())

    clip = work_dir / "grace_720p_10s.mp4"
    if not clip.is_file():
        print("making a 10 s 1280x720 clip from a real photo (grace_hopper.jpg) …")
        clip_from_still(sample_media.grace_hopper(), clip)
    face = sample_media.astronaut()
    pipeline.s3.upload_file(str(face), bucket, "faces/eileen.png", ExtraArgs={"ContentType": "image/png"})
    print(f"registered face s3://{bucket}/faces/eileen.png  ({face})")
    report = run_job(pipeline, "720p 10 s clip", lambda: _put(pipeline, clip, "inbox/eileen/grace_720p_10s.mp4"),
                     out_dir, progress)
    if report.result:
        report.extra.update(_video_checks(clip, report.result))
    reports.append(report)
    print(report.summary())

    if not only_clip:
        group = sample_media.group_photo()
        _put(pipeline, group, "media/group.jpg")
        _put(pipeline, sample_media.astronaut(), "faces/eileen.png")
        _put(pipeline, sample_media.male_portrait(), "faces/ben.jpg")
        faces = [("faces/eileen.png", "female"), ("faces/ben.jpg", "male")]
        report = run_job(pipeline, "group photo (2 faces by gender)",
                         lambda: pipeline.submit_manifest("media/group.jpg", faces, name="group-by-gender"),
                         out_dir, progress)
        reports.append(report)
        print(report.summary())
    return reports


def _put(pipeline: Pipeline, path: Path, key: str) -> str:
    from faceswap_common.media_types import content_type_for

    pipeline.s3.upload_file(str(path), pipeline.target.bucket, key,
                            ExtraArgs={"ContentType": content_type_for(path.name) or "application/octet-stream"})
    return key


def _running_stack(state_dir: Path) -> StackInfo | None:
    try:
        info = StackInfo.load(state_dir)
    except FileNotFoundError:
        return None
    from faceswap_local.stack import _pid_alive

    return info if _pid_alive(info.pid) else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m faceswap_local.demo", description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "out")
    parser.add_argument("--state-dir", type=Path, default=StackConfig().state_dir)
    parser.add_argument("--only-clip", action="store_true", help="only the 10 s 720p clip (the overhead figure)")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    state_dir = args.state_dir.resolve()
    work_dir = state_dir / "media"
    work_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    info = _running_stack(state_dir)
    stack = None
    if info:
        print(f"using the local stack already running (pid {info.pid}, log {info.log_file})")
    else:
        print(f"starting the local stack (log: {state_dir / 'stack.log'}) …")
        stack = LocalStack(StackConfig(state_dir=state_dir, console=False))
        info = stack.start()
        print(f"stack ready in {time.monotonic() - t0:.1f} s: moto {info.endpoint_url}, engine {info.engine_url}, "
              f"webhook {info.webhook_url}")
    try:
        reports = run_demo(Pipeline(Target.local(state_dir)), args.out.resolve(), work_dir,
                           progress=not args.no_progress, only_clip=args.only_clip)
    except Exception as exc:
        print(f"demo failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        if stack:
            print(stack.log_tail(), file=sys.stderr)
        return 1
    finally:
        if stack:
            stack.stop()
    print()
    for report in reports:
        print(f"{'OK  ' if report.ok else 'FAIL'} {report.label}: {report.record.get('status')} → {report.result}")
        print("     job record: " + json.dumps(report.record, default=str, sort_keys=True))
    print(f"total {time.monotonic() - t0:.1f} s")
    return 0 if reports and all(r.ok for r in reports) else 1


if __name__ == "__main__":
    sys.exit(main())
