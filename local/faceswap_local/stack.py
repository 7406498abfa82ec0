"""The whole pipeline on one machine: moto, the engine, the webhook's Function URL and Lambda's event sources.

``python -m faceswap_local.stack`` (``make up``) runs it in the foreground until Ctrl-C. The handlers are the
very modules deployed to AWS, invoked in this process with the events AWS would send; only endpoints differ:

    put_object ─> moto S3 ─(notification)─> SQS ─> S3EventRelay ─> SubmitJob ─> engine (queue protocol)
    engine ─(signed webhook)─> FunctionUrlGateway ─> Webhook ─> ResultCopyQueue ─> SqsWorker ─> StoreResult

``LocalStack`` starts the same thing as a child process and is what the demo and the tests use
(``with LocalStack(config) as stack: stack.info.endpoint_url``), so their own process stays untouched.
"""

from __future__ import annotations

import argparse
import atexit
import faulthandler
import logging
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import Any

from faceswap_local import logs
from faceswap_local.config import REPO_ROOT, STATE_FILE, StackConfig, StackInfo
from faceswap_local.engine_proc import EngineProcess, die_with_parent

log = logging.getLogger("local.stack")

S3_EVENT_QUEUE = "faceswap-local-s3-events"
SECRET_NAME = "faceswap/local/fal-key"
TOKEN_SECRET_NAME = "faceswap/local/webhook-token-key"  # the template's WebhookTokenSecret
FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
}


