"""The training path against a real MLflow store: gate, registry aliases, lineage, reproduce.

One registry is built up step by step (module scope) to keep the suite fast; each test reads
the state the earlier steps left, in the order the lifecycle happens.
"""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import pytest

from core.mlflow_config import configure_mlflow, mlflow_client
from core.params import Params, with_search_trials
from core.settings import Settings
from lab.demos.prep import with_hyperparams
from pipelines.batches import generate_batch, write_batch
from pipelines.data import file_md5, ingest, read_csv
from pipelines.registry import current_aliases, list_versions
from pipelines.reproduce import REPRODUCED_TAGS, ReproductionError, record_reproduction, reproduce_version
from pipelines.training_steps import run_training
from pipelines.validation import DataValidationError

pytestmark = [pytest.mark.integration, pytest.mark.slow]
REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory, params: Params, make_settings) -> tuple[Settings, Params, Path]:
    """A fresh state folder with the raw data ingested, as `mlops-lab ingest` leaves it."""
    root = tmp_path_factory.mktemp("lab")
    settings = make_settings(root / "state")
    data = ingest(params.dataset, params.ingest, root / "iris.csv")
    return settings, params, data


@pytest.fixture(scope="module")
def first(lab):
    settings, params, data = lab
    return run_training(settings, params, data)


def test_first_model_becomes_champion(lab, first) -> None:
    settings, _, _ = lab
    assert first.status == "registered"
    assert first.alias == "champion"
    assert current_aliases(settings) == {"champion": first.version}


def test_run_carries_lineage_tags_and_artifacts(lab, first) -> None:
    settings, params, data = lab
    client = mlflow_client(settings)
    run = client.get_run(first.run_id)
    tags = run.data.tags
    assert tags["data_md5"] == file_md5(data)
    assert tags["params_hash"] == params.digest()
    assert len(tags["git_sha"]) == 40
    assert tags["lib.scikit-learn"]
    assert tags["gate.status"] == "passed"
    assert run.data.params["estimator"] == params.train.estimator
    assert run.data.metrics["test_accuracy"] == first.metrics["test_accuracy"]
    names = {a.path for a in client.list_artifacts(first.run_id, "evaluation")}
    assert {"evaluation/confusion_matrix.png", "evaluation/params.json", "evaluation/evaluation.json"} <= names
    card = mlflow.artifacts.load_text(f"runs:/{first.run_id}/model_card.md")
    assert "Intended use" in card or "intended use" in card.lower()
    assert file_md5(data) in card


def test_registered_model_has_signature_and_serves_the_feature_fields(lab, first) -> None:
    settings, params, data = lab
    configure_mlflow(settings)  # the fluent API below reads this store
    model = mlflow.pyfunc.load_model(f"models:/{settings.model_name}@champion")
    assert model.metadata.get_input_schema().input_names() == params.dataset.feature_names
    frame = read_csv(data)
    predictions = model.predict(frame[params.dataset.feature_names].head(5))
    assert set(predictions) <= set(params.dataset.classes)


def test_registered_artefact_predicts_exactly_what_training_computed(lab, first) -> None:
    """Training-serving skew guard: the registry's pyfunc and the training-time pipeline agree bit for bit."""
    from pipelines.fit import fit_and_evaluate

    settings, params, data = lab
    configure_mlflow(settings)  # the fluent API below reads this store
    served = mlflow.pyfunc.load_model(f"models:/{settings.model_name}/{first.version}")
    from pipelines.holdout import load_holdout, without_holdout

    training_rows = without_holdout(read_csv(data), load_holdout(settings, params).frame, params.dataset)
    trained = fit_and_evaluate(training_rows, params).pipeline
    X = read_csv(data)[params.dataset.feature_names]
    assert list(served.predict(X)) == list(trained.predict(X))
    served_proba = mlflow.sklearn.load_model(f"models:/{settings.model_name}/{first.version}").predict_proba(X)
    assert (served_proba == trained.predict_proba(X)).all()


def test_second_passing_model_becomes_challenger(lab, first) -> None:
    settings, params, data = lab
    second = run_training(settings, params, data)
    assert second.status == "registered"
    assert second.alias == "challenger"
    assert second.champion_metrics is not None
    assert current_aliases(settings) == {"champion": first.version, "challenger": second.version}


def test_holdout_rows_never_reach_training_even_when_the_file_holds_them(lab, first) -> None:
    """Real ingest: the raw file contains every holdout row; the fitted split (train and test) has none."""
    from pipelines.data import split_features_target
    from pipelines.holdout import load_holdout
    from pipelines.training_steps import load_data, train_candidate

    settings, params, data = lab
    holdout = load_holdout(settings, params)
    assert holdout.rows == 45
    result, logged, _ = train_candidate(settings, params, load_data(data), False)
    seen = {tuple(r) for r in split_features_target(read_csv(data), params.dataset)[0].to_numpy()}
    held = {tuple(r) for r in split_features_target(holdout.frame, params.dataset)[0].to_numpy()}
    assert held <= seen  # the file does hold them ...
    used = {tuple(r) for frame in (result.split.X_train, result.split.X_test) for r in frame.to_numpy()}
    assert not used & held  # ... and training never sees them
    assert len(used) == len(seen) - len(held)
    tags = mlflow_client(settings).get_run(logged.run_id).data.tags
    assert tags["holdout_md5"] == file_md5(holdout.path)
    assert tags["holdout_rows_removed"] == "45"


