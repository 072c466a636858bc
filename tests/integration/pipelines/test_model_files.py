"""Registered models are loaded without running their code: the attacks of a registry writer, refused.

The MLflow server has no authentication of its own, so anyone who reaches it can register a model. A
pickle payload that writes a marker file when unpickled stands in for an attacker's code: MLflow's own
loader runs it (the control, so the test proves the payload is live), ours refuses it before reading a
byte of it. A file replaced after registration and a skops file asking for foreign types are refused too.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from core.settings import Settings
from pipelines.model_files import UntrustedModelError
from pipelines.registry import load_version_model, mlflow_client, register_candidate

pytestmark = [pytest.mark.integration, pytest.mark.slow]
GATE = {"passed": True, "reasons": ["test"], "checks": {}}


class Payload:
    """Unpickling this calls ``marker.touch()``: code chosen by whoever wrote the file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, tuple[()]]:
        return (self.marker.touch, ())


class Foreign:
    """A type outside sklearn, numpy and this project's pipelines package."""


def _pipeline() -> Any:
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x, y = load_iris(return_X_y=True, as_frame=True)
    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=300)).fit(x, y)


def _log(settings: Settings, model: Any, **kwargs: Any) -> tuple[str, str]:
    import mlflow

    from pipelines.registry import ensure_experiment

    with mlflow.start_run(experiment_id=ensure_experiment(settings)) as run:
        info = mlflow.sklearn.log_model(model, name="model", **kwargs)
    return run.info.run_id, info.model_uri


def _register_as_an_attacker(settings: Settings, model_uri: str, **tags: str) -> str:
    """What anyone who reaches the MLflow server can do: register a version and point an alias at it."""
    import mlflow

    version = str(mlflow.register_model(model_uri, settings.model_name, tags=tags).version)
    mlflow_client(settings).set_registered_model_alias(settings.model_name, "challenger", version)
    return version


def test_a_pickle_payload_in_the_registry_never_runs(settings: Settings, tmp_path: Path) -> None:
    from mlflow.artifacts import download_artifacts

    from core.digests import file_sha256

    marker = tmp_path / "payload-ran"
    model = _pipeline()
    model.payload = Payload(marker)
    run_id, uri = _log(settings, model, serialization_format="cloudpickle")
    with pytest.raises(UntrustedModelError, match="'cloudpickle'"):
        register_candidate(settings, run_id, uri, GATE, None, "tester", "through our registry code")
    assert not mlflow_client(settings).search_model_versions(f"name = '{settings.model_name}'")  # nothing registered
    pickled = Path(download_artifacts(artifact_uri=uri)) / "model.pkl"
    version = _register_as_an_attacker(settings, uri, model_sha256=file_sha256(pickled))  # even a matching digest
    with pytest.raises(UntrustedModelError, match=r"serialized as 'cloudpickle'; only 'skops' is loaded"):
        load_version_model(settings, version)
    assert not marker.exists()

    import mlflow

    mlflow.sklearn.load_model(f"models:/{settings.model_name}/{version}")  # the control: MLflow's loader
    assert marker.exists(), "the payload is live: MLflow's own loader ran it"


def test_a_model_file_replaced_after_registration_is_refused(settings: Settings) -> None:
    from mlflow.artifacts import download_artifacts

    run_id, uri = _log(settings, _pipeline())
    version = register_candidate(settings, run_id, uri, GATE, None, "tester", "a good model").version
    assert load_version_model(settings, version).predict  # registered and loaded as it is
    _, other_uri = _log(settings, _pipeline().set_params(logisticregression__C=0.01))
    registered = Path(download_artifacts(artifact_uri=f"models:/{settings.model_name}/{version}")) / "model.skops"
    shutil.copyfile(Path(download_artifacts(artifact_uri=other_uri)) / "model.skops", registered)
    with pytest.raises(UntrustedModelError, match="was replaced after registration"):
        load_version_model(settings, version)


def test_a_version_registered_without_a_digest_is_refused(settings: Settings) -> None:
    _, uri = _log(settings, _pipeline())
    version = _register_as_an_attacker(settings, uri)
    with pytest.raises(UntrustedModelError, match="has no model_sha256 tag"):
        load_version_model(settings, version)


def test_a_skops_file_asking_for_foreign_types_is_refused(settings: Settings) -> None:
    model = _pipeline()
    model.extra = Foreign()
    run_id, uri = _log(settings, model, skops_trusted_types=[f"{__name__}.Foreign"])  # the artifact trusts itself
    version = register_candidate(settings, run_id, uri, GATE, None, "tester", "foreign types").version
    with pytest.raises(UntrustedModelError, match=r"needs types outside .*Foreign"):
        load_version_model(settings, version)
