"""The cloud map (C53): every local component exists, and unbuilt ones say so."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from lab.cloud_map import CLOUD_MAP, Equivalent, check_cloud_map

REPO = Path(__file__).resolve().parents[3]
BY_CAPABILITY = {r.capability: r for r in CLOUD_MAP}


def test_every_local_path_and_symbol_exists() -> None:
    assert check_cloud_map(CLOUD_MAP, REPO) == []


def test_the_core_capabilities_are_mapped_to_our_components() -> None:
    wanted = {
        "ML pipelines (steps with retries and parameters)": "pipelines/training_flow.py",
        "Experiment tracking": "pipelines/tracking.py::log_training_run",
        "Model registry with versions": "pipelines/registry.py",
        "Online endpoint with weighted traffic split": "serving/router.py::route",
        "Request/response capture": "serving/prediction_log.py",
        "Model monitoring (drift, quality)": "monitoring/checks.py::run_checks",
        "Batch scoring": "flows/batch_scoring_flow.py::batch_scoring_flow",
        "Feature store": "pipelines/feature_store.py::historical",
    }
    for capability, path in wanted.items():
        assert path in BY_CAPABILITY[capability].local, capability


def test_the_feature_store_and_batch_scoring_rows_point_at_the_components_that_do_it() -> None:
    assert BY_CAPABILITY["Feature store"].built
    assert "pipelines/feature_store.py::online" in BY_CAPABILITY["Feature store"].local
    assert "flows/batch_scoring_flow.py::batch_scoring_flow" in BY_CAPABILITY["Batch scoring"].local


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (replace(CLOUD_MAP[0], local=("pipelines/no_such_flow.py",)), "no such file"),
        (replace(CLOUD_MAP[0], local=("serving/router.py::no_such_router",)), "no symbol no_such_router"),
        (replace(CLOUD_MAP[0], sagemaker=None, vertex=None, azure=None), "name the product"),
        (Equivalent("Vector search", "x", None, None, "a thing we forgot"), "say 'not built"),
    ],
    ids=["missing-file", "missing-symbol", "no-product", "silent-gap"],
)
def test_a_bad_row_is_caught_and_named(bad: Equivalent, message: str) -> None:
    problems = check_cloud_map([bad], REPO)
    assert any(message in p and p.startswith(bad.capability) for p in problems), problems


def test_the_cloud_services_of_the_interview_list_are_mapped() -> None:
    # Seed 002 of the question list asks about these by name (lab/questions.yaml, topic "Cloud platforms").
    named = " | ".join(f"{r.sagemaker} | {r.vertex} | {r.azure}" for r in CLOUD_MAP)
    for product in (
        "AWS Lambda",
        "Azure Functions",
        "AKS",
        "Azure Key Vault",
        "AWS CloudTrail",
        "Azure Data Factory",
        "Amazon S3",
        "Azure Blob Storage",
        "SageMaker training jobs",
        "SageMaker Model Registry",
        "SageMaker Model Monitor",
    ):
        assert product in named, product


def test_serverless_inference_maps_to_the_lambda_handler_and_its_image() -> None:
    row = BY_CAPABILITY["Serverless inference (a function per request)"]
    assert row.built
    assert row.local == ("serving/lambda_handler.py::handler", "docker/lambda.Dockerfile")