def test_champion_and_candidate_are_scored_on_the_identical_holdout(lab, first) -> None:
    from pipelines.holdout import holdout_path

    settings, params, data = lab
    outcome = run_training(settings, params, data)
    md5 = file_md5(holdout_path(settings, params))
    comparisons = outcome.gate["comparisons"]
    assert comparisons["holdout"] == {"md5": md5, "rows": 45}
    champion = comparisons["champion"]
    assert champion["champion_holdout_verified"] is True  # the champion's run was trained against this md5
    assert champion["b_champion_only"] + champion["c_candidate_only"] <= 45
    client = mlflow_client(settings)
    assert client.get_run(first.run_id).data.tags["holdout_md5"] == md5
    assert client.get_run(outcome.run_id).data.tags["holdout_md5"] == md5
    assert client.get_run(outcome.run_id).data.metrics["holdout_accuracy"] == comparisons["candidate"]
    assert "one-sided McNemar exact" in outcome.gate["reasons"][0]
    assert "resolution: 1 row = 0.0222 on 45 holdout rows" in outcome.gate["reasons"][0]


def test_worse_model_is_rejected_and_gets_no_alias_or_version(lab, first) -> None:
    settings, params, data = lab
    before_versions = {v.version for v in list_versions(settings)}
    before_aliases = current_aliases(settings)
    outcome = run_training(settings, with_hyperparams(params, C=0.01), data)
    assert outcome.status == "rejected"
    assert outcome.version is None
    assert outcome.gate["reasons"]  # C=0.01 fails slice parity; on 45 holdout rows it is not significantly worse
    assert {v.version for v in list_versions(settings)} == before_versions
    assert current_aliases(settings) == before_aliases
    run = mlflow_client(settings).get_run(outcome.run_id)
    tags = run.data.tags
    assert tags["gate.status"] == "rejected"
    assert tags["gate.reason"] == "; ".join(outcome.gate["reasons"])
    assert run.info.run_name == f"train-rejected-{outcome.run_id[:8]}"
    failed = [c["name"] for c in outcome.gate["checks"] if not c["passed"]]
    assert failed
    assert all(tags[f"gate.check.{name}"] == "FAIL" for name in failed)


def test_runs_are_named_after_their_purpose_and_version_and_read_in_the_ui(lab, first) -> None:
    """MLflow lists `train-v1`, `retrain-data-drift-v2`; the gate is readable as tags and a Markdown page."""
    settings, params, data = lab
    client = mlflow_client(settings)
    run = client.get_run(first.run_id)
    assert run.info.run_name == f"train-v{first.version}"
    assert run.data.tags["gate.summary"].startswith("PASSED: ")
    assert {run.data.tags[f"gate.check.{c['name']}"] for c in first.gate["checks"]} == {"pass"}
    summary = client.download_artifacts(first.run_id, "gate/summary.md")
    text = Path(summary).read_text(encoding="utf-8")
    assert text.startswith("# Quality gate: passed")
    assert all(f"| {c['name']} | pass |" in text for c in first.gate["checks"])
    experiment = client.get_experiment_by_name(settings.experiment_name)
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
    card = Path(client.download_artifacts(first.run_id, "model_card.md")).read_text(encoding="utf-8")
    assert "### Confusion matrix (test split)" in card
    assert "cv cv_" not in card
    assert "| search |" not in card  # no search ran, so no space that played no part

    retrained = run_training(settings, params, data, purpose="retrain-data_drift")
    assert client.get_run(retrained.run_id).info.run_name == f"retrain-data-drift-v{retrained.version}"


def test_invalid_data_trains_nothing_and_logs_no_run(lab, first, tmp_path: Path) -> None:
    settings, params, data = lab
    client = mlflow_client(settings)
    experiment = client.get_experiment_by_name(settings.experiment_name)
    runs_before = len(client.search_runs([experiment.experiment_id]))
    versions_before = len(list_versions(settings))
    bad = write_batch(
        generate_batch("out-of-range", read_csv(data), params, seed=3), tmp_path / "bad.csv", "out-of-range"
    )
    with pytest.raises(DataValidationError) as err:
        run_training(settings, params, bad)
    assert "petal" in str(err.value) or "sepal" in str(err.value)
    assert len(client.search_runs([experiment.experiment_id])) == runs_before
    assert len(list_versions(settings)) == versions_before