def free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def check_port_free(host: str, port: int, what: str, flag: str, env: str) -> None:
    """Fail at once, naming the knob to turn, when a fixed port is taken (a second stack, another service)."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the servers do: TIME_WAIT is no conflict
        try:
            sock.bind((host, port))
        except OSError as exc:
            raise RuntimeError(f"{what} port {host}:{port} is in use ({exc.strerror}); stop whatever uses it "
                               f"or pick another with {flag} PORT or {env}=PORT (0 = any free port)") from exc


def _wait_listening(host: str, port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex((host, port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on {host}:{port} after {timeout:.0f}s")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class StackRuntime:
    """Every part of the local stack, in this process (the engine as a child). ``start`` then ``stop``."""

    def __init__(self, config: StackConfig) -> None:
        self.config = config
        self.state_dir = config.state_dir.resolve()
        self.info: StackInfo | None = None
        self._parts: list[Any] = []
        self._moto: Any = None
        self._engine: Any = None
        self._stopped = threading.Event()
        self._saved_env: dict[str, str | None] = {}

    # ------------------------------------------------------------------ start
    def start(self) -> StackInfo:
        cfg = self.config
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self._refuse_second_stack()
        log_file = self.state_dir / "stack.log"
        logs.setup(log_file, console=cfg.console, verbose=cfg.verbose)
        logs.set_component("stack")
        started = time.time()
        host = cfg.host
        for name, what, flag, env in (("moto_port", "moto", "--moto-port", "FACESWAP_LOCAL_MOTO_PORT"),
                                      ("engine_port", "engine", "--engine-port", "FACESWAP_LOCAL_ENGINE_PORT"),
                                      ("gateway_port", "webhook", "--webhook-port", "FACESWAP_LOCAL_WEBHOOK_PORT")):
            if getattr(cfg, name):
                check_port_free(host, getattr(cfg, name), what, flag, env)
        ports = {name: (getattr(cfg, name) or free_port(host)) for name in ("moto_port", "engine_port", "gateway_port")}

        self._set_env({**FAKE_CREDENTIALS, "AWS_DEFAULT_REGION": cfg.region, "AWS_REGION": cfg.region,
                       "POWERTOOLS_TRACE_DISABLED": "true"})
        for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL"):
            self._set_env({name: None})

        key = f"local-{secrets.token_hex(4)}:{secrets.token_hex(16)}"
        self._engine = EngineProcess(host, ports["engine_port"], self.state_dir / "engine", key,
                                     cfg.engine_workers, cfg.engine_weights)
        self._engine.launch()  # loads its models while moto starts

        endpoint = self._start_moto(host, ports["moto_port"])
        resources = self._create_resources(endpoint)
        secret_arn = self._create_secret(endpoint, SECRET_NAME, key)
        # As in AWS: webhook URLs carry a per-job token keyed by this secret (template: WebhookTokenSecret).
        token_secret_arn = self._create_secret(endpoint, TOKEN_SECRET_NAME, secrets.token_hex(24))

        from faceswap_local.gateway import FunctionUrlGateway

        gateway = FunctionUrlGateway(None, host, ports["gateway_port"], cfg.region)
        webhook_url = f"http://{host}:{gateway.port}/"
        engine_url = self._engine.url
        jwks_url = f"{engine_url}/.well-known/jwks.json"
        functions = self._load_functions(
            parameters={
                "ProviderBaseUrl": engine_url,
                "FalKeySecretArn": secret_arn,
                "JwksUrl": jwks_url,
                "AllowedResultHosts": f"{host}:{self._engine.port}",
                "EndpointUrl": endpoint,
                "LogLevel": "INFO",
            },
            local={**resources.env(), "WEBHOOK_URL": webhook_url, "AWS_ENDPOINT_URL": endpoint,
                   "WEBHOOK_TOKEN_SECRET_ARN": token_secret_arn,
                   "AWS_REGION": cfg.region, "AWS_DEFAULT_REGION": cfg.region, **FAKE_CREDENTIALS},
        )
        gateway.function = functions.get("webhook")
        gateway.start()
        self._parts.append(gateway)

        self._engine.wait_ready(cfg.engine_start_timeout)
        log.info("engine serving on %s", engine_url)
        self._start_pollers(endpoint, resources, functions)

        self.info = StackInfo(
            pid=os.getpid(), region=cfg.region, endpoint_url=endpoint, engine_url=engine_url, webhook_url=webhook_url,
            bucket=resources.bucket, jobs_table=resources.jobs_table, idempotency_table=resources.idempotency_table,
            result_copy_queue_url=resources.result_copy_queue_url, result_copy_dlq_url=resources.result_copy_dlq_url,
            submit_failure_queue_url=resources.submit_failure_queue_url,
            s3_event_queue_url=resources.s3_event_queue_url or "", fal_key_secret_arn=secret_arn, jwks_url=jwks_url,
            log_file=str(log_file), started_at=started, functions=sorted(functions),
        )
        self.info.save(self.state_dir)
        log.info("ready in %.1fs: bucket %s on %s (stack.json in %s)", time.time() - started, resources.bucket,
                 endpoint, self.state_dir)
        return self.info

    def _refuse_second_stack(self) -> None:
        path = self.state_dir / STATE_FILE
        if path.is_file():
            try:
                other = StackInfo.model_validate_json(path.read_text())
            except ValueError:
                other = None
            if other and other.pid != os.getpid() and _pid_alive(other.pid):
                raise RuntimeError(f"a local stack (pid {other.pid}) already uses {self.state_dir}; stop it first")
            path.unlink()

    def _set_env(self, values: dict[str, str | None]) -> None:
        for name, value in values.items():
            self._saved_env.setdefault(name, os.environ.get(name))
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value

    def _start_moto(self, host: str, port: int) -> str:
        from moto.server import ThreadedMotoServer

        with logs.component("moto"):
            self._moto = ThreadedMotoServer(ip_address=host, port=port, verbose=True)
            self._moto.start()
        _wait_listening(host, port)
        endpoint = f"http://{host}:{port}"
        log.info("moto server on %s", endpoint)
        return endpoint

    def _session(self) -> Any:
        import boto3

        return boto3.session.Session(region_name=self.config.region)

    def _create_resources(self, endpoint: str) -> Any:
        from faceswap_local.template_resources import create_stack_resources

        resources = create_stack_resources(self._session(), endpoint_url=endpoint, s3_event_queue=S3_EVENT_QUEUE)
        log.info("created from template.yaml: bucket %s, tables %s and %s, queues %s", resources.bucket,
                 resources.jobs_table, resources.idempotency_table,
                 ", ".join(url.rsplit("/", 1)[-1] for url in (resources.result_copy_queue_url,
                           resources.result_copy_dlq_url, resources.submit_failure_queue_url)))
        return resources

    def _create_secret(self, endpoint: str, name: str, value: str) -> str:
        client = self._session().client("secretsmanager", endpoint_url=endpoint)
        arn = str(client.create_secret(Name=name, SecretString=value)["ARN"])
        log.info("secret %s stored in Secrets Manager: %s", name, arn)
        return arn

    def _load_functions(self, parameters: dict[str, str], local: dict[str, str]) -> dict[str, Any]:
        from faceswap_local.lambda_host import FUNCTIONS, function_environment, load_functions
        from faceswap_local.template_resources import load_template

        template = load_template(REPO_ROOT / "template.yaml")
        env: dict[str, str] = {}
        for logical_id in FUNCTIONS:  # one process hosts them all: the union of their environments
            env.update(function_environment(template, logical_id, parameters, local))
        return load_functions(REPO_ROOT, template, env)

    def _start_pollers(self, endpoint: str, resources: Any, functions: dict[str, Any]) -> None:
        from faceswap_local.pollers import S3EventRelay, ScheduleTimer, SqsWorker

        sqs = self._session().client("sqs", endpoint_url=endpoint)
        relay = S3EventRelay(sqs, resources.s3_event_queue_url, functions.get("submit_job"),
                             resources.submit_failure_queue_url)
        worker = SqsWorker(self._session().client("sqs", endpoint_url=endpoint), resources.result_copy_queue_url,
                           functions.get("store_result"), self.config.region)
        self._parts += [relay, worker]
        if "reconcile_jobs" in functions:
            self._parts.append(ScheduleTimer(functions["reconcile_jobs"], self.config.reconcile_seconds,
                                             self.config.region))
        for part in self._parts[1:]:
            part.start()

    # ------------------------------------------------------------------ stop
    def stop(self) -> None:
        if self._stopped.is_set():
            return
        self._stopped.set()
        logs.set_component("stack")
        log.info("stopping")
        for part in reversed(self._parts):
            try:
                part.stop()
            except Exception as exc:  # stop everything else regardless
                log.warning("stopping %s: %s", type(part).__name__, exc)
        for part in self._parts:
            if hasattr(part, "join"):
                part.join(5)
        if self._engine is not None:
            self._engine.stop()
        if self._moto is not None:
            try:
                self._moto.stop()
            except Exception as exc:
                log.warning("stopping moto: %s", exc)
        state = self.state_dir / STATE_FILE
        if state.is_file() and self.info and StackInfo.model_validate_json(state.read_text()).pid == os.getpid():
            state.unlink()
        log.info("stopped")
        for name, value in self._saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


class LocalStack:
    """The local stack in a child process, as a context manager: ``with LocalStack() as stack: stack.info``."""

    def __init__(self, config: StackConfig | None = None, *, start_timeout: float = 180.0) -> None:
        self.config = config or StackConfig()
        self.start_timeout = start_timeout
        self.proc: subprocess.Popen[bytes] | None = None
        self.info: StackInfo | None = None

    @property
    def state_dir(self) -> Path:
        return self.config.state_dir.resolve()

    def command(self) -> list[str]:
        cfg = self.config
        cmd = [sys.executable, "-m", "faceswap_local.stack", "--host", cfg.host, "--moto-port", str(cfg.moto_port),
               "--engine-port", str(cfg.engine_port), "--webhook-port", str(cfg.gateway_port),
               "--state-dir", str(self.state_dir), "--reconcile-seconds", str(cfg.reconcile_seconds),
               "--engine-workers", str(cfg.engine_workers)]
        if cfg.engine_weights:
            cmd += ["--weights", str(cfg.engine_weights)]
        if not cfg.console:
            cmd.append("--quiet")
        if cfg.verbose:
            cmd.append("--verbose")
        return cmd

    def start(self) -> StackInfo:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        state = self.state_dir / STATE_FILE
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            [str(REPO_ROOT / "local"), str(REPO_ROOT / "layers" / "common"), str(REPO_ROOT / "engine"),
             env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
        out = None if self.config.console else subprocess.DEVNULL
        self.proc = subprocess.Popen(self.command(), env=env, stdout=out, stderr=out, cwd=REPO_ROOT,
                                     preexec_fn=die_with_parent)
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"local stack exited with {self.proc.returncode} while starting:\n{self.log_tail()}")
            if state.is_file():
                try:
                    info = StackInfo.model_validate_json(state.read_text())
                except ValueError:
                    info = None
                if info and info.pid == self.proc.pid:
                    self.info = info
                    return info
            time.sleep(0.2)
        self.stop()
        raise TimeoutError(f"local stack not ready within {self.start_timeout:.0f}s:\n{self.log_tail()}")

    def log_tail(self, lines: int = 40) -> str:
        path = self.state_dir / "stack.log"
        if not path.is_file():
            return "(no log)"
        kept = [line for line in path.read_text(errors="replace").splitlines() if " moto " not in line[:30]]
        return "\n".join(kept[-lines:])

    def stop(self, timeout: float = 30.0) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        return self.proc.returncode

    def __enter__(self) -> LocalStack:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


def _parse_args(argv: list[str] | None) -> StackConfig:
    defaults = StackConfig()
    parser = argparse.ArgumentParser(prog="python -m faceswap_local.stack",
                                     description="Run the faceswap pipeline locally (moto + engine + handlers).")
    parser.add_argument("--host", default=defaults.host)
    parser.add_argument("--moto-port", type=int, default=defaults.moto_port, help="0 = any free port")
    parser.add_argument("--engine-port", type=int, default=defaults.engine_port)
    parser.add_argument("--webhook-port", type=int, default=defaults.gateway_port)
    parser.add_argument("--state-dir", type=Path, default=defaults.state_dir)
    parser.add_argument("--reconcile-seconds", type=float, default=defaults.reconcile_seconds)
    parser.add_argument("--engine-workers", type=int, default=defaults.engine_workers)
    parser.add_argument("--weights", type=Path, default=None, help="folder of insightface-compatible ONNX files")
    parser.add_argument("--quiet", action="store_true", help="log to stack.log only")
    parser.add_argument("--verbose", action="store_true", help="also show moto's request lines on the console")
    args = parser.parse_args(argv)
    return StackConfig(host=args.host, moto_port=args.moto_port, engine_port=args.engine_port,
                       gateway_port=args.webhook_port, state_dir=args.state_dir,
                       reconcile_seconds=args.reconcile_seconds, engine_workers=args.engine_workers,
                       engine_weights=args.weights, console=not args.quiet, verbose=args.verbose)


def _banner(info: StackInfo) -> str:
    ep = info.endpoint_url
    return "\n".join([
        "",
        "faceswap local stack is up (Ctrl-C stops it)",
        f"  AWS endpoint (moto)  {ep}   region {info.region}",
        f"  bucket               {info.bucket}",
        f"  jobs table           {info.jobs_table}",
        f"  engine               {info.engine_url}",
        f"  webhook URL          {info.webhook_url}",
        f"  log                  {info.log_file}",
        "  try:",
        f"    aws --endpoint-url {ep} s3 cp face.jpg s3://{info.bucket}/faces/me.jpg",
        f"    aws --endpoint-url {ep} s3 cp clip.mp4 s3://{info.bucket}/inbox/me/clip.mp4",
        "    .venv/bin/faceswap submit --face face.jpg --target clip.mp4 --wait   (and: status, list, cancel)",
        "",
    ])


def main(argv: list[str] | None = None) -> int:
    config = _parse_args(argv)
    runtime = StackRuntime(config)
    done = threading.Event()

    def on_signal(signum: int, _frame: Any) -> None:
        done.set()

    faulthandler.register(signal.SIGUSR1, file=sys.__stderr__, all_threads=True)  # kill -USR1: thread dump
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    atexit.register(runtime.stop)
    try:
        info = runtime.start()
    except (RuntimeError, TimeoutError) as exc:  # a clear reason (port taken, engine failed): one line
        logging.getLogger("local.stack").error("could not start: %s", exc)
        runtime.stop()
        return 1
    except Exception as exc:
        logging.getLogger("local.stack").exception("could not start: %s", exc)
        runtime.stop()
        return 1
    log.info(_banner(info))
    while not done.wait(0.5):
        pass
    runtime.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
