"""``faceswap``: submit swaps and look after jobs, against the local stack or a deployed one.

    faceswap faces add alice alice.jpg
    faceswap submit --face alice.jpg --target party.mp4 --wait
    faceswap submit --face alice.jpg --gender female --face bob.png --gender male --target group.jpg --wait
    faceswap status JOB_ID | faceswap list --status FAILED | faceswap cancel JOB_ID

Without ``--stack`` it uses the local stack (``.local-stack/stack.json``, written by ``make up``); with
``--stack NAME`` the deployed CloudFormation stack of that name (AWS credentials from the usual places).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from faceswap_local.client import Pipeline, Target, safe_name, utcnow
from faceswap_local.progress import ProgressDisplay


def _target(args: argparse.Namespace) -> Target:
    if args.stack:
        return Target.deployed(args.stack, args.region)
    return Target.local(args.state_dir)


def _print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, sort_keys=True, default=str))


def cmd_submit(args: argparse.Namespace) -> int:
    pipeline = Pipeline(_target(args))
    faces = [Path(f) for f in args.face]
    genders: list[str | None] = list(args.gender or [])
    if genders and len(genders) != len(faces):
        print("error: give --gender once per --face (or not at all)", file=sys.stderr)
        return 2
    target = Path(args.target)
    for path in [*faces, target]:
        if not path.is_file():
            print(f"error: {path} not found", file=sys.stderr)
            return 2
    genders = genders or [None] * len(faces)
    started = utcnow()
    face_keys = [pipeline.add_face(args.name if args.name and i == 0 else path.stem, path)
                 for i, path in enumerate(faces)]
    if len(faces) == 1 and not genders[0] and not args.occlusion:
        face_name = safe_name(args.name or faces[0].stem)
        trigger = pipeline.drop(face_name, target, unique=True)
    else:
        media_key = pipeline.put_file(target, f"media/{started.strftime('%Y%m%d-%H%M%S')}-{target.name}")
        trigger = pipeline.submit_manifest(media_key, list(zip(face_keys, genders)), args.occlusion)
    print(f"uploaded s3://{pipeline.target.bucket}/{trigger}")
    job = pipeline.find_job(trigger, started)
    job_id = str(job["job_id"])
    print(f"job {job_id}")
    if not args.wait:
        return 0
    bar = ProgressDisplay(job_id[:12], enabled=not args.no_progress)
    try:
        record = pipeline.follow(job_id, bar, timeout=args.timeout)
    finally:
        bar.close()
    return _finish(pipeline, record, Path(args.out))


def _finish(pipeline: Pipeline, record: dict[str, Any], out_dir: Path) -> int:
    if record.get("status") != "COMPLETED":
        print(f"job {record.get('job_id')} {record.get('status')}: {json.dumps(record.get('error'), default=str)}",
              file=sys.stderr)
        return 1
    path = pipeline.download_output(record, out_dir)
    print(f"result: {path}")
    if record.get("warning"):
        print(f"warning: {record['warning']}")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    record = Pipeline(_target(args)).get_job(args.job_id)
    if record is None:
        print(f"no job {args.job_id}", file=sys.stderr)
        return 1
    _print_json(record)
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    jobs = Pipeline(_target(args)).list_jobs(args.status, args.limit)
    for job in jobs:
        trigger = (job.get("trigger") or {}).get("key", "")
        print(f"{job.get('job_id')}  {str(job.get('status')):10s} {str(job.get('created_at', ''))[:19]}  "
              f"{job.get('endpoint', '')}  {trigger}")
    if not jobs:
        print("no jobs")
    return 0


def cmd_cancel(args: argparse.Namespace) -> int:
    pipeline = Pipeline(_target(args))
    try:
        marked, at_provider = pipeline.cancel(args.job_id)
    except KeyError:
        print(f"no job {args.job_id}", file=sys.stderr)
        return 1
    if not marked:
        record = pipeline.get_job(args.job_id) or {}
        print(f"job {args.job_id} is {record.get('status')}; nothing to cancel", file=sys.stderr)
        return 1
    where = {True: "cancellation requested at the provider", False: "the provider had already finished",
             None: "it was not at the provider yet"}[at_provider]
    print(f"job {args.job_id} CANCELLED ({where})")
    return 0


def cmd_faces_add(args: argparse.Namespace) -> int:
    image = Path(args.image)
    if not image.is_file():
        print(f"error: {image} not found", file=sys.stderr)
        return 2
    pipeline = Pipeline(_target(args))
    key = pipeline.add_face(args.name, image)
    print(f"registered s3://{pipeline.target.bucket}/{key}; drop files into inbox/{safe_name(args.name)}/")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="faceswap", description=__doc__.split("\n")[0])
    parser.add_argument("--stack", help="deployed CloudFormation stack name (default: the local stack)")
    parser.add_argument("--region", help="AWS region of --stack")
    parser.add_argument("--state-dir", type=Path, default=None, help="local stack state dir (default .local-stack)")
    sub = parser.add_subparsers(dest="command", required=True)

    submit = sub.add_parser("submit", help="upload a face and a target and start a swap")
    submit.add_argument("--face", action="append", required=True, help="source face image (up to two)")
    submit.add_argument("--gender", action="append", choices=["female", "male"],
                        help="gender of the matching --face (multi-face swap)")
    submit.add_argument("--target", required=True, help="video or image to swap into")
    submit.add_argument("--name", help="face name to register (default: the face file's name)")
    submit.add_argument("--occlusion", action="store_true", help="keep hands in front of the face")
    submit.add_argument("--wait", action="store_true", help="follow the job and download the result")
    submit.add_argument("--out", default="out", help="where --wait puts the result (default ./out)")
    submit.add_argument("--timeout", type=float, default=3600.0)
    submit.add_argument("--no-progress", action="store_true")
    submit.set_defaults(func=cmd_submit)

    status = sub.add_parser("status", help="show a job record")
    status.add_argument("job_id")
    status.set_defaults(func=cmd_status)

    lister = sub.add_parser("list", help="list jobs, newest first")
    lister.add_argument("--status", choices=["PENDING", "SUBMITTED", "STORING", "COMPLETED", "FAILED", "CANCELLED"])
    lister.add_argument("--limit", type=int, default=50)
    lister.set_defaults(func=cmd_list)

    cancel = sub.add_parser("cancel", help="cancel a job (record and provider)")
    cancel.add_argument("job_id")
    cancel.set_defaults(func=cmd_cancel)

    faces = sub.add_parser("faces", help="registered faces")
    faces_sub = faces.add_subparsers(dest="faces_command", required=True)
    add = faces_sub.add_parser("add", help="register faces/<NAME>.<ext>")
    add.add_argument("name")
    add.add_argument("image")
    add.set_defaults(func=cmd_faces_add)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except FileNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except TimeoutError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
