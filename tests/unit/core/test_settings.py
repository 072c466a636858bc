"""Settings: read where a process starts, passed down, and never shown with their secrets.

A flow run's parameters are stored and shown by Prefect, and a settings object can end up in a log or
a traceback: its JSON form and its repr carry no password and no token, while the object itself keeps
the real values the code needs. `redact` is the one helper that strips a URL's password.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.mlflow_config import MlflowNotConfiguredError, configure_mlflow, require_mlflow_configured
from core.redact import redact
from core.settings import Settings

SECRET, TOKEN = "fake-hunter2-pw", "fake-token-0123456789-abcdef"


@pytest.fixture
def secret_settings(tmp_path: Path) -> Settings:
    return Settings(
        project_dir=tmp_path,
        state_dir=tmp_path / "state",
        tracking_uri=f"http://mlops:{SECRET}@mlflow.internal:5000",
        prediction_log_url=f"postgresql+psycopg://mlops:{SECRET}@db.internal:5432/predictions",
        admin_token=TOKEN,
    )


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("postgresql+psycopg://mlops:s3cr%40t@db:5432/x", "postgresql+psycopg://mlops:***@db:5432/x"),
        ("failed: http://u:p@h/api and sqlite:////a/b.db", "failed: http://u:***@h/api and sqlite:////a/b.db"),
        ("http://mlflow:5000 has no password", "http://mlflow:5000 has no password"),
        ("redis://:only-a-password@cache:6379/0", "redis://:***@cache:6379/0"),
    ],
)
def test_redact_hides_the_password_of_every_url_and_keeps_the_rest(text: str, shown: str) -> None:
    assert redact(text) == shown


def test_the_json_form_and_the_repr_hold_no_secret(secret_settings: Settings) -> None:
    dumped = secret_settings.model_dump_json()
    for text in (dumped, repr(secret_settings), str(secret_settings)):
        assert SECRET not in text
        assert TOKEN not in text
    shown = json.loads(dumped)
    assert shown["tracking_uri"] == "http://mlops:***@mlflow.internal:5000"  # where, not with what
    assert shown["admin_token"] == "***"


def test_the_object_keeps_the_real_values(secret_settings: Settings) -> None:
    assert secret_settings.admin_token == TOKEN
    assert SECRET in secret_settings.mlflow_tracking_uri
    assert secret_settings.model_dump()["prediction_log_url"].endswith(f"{SECRET}@db.internal:5432/predictions")


def test_settings_are_read_from_the_environment_each_time_they_are_built(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No process-wide cache: an edge that builds settings sees the environment as it is now."""
    monkeypatch.setenv("MLOPS_STATE_DIR", str(tmp_path / "one"))
    first = Settings()
    monkeypatch.setenv("MLOPS_STATE_DIR", str(tmp_path / "two"))
    assert (first.state.name, Settings().state.name) == ("one", "two")


def test_fluent_mlflow_refuses_a_process_configured_for_another_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI"):  # restored after the test
        monkeypatch.delenv(name, raising=False)
    here = Settings(project_dir=tmp_path, state_dir=tmp_path / "here")
    there = Settings(project_dir=tmp_path, state_dir=tmp_path / "there", tracking_uri=f"http://u:{SECRET}@x:5000")
    configure_mlflow(there)
    with pytest.raises(MlflowNotConfiguredError) as refused:
        require_mlflow_configured(here)
    assert "here" in str(refused.value)
    assert SECRET not in str(refused.value)
    configure_mlflow(here)
    require_mlflow_configured(here)  # configured: no error


README = Path(__file__).resolve().parents[3] / "README.md"


def test_the_readme_names_every_setting() -> None:
    text = README.read_text(encoding="utf-8")
    missing = [f"MLOPS_{name.upper()}" for name in Settings.model_fields if f"MLOPS_{name.upper()}" not in text]
    assert not missing, f"README's settings list lacks {missing}"


def test_the_readme_states_the_rate_limit_defaults_and_what_a_load_test_sees() -> None:
    text = " ".join(README.read_text(encoding="utf-8").split())
    fields = Settings.model_fields
    rate, burst = fields["rate_limit_per_s"].default, fields["rate_limit_burst"].default
    assert f"default {rate:g} requests/s with a burst of {burst}" in text
    assert f"first {burst} requests at any speed and then {rate:g} a second per worker" in text
    assert "`429 Too Many Requests` with a `Retry-After` header" in text
    assert "MLOPS_RATE_LIMIT_PER_S=0" in text  # how to take the limit out of a load test


def test_the_user_key_secrets_are_hidden_too(tmp_path: Path) -> None:
    current, previous = "example-user-key-secret-current", "example-user-key-secret-previous"
    settings = Settings(state_dir=tmp_path, user_key_secret=current, user_key_previous=[previous])
    for text in (settings.model_dump_json(), repr(settings)):
        assert current not in text
        assert previous not in text
    shown = json.loads(settings.model_dump_json())
    assert (shown["user_key_secret"], shown["user_key_previous"]) == ("***", ["***"])


def test_the_explain_queue_is_at_least_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from pydantic import ValidationError

    monkeypatch.setenv("MLOPS_EXPLAIN_QUEUE", "0")
    with pytest.raises(ValidationError, match="explain_queue"):
        Settings(state_dir=tmp_path)
    monkeypatch.setenv("MLOPS_EXPLAIN_QUEUE", "3")
    assert Settings(state_dir=tmp_path).explain_queue == 3
    monkeypatch.delenv("MLOPS_EXPLAIN_QUEUE")
    assert Settings(state_dir=tmp_path).explain_queue == 8


def test_the_redis_password_is_never_shown_and_the_stream_defaults_hold(tmp_path: Path) -> None:
    secret = "example-redis-password"
    settings = Settings(state_dir=tmp_path, redis_url=f"redis://:{secret}@broker:6379/0")
    for text in (settings.model_dump_json(), repr(settings)):
        assert secret not in text
        assert "redis://:***@broker:6379/0" in text
    assert (settings.stream_name, settings.stream_group, settings.stream_claim_idle_s) == (
        "mlops:features",
        "scorers",
        30,
    )
