"""Source URLs and the validation every Config goes through, whatever built it."""

from __future__ import annotations

import dataclasses
import math
import re
from pathlib import Path
from typing import Any

import pytest

from gcs_model_sync.config import DURATION_MAX, PARALLEL_MAX, SIZE_MAX, Config, Source
from gcs_model_sync.errors import EXIT_USAGE, ConfigError
from gcs_model_sync.options import DEFAULT_WORKERS


@pytest.mark.parametrize(
    ("url", "bucket", "prefix"),
    [
        ("gs://bkt", "bkt", ""),
        ("gs://bkt/", "bkt", ""),
        ("gs://bkt/models", "bkt", "models/"),
        ("gs://bkt/models/", "bkt", "models/"),
        ("gs://bkt/a/b/c", "bkt", "a/b/c/"),
        ("gs://bkt//models//", "bkt", "models/"),
        ("gs://my-bkt.example.com/p", "my-bkt.example.com", "p/"),
        ("gs://bkt/dossier modèles", "bkt", "dossier modèles/"),
    ],
)
def test_source_parse(url: str, bucket: str, prefix: str) -> None:
    source = Source.parse(url)
    assert source == Source(bucket, prefix)
    assert str(source) == f"gs://{bucket}/{prefix}"
    assert Source.parse(str(source)) == source


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("s3://bkt/p", "gs://BUCKET"),
        ("bkt/p", "gs://BUCKET"),
        ("/local/path", "gs://BUCKET"),
        ("GS://bkt", "gs://BUCKET"),
        ("https://storage.googleapis.com/bkt", "gs://BUCKET"),
        ("", "gs://BUCKET"),
        ("gs://", "bucket"),
        ("gs:///prefix", "bucket"),
        ("gs://b kt/p", "bucket"),
        ("gs://b\\kt", "bucket"),
        ("gs://bkt\n/p", "bucket"),
    ],
)
def test_source_parse_rejects(url: str, says: str) -> None:
    with pytest.raises(ConfigError, match="--source") as info:
        Source.parse(url)
    assert says in str(info.value)
    assert info.value.exit_code == EXIT_USAGE
    assert "\n" not in str(info.value).replace(repr(url), "")


@pytest.mark.parametrize(
    "bucket",
    [
        "abc",
        "a" * 63,
        "my_bucket-2",
        "1models",
        "models.example.com",
        ".".join(["a" * 63] * 3) + ".co",  # dotted: up to 222 characters in all
        "a.b.c",
        "1.2.3",  # three numbers are not an IP address
        "gog-models",
        "my-goo-gle",
    ],
)
def test_valid_bucket_names_are_accepted(bucket: str) -> None:
    assert Source.parse(f"gs://{bucket}/p").bucket == bucket


@pytest.mark.parametrize(
    ("bucket", "rule"),
    [
        ("Bad_Bucket!", "lowercase letters, digits, dashes, underscores and dots"),
        ("UPPER", "lowercase"),
        ("caf\u00e9-models", "lowercase"),
        ("a:b", "lowercase"),
        ("ml-models-", "start and end with a letter or a digit"),
        ("-ml-models", "start and end"),
        ("_models", "start and end"),
        ("models.", "start and end"),
        ("ab", "3 to 63 characters"),
        ("a" * 64, "3 to 63 characters"),
        (".".join(["a" * 60] * 4), "3 to 222 characters"),
        ("a" * 64 + ".com", "at most 63 characters between dots"),
        ("192.168.5.4", "IP address"),
        ("goog-models", 'begin with "goog"'),
        ("googmodels", 'begin with "goog"'),
        ("my-google-models", 'contain "google"'),
        ("my-g00gle-models", 'contain "google"'),
    ],
)
def test_invalid_bucket_names_are_usage_errors_naming_the_rule(bucket: str, rule: str) -> None:
    url = f"gs://{bucket}/models"
    with pytest.raises(ConfigError) as info:
        Source.parse(url)
    message = str(info.value)
    assert info.value.exit_code == EXIT_USAGE
    assert message.startswith(f"--source {url!r}: bucket names ")
    assert rule in message
    assert "cloud.google.com/storage/docs/buckets#naming" in message
    assert "\n" not in message


