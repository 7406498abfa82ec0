"""Manifest schema errors: each names the field at fault (one moto bucket for the whole module)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from faceswap_common.errors import PipelineError
from faceswap_common.jobspec import SizeLimits, resolve_job_spec
from faceswap_common.manifest import Manifest, parse_ref

from .support import BUCKET, put


@pytest.fixture(scope="module")
def s3m() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        for key in ("faces/a.jpg", "faces/b.jpg", "m/a.mp4"):
            put(client, key)
        yield client


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"faces": [{"image": "faces/a.jpg"}]}, "target"),
        ({"target": "m/a.mp4", "faces": []}, "faces"),
        ({"target": "m/a.mp4", "faces": [{"image": "faces/a.jpg", "gender": "robot"}]}, "faces[0].gender"),
        ({"target": "m/a.mp4", "faces": [{"image": "faces/a.gif"}]}, "faces[0].image"),
        ({"target": "m/a.txt", "faces": [{"image": "faces/a.jpg"}]}, "target"),
        ({"target": "m/a.mp4", "faces": [{"image": "faces/a.jpg", "colour": "red"}]}, "faces[0].colour"),
        ({"target": "m/a.mp4", "faces": [{"image": "faces/a.jpg"}], "enable_occlusion_prevention": "x"},
         "enable_occlusion_prevention"),
        ({"target": 5, "faces": [{"image": "faces/a.jpg"}]}, "target"),
        ([1, 2], "(manifest)"),
        ({"target": "m/a.mp4", "faces": [{"image": f"s3://other-bucket/faces/a.jpg"}]}, "faces[0].image"),
        ({"target": "s3://other-bucket/m/a.mp4", "faces": [{"image": "faces/a.jpg"}]}, "target"),
        ({"target": "../m/a.mp4", "faces": [{"image": "faces/a.jpg"}]}, "target"),
        ({"target": "/m/a.mp4", "faces": [{"image": "faces/a.jpg"}]}, "target"),
        ({"target": "m//a.mp4", "faces": [{"image": "faces/a.jpg"}]}, "target"),
        ({"target": "m/./a.mp4", "faces": [{"image": "faces/a.jpg"}]}, "target"),
        ({"target": "outputs/j/a.mp4", "faces": [{"image": "faces/a.jpg"}]}, "target"),
        ({"target": "m/a.mp4", "faces": [{"image": f"s3://{BUCKET}/../faces/a.jpg"}]}, "faces[0].image"),
        ({"target": "http://insecure.example.com/a.mp4", "faces": [{"image": "faces/a.jpg"}]}, "target"),
        ({"target": "file:///etc/passwd.mp4", "faces": [{"image": "faces/a.jpg"}]}, "target"),
        ({"target": "https://user:pw@h/a.mp4", "faces": [{"image": "faces/a.jpg"}]}, "target"),
        ({"target": "m/a.mp4", "faces": [{"image": "faces/a.jpg"}, {"image": "faces/b.jpg"}]}, "faces[0].gender"),
        ({"target": "m/a.mp4", "faces": [{"image": "faces/a.jpg", "gender": "male"}, {"image": "faces/b.jpg"}]},
         "faces[1].gender"),
        ({"target": "m/a.mp4", "faces": [{"image": "a.jpg", "gender": "male"}] * 3}, "faces"),
    ],
)
def test_manifest_schema_errors_name_the_field(s3m: Any, body: Any, field: str) -> None:
    s3m.put_object(Bucket=BUCKET, Key="jobs/x.json", Body=json.dumps(body).encode())
    with pytest.raises(PipelineError) as info:
        resolve_job_spec(s3m, BUCKET, "jobs/x.json", SizeLimits())
    err = info.value
    assert err.code == "MANIFEST_INVALID"
    assert field in [d["loc"] for d in err.detail], err.detail
    assert field in err.message




def test_valid_manifest_refs() -> None:
    m = Manifest.model_validate(
        {"target": "S3://bkt/media/a b+c.MKV", "faces": [{"image": " https://h.example/x.tiff "}]},
        context={"bucket": "bkt"},
    )
    assert m.target_ref.kind == "s3" and m.target_ref.value == "media/a b+c.MKV"
    assert m.face_refs()[0][0].kind == "url" and not m.is_multi


@pytest.mark.parametrize("value", ["data:image/png;base64,AA", "s3://bkt", "s3://bkt/", "a\\b.png", "a\x00.png"])
def test_refs_refused(value: str) -> None:
    with pytest.raises(Exception):
        parse_ref(value, "bkt")
