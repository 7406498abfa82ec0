"""Fixtures of the layer's unit tests: moto in-process AWS, the media bucket, the jobs table."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from .support import BUCKET, TABLE, jobs_table_definition


@pytest.fixture
def aws() -> Iterator[None]:
    with mock_aws():
        yield


@pytest.fixture
def s3(aws: None) -> Any:
    client = boto3.client("s3", region_name="us-east-1")
    client.create_bucket(Bucket=BUCKET)
    return client


@pytest.fixture
def ddb(aws: None) -> Any:
    resource = boto3.resource("dynamodb", region_name="us-east-1")
    resource.meta.client.create_table(**jobs_table_definition(TABLE))
    return resource

