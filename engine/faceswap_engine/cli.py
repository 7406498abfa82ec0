"""``faceswap-engine``: swap a face locally (``swap``) or serve fal's queue protocol (``serve``).

Exit codes: 0 done, 2 bad arguments, 3 an input problem (the message names it), 1 anything else.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from .errors import EngineError


def _read_source(value: str, field: str, max_bytes: int) -> bytes:
    """A local path, an http(s) URL or a data URI."""
    from .fetch import FetchLimits, fetch

    if value.startswith(("http://", "https://", "data:")):
        fetched = fetch(value, [field], FetchLimits(max_bytes=max_bytes))
        assert fetched.data is not None
        return fetched.data
    path = Path(value)
    if not path.is_file():
        raise EngineError(f"file not found: {value}", [field], code="file_not_found")
    if path.stat().st_size > max_bytes:
        from .errors import MediaTooLarge

        raise MediaTooLarge(f"{value} is larger than {max_bytes // (1024 * 1024)} MiB", [field])
    return path.read_bytes()


def _target_path(value: str, tmp: Path) -> Path:
    if value.startswith(("http://", "https://", "data:")):
        from .fetch import FetchLimits, fetch

        dest = tmp / "target"
        fetch(value, ["target"], FetchLimits(max_bytes=2 * 1024**3, total_timeout_s=3600), dest=dest)
        return dest
    path = Path(value)
    if not path.is_file():
        raise EngineError(f"file not found: {value}", ["target"], code="file_not_found")
    return path


def cmd_swap(args: argparse.Namespace) -> int:
    from . import media
    from .server.processor import EngineSwapper, Source

    if args.face2 and not args.gender2:
        raise SystemExit("--face2 needs --gender2 (and --gender for the first face)")
    if args.gender2 and not args.gender:
        raise SystemExit("--gender2 needs --gender for the first face")
    started = time.perf_counter()
    weights = args.weights or (Path(os.environ["ENGINE_WEIGHTS_DIR"]) if os.environ.get("ENGINE_WEIGHTS_DIR") else None)
    swapper = EngineSwapper(weights)
    field1 = "source_face_url_1" if args.gender else "source_face_url"
    sources = [Source(media.decode_image(_read_source(args.face, field1, 50 * 1024**2), [field1]).bgr, args.gender, field1)]
    if args.face2:
        img = media.decode_image(_read_source(args.face2, "source_face_url_2", 50 * 1024**2), ["source_face_url_2"])
        sources.append(Source(img.bgr, args.gender2, "source_face_url_2"))
    out = Path(args.output)
    with tempfile.TemporaryDirectory(prefix="faceswap-") as tmp:
        target = _target_path(args.target, Path(tmp))
        with target.open("rb") as fh:
            head = fh.read(512)
        if media.sniff_image(head):
            image = media.decode_image(target.read_bytes(), ["target"])
            result, warnings = swapper.swap_image(sources, image.bgr, args.occlusion)
            suffix = out.suffix.lower()
            fmt = "jpeg" if suffix in (".jpg", ".jpeg") else "png" if suffix == ".png" else media.output_format_for(image.format)
            out.write_bytes(media.encode_image(result, fmt))
        else:
            warnings = _swap_video(swapper, sources, target, out, args)
    for warning in warnings:
        print(f"warning: {warning}", file=sys.stderr)
    print(f"{out} ({out.stat().st_size} bytes) in {time.perf_counter() - started:.1f} s")
    return 0


def _swap_video(swapper, sources, target: Path, out: Path, args: argparse.Namespace) -> list[str]:  # noqa: ANN001
    from tqdm import tqdm

    from . import media
    from .video import transcode

    with target.open("rb") as fh:
        media.require_video_format(fh.read(512), ["target"])
    swap = swapper.video(sources, args.occlusion)
    bar = tqdm(total=0, unit="frame", desc="swapping", disable=args.quiet, dynamic_ncols=True)

    def progress(done: int, total: int) -> None:
        if bar.total != total:
            bar.total = total
        bar.update(done - bar.n)

    try:
        result = transcode(target, out, swap, progress=progress)
    finally:
        bar.close()
    return [*result.warnings, *swap.warnings()]


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from .server import ServerConfig, create_app

    keys = list(args.key or [])
    if not keys and os.environ.get("ENGINE_KEY"):
        keys = [os.environ["ENGINE_KEY"]]
    allowed = [h.strip() for value in (args.allowed_fetch or []) for h in value.split(",") if h.strip()]
    weights = args.weights or (Path(os.environ["ENGINE_WEIGHTS_DIR"]) if os.environ.get("ENGINE_WEIGHTS_DIR") else None)
    config = ServerConfig(
        data_dir=args.data_dir, host=args.host, port=args.port, keys=keys, public_url=args.public_url,
        app_id=args.app_id, workers=args.workers, allowed_fetch_hosts=allowed, weights_dir=weights,
    )
    app = create_app(config)
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level.lower(), access_log=args.access_log)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="faceswap-engine", description="Offline CPU face swap.")
    sub = parser.add_subparsers(dest="command", required=True)

    swap = sub.add_parser("swap", help="swap a face into an image or a video")
    swap.add_argument("--face", required=True, help="source face image (path, http(s) URL or data URI)")
    swap.add_argument("--target", required=True, help="target image or video (path or URL)")
    swap.add_argument("-o", "--output", required=True, help="output file (.mp4 for videos; .png/.jpg for images)")
    swap.add_argument("--occlusion", action="store_true", help="keep hands in front of the face")
    swap.add_argument("--gender", choices=["female", "male"], help="multi mode: gender of faces to give --face")
    swap.add_argument("--face2", help="multi mode: second source face")
    swap.add_argument("--gender2", choices=["female", "male"], help="multi mode: gender for --face2")
    swap.add_argument("--weights", type=Path, help="folder of insightface-compatible ONNX models (ENGINE_WEIGHTS_DIR)")
    swap.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    swap.set_defaults(func=cmd_swap)

    serve = sub.add_parser("serve", help="serve fal's queue protocol over HTTP")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8300)
    serve.add_argument("--data-dir", type=Path, default=Path(os.environ.get("ENGINE_DATA_DIR", ".engine-data")),
                       help="results, work files and the webhook signing key")
    serve.add_argument("--key", action="append", help="accepted key 'key_id:secret' (repeatable; env ENGINE_KEY)")
    serve.add_argument("--public-url", help="base URL clients reach this server at (for result URLs)")
    serve.add_argument("--workers", type=int, default=1, help="requests processed at once")
    serve.add_argument("--allowed-fetch", action="append",
                       help="hosts inputs may be fetched from (comma list, host or host:port, *. wildcards; default any)")
    serve.add_argument("--app-id", default="half-moon-ai/ai-face-swap")
    serve.add_argument("--weights", type=Path, help="folder of insightface-compatible ONNX models")
    serve.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    serve.add_argument("--access-log", action="store_true")
    serve.set_defaults(func=cmd_serve)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=getattr(args, "log_level", "WARNING"), format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        return int(args.func(args))
    except EngineError as exc:
        where = ".".join(exc.loc)
        print(f"error: {exc.code}{f' ({where})' if where else ''}: {exc.message}", file=sys.stderr)
        return 3
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