def test_empty_source_is_a_usage_error_saying_so() -> None:
    for url in ("", "  "):
        with pytest.raises(ConfigError, match="--source is empty") as info:
            Source.parse(url)
        assert info.value.exit_code == EXIT_USAGE


def make(tmp_path: Path, **kw: Any) -> Config:
    return Config(source=Source("b", ""), dest=tmp_path / "models", **kw)


def test_defaults(tmp_path: Path) -> None:
    c = make(tmp_path)
    assert (c.keep, c.allow_empty_source, c.max_delete) == (0, False, None)
    assert c.max_version_size == 64 * 1024**3
    assert c.log_format == "text"
    assert c.verbosity == 0
    assert c.workers == DEFAULT_WORKERS
    assert not (tmp_path / "models").exists()  # validating does not create --dest


@pytest.mark.parametrize(
    ("field", "value", "says"),
    [
        ("keep", -1, "--keep"),
        ("max_delete", -1, "--max-delete"),
        ("workers", 0, "--workers"),
        ("interval", 0, "--interval"),
        ("interval", -5.0, "--interval"),
        ("jitter", -0.1, "--jitter"),
        ("jitter", 1.0, "--jitter"),
        ("max_failures", -1, "--max-failures"),
        ("retry_attempts", 0, "--retry-attempts"),
        ("list_page_size", 0, "--list-page-size"),
        ("list_page_size", 1001, "--list-page-size"),
        ("max_version_size", 0, "--max-version-size"),
        ("max_version_size", -1, "--max-version-size"),
        ("server_timeout", 0, "--server-timeout"),
        ("server_kind", "triton", "--server-kind must be one of tfserving, kserve-v2, triton-"),
    ],
)
def test_invalid_values_are_config_errors(
    tmp_path: Path, field: str, value: object, says: str
) -> None:
    with pytest.raises(ConfigError, match=says):
        make(tmp_path, **{field: value})


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("keep", 0),
        ("keep", 1),
        ("max_delete", 0),
        ("workers", 1),
        ("jitter", 0.0),
        ("jitter", 0.99),
        ("max_failures", 0),
        ("retry_attempts", 1),
        ("list_page_size", 1),
        ("list_page_size", 1000),
        ("max_version_size", 1),
    ],
)
def test_boundary_values_are_fine(tmp_path: Path, field: str, value: object) -> None:
    assert getattr(make(tmp_path, **{field: value}), field) == value


def test_dest_that_is_a_file_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "models").write_text("not a folder")
    with pytest.raises(ConfigError, match=r"--dest .*: not a directory \(.* is a file\)"):
        make(tmp_path)


def test_dest_that_is_a_folder_is_fine(tmp_path: Path) -> None:
    (tmp_path / "models").mkdir()
    assert make(tmp_path).dest == tmp_path / "models"


def test_config_is_frozen(tmp_path: Path) -> None:
    c = make(tmp_path)
    with pytest.raises(dataclasses.FrozenInstanceError):
        c.keep = 3  # type: ignore[misc]


DURATION_FIELDS = ["interval", "lock_timeout", "request_timeout", "retry_deadline",
                   "hook_timeout", "stuck_after", "settle", "server_timeout"]  # fmt: skip
SIZE_FIELDS = ["slice_size", "slice_threshold", "bwlimit", "max_version_size", "min_free_space"]