def test_reproduce_rebuilds_identical_metrics_and_predictions(lab, first) -> None:
    settings, _, _ = lab
    report = reproduce_version(settings, first.version)
    assert report.identical
    assert report.max_probability_diff == 0.0
    assert report.logged_metrics["test_accuracy"] == report.rebuilt_metrics["test_accuracy"]
    assert len(report.logged_metrics) > 5
    verdict = record_reproduction(settings, report, "auditor")
    tags = mlflow_client(settings).get_model_version(settings.model_name, first.version).tags
    assert {k: tags[k] for k in REPRODUCED_TAGS} == verdict
    assert (verdict["reproduced"], verdict["reproduced_by"]) == ("identical", "auditor")


def test_reproduce_without_the_data_names_the_fix(lab, params: Params, tmp_path: Path) -> None:
    settings, _, data = lab
    copy = tmp_path / "copy.csv"
    lines = data.read_bytes().splitlines(keepends=True)
    copy.write_bytes(b"".join(lines[:-1]))  # unique bytes: in no DVC cache or remote
    outcome = run_training(settings, params, copy)
    copy.write_text("changed\n")
    with pytest.raises(ReproductionError, match="dvc pull"):
        reproduce_version(settings, outcome.version)


def test_reproduce_unknown_version_is_a_clear_error(lab) -> None:
    settings, _, _ = lab
    with pytest.raises(ReproductionError, match="registry list"):
        reproduce_version(settings, "999")


def test_search_logs_nested_trials_and_a_report_and_registers_the_best_by_cv(lab, first) -> None:
    settings, params, data = lab
    searching = with_search_trials(params, 8)
    outcome = run_training(settings, searching, data, search=True)
    parent_id, *trial_ids = outcome.search_run_ids
    summary = outcome.search
    assert summary is not None
    assert len(trial_ids) == summary["trials"] == 8
    client = mlflow_client(settings)
    trials = [client.get_run(r) for r in trial_ids]
    assert all(t.data.tags["mlflow.parentRunId"] == parent_id for t in trials)
    states = [t.data.tags["search.state"] for t in trials]
    assert set(states) <= {"COMPLETE", "PRUNED"}
    assert states.count("PRUNED") == summary["pruned"]
    assert [t.info.run_name for t in trials] == [f"trial {i}" for i in range(8)]
    complete = [t for t in trials if t.data.tags["search.state"] == "COMPLETE"]
    best = max(complete, key=lambda t: t.data.metrics["cv_accuracy_mean"])
    assert best.data.tags["search.trial"] == str(summary["best_trial"])
    # The candidate is the winner refitted and logged like any candidate: same CV mean, its params on the run.
    candidate = client.get_run(outcome.run_id)
    assert candidate.data.tags["mlflow.parentRunId"] == parent_id
    assert candidate.data.metrics["cv_accuracy_mean"] == best.data.metrics["cv_accuracy_mean"]
    hyperparams = json.loads(Path(client.download_artifacts(outcome.run_id, "evaluation/hyperparams.json")).read_text())
    assert hyperparams == {**params.train.hyperparams, **summary["best_params"]}
    assert {k: str(v) for k, v in summary["best_params"].items()} == {
        k.removeprefix("model."): v for k, v in best.data.params.items()
    }
    # ... then the same gate and registration as a plain training run.
    assert outcome.status == "registered"
    assert candidate.data.tags["gate.status"] == "passed"
    version = client.get_model_version(settings.model_name, outcome.version)
    assert version.run_id == outcome.run_id
    assert candidate.info.run_name == f"train-v{outcome.version}"
    parent = client.get_run(parent_id)
    assert parent.info.run_name == f"train-v{outcome.version}-search"
    assert {a.path for a in client.list_artifacts(parent_id, "search")} >= {"search/trials.md", "search/objective.png"}
    card = Path(client.download_artifacts(outcome.run_id, "model_card.md")).read_text(encoding="utf-8")
    assert "| search |" in card  # the search chose this model, so its card shows the space it searched
    # `mlops-lab reproduce` rebuilds the chosen model from the registered version's run: identical predictions.
    report = reproduce_version(settings, outcome.version)
    assert report.identical
    assert report.max_probability_diff == 0.0


def test_slices_by_group_column_reach_the_gate(lab, tmp_path: Path) -> None:
    settings, params, data = lab
    batch = generate_batch("clean", read_csv(data), params, rows=400, seed=5, with_source=True)
    path = write_batch(batch, tmp_path / "with-source.csv", "clean")
    outcome = run_training(settings, params, path)
    parity = next(c for c in outcome.gate["checks"] if c["name"] == "slice_parity")
    families = {case["family"] for case in parity["cases"]}
    assert families == {"class", params.dataset.group_column}
    sources = {case["slice"] for case in parity["cases"] if case["family"] == params.dataset.group_column}
    assert sources == set(batch[params.dataset.group_column])
