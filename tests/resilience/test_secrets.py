"""The fal key never reaches a log line, a record, an event or an answer, and it is read through
Powertools parameters (Secrets Manager, cached) once per function, not once per invocation.

The known key is the fault provider's KEY; the provider only accepts requests carrying it, so a job that
gets submitted proves the key really was read from the secret.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
import tally
from aws_lambda_powertools.utilities.parameters import SecretsProvider
from resilience_rig import SECRET_NAME, TOKEN_SECRET, FakeContext, Rig, load_event
from fault_provider import KEY, KEY_SECRET, Fault

from faceswap_common.job_store import JobStatus
from faceswap_common.observability import logger as powertools_logger


class Capture:
    """Every log record of the Powertools logger (DEBUG, rendered by its JSON formatter) and of the root
    logger at INFO (botocore, httpx, urllib3 ... as the Lambda runtime would emit them)."""

    def __init__(self) -> None:
        self.stream = io.StringIO()
        self.powertools = logging.StreamHandler(self.stream)
        self.powertools.setFormatter(powertools_logger.registered_formatter)
        self.root = logging.StreamHandler(self.stream)
        self.root.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s %(args)s"))

    def lines(self) -> list[str]:
        return [line for line in self.stream.getvalue().splitlines() if line.strip()]


@pytest.fixture
def capture(monkeypatch: pytest.MonkeyPatch) -> Iterator[Capture]:
    cap = Capture()
    py_logger = powertools_logger._logger
    root = logging.getLogger()
    saved = (py_logger.level, root.level)
    py_logger.addHandler(cap.powertools)
    py_logger.setLevel(logging.DEBUG)
    root.addHandler(cap.root)
    root.setLevel(logging.INFO)
    try:
        yield cap
    finally:
        py_logger.removeHandler(cap.powertools)
        root.removeHandler(cap.root)
        py_logger.setLevel(saved[0])
        root.setLevel(saved[1])


@pytest.fixture
def secret_reads(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[Any]]:
    """Spy on Powertools' SecretsProvider: every get (with its max_age) and every real fetch."""
    seen: dict[str, list[Any]] = {"get": [], "fetch": []}
    original_get, original_fetch = SecretsProvider.get, SecretsProvider._get

    def get(self: SecretsProvider, name: str, max_age: int | None = None, *args: Any, **kwargs: Any) -> Any:
        seen["get"].append((name, max_age))
        return original_get(self, name, max_age, *args, **kwargs)

    def fetch(self: SecretsProvider, name: str, **kwargs: Any) -> Any:
        seen["fetch"].append(name)
        return original_fetch(self, name, **kwargs)

    monkeypatch.setattr(SecretsProvider, "get", get)
    monkeypatch.setattr(SecretsProvider, "_get", fetch)
    return seen


def test_no_secret_in_any_log_line_and_key_read_through_powertools(
    rig: Rig, capture: Capture, secret_reads: dict[str, list[Any]], capfd: pytest.CaptureFixture[str]
) -> None:
    # Every function reads the key the production way: Secrets Manager through Powertools parameters.
    for module in (rig.stack.submit, rig.stack.store, rig.stack.reconcile):
        module.deps._provider = None
    rig.stack.reconcile.deps._submit_deps = None
    answers: list[Any] = []

    # submit: three jobs (three invocations of one warm function), one with a lost webhook
    events = [rig.drop_video(name=f"clip{i}.mp4") for i in range(3)]
    outcomes = [rig.submit_one(e) for e in events]
    answers.extend(outcomes)
    assert [o["outcome"] for o in outcomes] == ["submitted"] * 3  # the provider accepted the key
    # a submit the provider rejects (its error detail is logged) and one with an unknown outcome
    rig.provider.inject("submit", Fault(status=401, body={"detail": "No user found for Key ID and Secret"}))
    answers.append(rig.submit_one(rig.drop_video(name="rejected.mp4")))
    rig.provider.inject("submit", Fault(status=500, delay=0.01))
    answers.append(rig.submit_one(rig.drop_video(name="unknown.mp4")))

    # webhook: OK, ERROR, and a forged one
    ok = rig.complete(outcomes[0]["job_id"])
    answers.append(rig.deliver(ok))
    answers.append(rig.deliver(rig.complete(outcomes[1]["job_id"], outcome="error")))
    answers.append(rig.deliver(ok, headers={**ok.headers, "x-fal-webhook-signature": "00" * 64}))
    rig.run_store()

    # reconcile (through its handler): the lost webhook of job 3 is polled with the key
    rig.complete(outcomes[2]["job_id"])
    reconcile_app = rig.stack.reconcile
    answers.append(reconcile_app.lambda_handler(load_event("schedule_reconcile.json"), FakeContext()))
    answers.append(rig.reconcile(120))
    rig.run_store()
    rig.settle()
    assert rig.job(outcomes[0]["job_id"]).status == JobStatus.COMPLETED
    assert rig.job(outcomes[2]["job_id"]).status == JobStatus.COMPLETED

    # -- the key was read through Powertools parameters, with caching, once per function --------------
    assert secret_reads["get"], "the key was not read through Powertools parameters"
    assert all(max_age and max_age > 0 for _name, max_age in secret_reads["get"]), secret_reads["get"]
    fal_fetches = [name for name in secret_reads["fetch"] if name == SECRET_NAME]
    assert 1 <= len(fal_fetches) <= 3, secret_reads  # submit, reconcile (store: only if it fetched)
    fetches_before = len(secret_reads["fetch"])
    for i in range(3):  # more warm invocations read no secret again
        rig.submit_one(rig.drop_video(name=f"more{i}.mp4"))
    assert len(secret_reads["fetch"]) == fetches_before

    # -- nothing shows the key ---------------------------------------------------------------------
    out, err = capfd.readouterr()
    records = json.dumps(rig.stack.clients["dynamodb"].scan(TableName=rig.names.jobs_table)["Items"])
    haystacks = {
        "log lines": "\n".join(capture.lines()),
        "stdout/stderr": out + err,
        "job records": records,
        "events": json.dumps(rig.captured_events()),
        "handler answers": json.dumps(answers, default=str),
    }
    assert len(capture.lines()) > 20, "the capture saw too few log lines to mean anything"
    tally.case("secrets", "no secret in logs, records, events, answers; key via Powertools (cached)")
    for where, text in haystacks.items():
        for needle in (KEY, KEY_SECRET, TOKEN_SECRET):
            if needle in text:
                tally.add("secret_leaks")
            assert needle not in text, f"the fal key appears in {where}"
    # and the provider client never renders the key
    assert KEY_SECRET not in repr(rig.stack.submit.deps.provider)