@pytest.mark.parametrize("value", [math.inf, math.nan, -1.0, 1e300, 1e10, DURATION_MAX + 1])
@pytest.mark.parametrize("field", DURATION_FIELDS)
def test_durations_out_of_range_name_the_option_and_its_range(
    tmp_path: Path, field: str, value: float
) -> None:
    option = "--" + field.replace("_", "-")
    with pytest.raises(
        ConfigError, match=rf"^{option} must be .*\b7d\b.*, got {re.escape(f'{value:g}')}$"
    ):
        make(tmp_path, **{field: value})


@pytest.mark.parametrize("field", DURATION_FIELDS)
def test_durations_up_to_seven_days_are_fine(tmp_path: Path, field: str) -> None:
    assert getattr(make(tmp_path, **{field: DURATION_MAX}), field) == DURATION_MAX


@pytest.mark.parametrize("field", ["lock_timeout", "settle"])
def test_zero_is_a_duration_where_it_means_something(tmp_path: Path, field: str) -> None:
    assert getattr(make(tmp_path, **{field: 0.0}), field) == 0.0


@pytest.mark.parametrize("value", [-1, SIZE_MAX + 1, 10**300])
@pytest.mark.parametrize("field", SIZE_FIELDS)
def test_sizes_out_of_range_name_the_option_and_its_range(
    tmp_path: Path, field: str, value: int
) -> None:
    option = "--" + field.replace("_", "-")
    with pytest.raises(ConfigError, match=rf"^{option} must be within \w+\.\.1P, got "):
        make(tmp_path, **{field: value})


@pytest.mark.parametrize("field", ["workers", "connections"])
@pytest.mark.parametrize("value", [0, PARALLEL_MAX + 1, 10**8])
def test_parallelism_is_bounded(tmp_path: Path, field: str, value: int) -> None:
    with pytest.raises(ConfigError, match=rf"--{field} must be within 1\.\.1024, got {value}"):
        make(tmp_path, **{field: value})


@pytest.mark.parametrize(
    ("marker", "path"),
    [("_SUCCESS", "_SUCCESS"), ("./_SUCCESS", "_SUCCESS"), ("done//_SUCCESS/", "done/_SUCCESS")],
)
def test_ready_marker_is_normalised_to_the_object_name_under_the_version(
    tmp_path: Path, marker: str, path: str
) -> None:
    assert make(tmp_path, ready_marker=marker).ready_marker == path


@pytest.mark.parametrize("marker", ["/_SUCCESS", "", " ", ".", "..", "../_SUCCESS", "a/../../b"])
def test_ready_marker_outside_the_version_is_a_usage_error(tmp_path: Path, marker: str) -> None:
    with pytest.raises(ConfigError, match="--ready-marker must be a path inside the version"):
        make(tmp_path, ready_marker=marker)


def test_pins_read_model_paths_and_version_numbers(tmp_path: Path) -> None:
    config = Config(Source("b", ""), tmp_path, pin=("resnet=7", "/team/bert/=0012", "x=7"))
    assert config.pins == {"resnet": 7, "team/bert": 12, "x": 7}
    assert Config(Source("b", "m/"), tmp_path, pin=(".=3",)).pins == {"": 3}


@pytest.mark.parametrize(
    ("pin", "says"),
    [
        ("resnet", "MODEL=VERSION"),
        ("resnet=", "MODEL=VERSION"),
        ("=7", "MODEL=VERSION"),
        ("resnet=v7", "MODEL=VERSION"),
        ("resnet=-1", "MODEL=VERSION"),
        ("resnet=99999999999999999999", "MODEL=VERSION"),
    ],
)
def test_a_pin_that_names_no_version_is_a_usage_error(tmp_path: Path, pin: str, says: str) -> None:
    with pytest.raises(ConfigError, match=says) as caught:
        Config(Source("b", ""), tmp_path, pin=(pin,))
    assert repr(pin) in str(caught.value)


def test_two_pins_of_one_model_are_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="two versions of 'resnet': 7 and 8"):
        Config(Source("b", ""), tmp_path, pin=("resnet=7", "resnet=08"))
