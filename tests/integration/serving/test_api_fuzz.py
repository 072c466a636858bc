"""API contract fuzzing (C42): schemathesis checks the app against its own OpenAPI document.

Every operation of ``/openapi.json`` -- the native, MLflow and Open Inference (V2) routes, health
and metrics, and the admin API -- is called in-process (ASGI) with requests that schemathesis
derives from the published document: valid ones and deliberately invalid ones (wrong types, missing
or extra fields, values out of range), each sent with the admin token or without it, against a real
registry (v1 champion, v2 challenger) and a real feature store (a small seeded history, for rows sent as an
entity id). Every check the installed schemathesis has is run on every
answer (`CHECKS`): no 5xx; the status, media type, body and headers are the documented ones; a
request the document allows is accepted and one it forbids is refused. The stateful checks
(``use_after_free``, ``ensure_resource_availability``) and the coverage-phase ones
(``missing_required_header``, ``unsupported_method``, ``allow_header_conformance``) run too, and pass
trivially here: this API creates and deletes no resources, and cases come from the generate phase.

The document describes the raw-body protocols itself (``/invocations``: MLflow's JSON shapes and CSV;
``/v2/.../infer``: the InferenceRequest), in the strict form where a rule spans fields (see
`serving.mlflow_protocol` and `serving.oip`). The test works on a copy that only narrows free
strings to real values so valid cases reach real work: ``{name}``/``{version}``, feedback ids and entity ids
are drawn from the served model, its versions, served requests and the store's specimens, plus one unknown
of each (invalid
cases still send arbitrary strings). Statuses are read from the document, never listed here: a
route that learns a new, documented answer passes unchanged.

Each operation is its own test id, parametrized over ``APIOperation.as_strategy`` (valid and invalid
cases) rather than ``@schema.parametrize()``, whose items share one node id under pytest 9.
schemathesis' ASGI transport starts the app's lifespan on the first call and its pytest plugin stops
it after each test. Bounded and derandomized: ``MAX_EXAMPLES`` per operation, no deadline, no
shrinking. The rate limit is off in this app (a 429 would depend on timing); its refusal is tested
in tests/unit/serving/test_limits.py, and the document lists it whenever it is on.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import CHECKS, load_all_checks

from core.params import Params, load_params
from core.settings import Settings
from pipelines.data import build_raw_frame, ingest
from pipelines.feature_history import ENTITY_KEY, generate_history, specimen_id
from pipelines.feature_store import FeatureRepo, apply, materialize, write_history
from pipelines.training_steps import run_training
from serving import credentials
from serving.app import create_app

pytestmark = [pytest.mark.integration, pytest.mark.slow]
REPO = Path(__file__).resolve().parents[3]
MAX_EXAMPLES = 40
TOKEN = "workshop-admin-token-example"
VERSIONS = ["1", "2"]  # the registry the `app` fixture builds
# Request ids the `app` fixture serves, so feedback is fuzzed against known predictions: an unknown id
# is answered 404 only after a bounded wait (~1 s: another worker may not have written it yet).
SERVED = ["fuzz-served-0", "fuzz-served-1"]
SPECIMENS = 10  # the feature store's seeded history: ids sp-00000..sp-00009, measured within 30 days
# Within the age limit, so a schema-valid entity row is served (or 404 for the unknown id). A stale one is a 422,
# which schemathesis counts as valid data refused; that refusal is tested in test_predict_by_entity.py.
FEATURE_MAX_AGE_S = 45 * 86400.0
PARAMS = load_params(REPO / "params.yaml")  # the spec is built from the dataset contract
APP_SETTINGS = {"admin_token": TOKEN, "rate_limit_per_s": 0.0}
SPEC_SETTINGS = Settings(
    project_dir=REPO, state_dir=REPO / ".state", **APP_SETTINGS
)  # building an app touches no state
ROW = {name: (spec.min + spec.max) / 2 for name, spec in PARAMS.dataset.features.items()}  # a valid row
load_all_checks()
CHECKS_RUN = CHECKS.get_all()  # every check this schemathesis version has


def with_real_names(spec: dict[str, Any], model_name: str) -> dict[str, Any]:
    """A copy of ``spec`` whose model names, versions and feedback ids are drawn from real ones (and one unknown)."""
    spec = copy.deepcopy(spec)
    known = {"name": [model_name, "no-such-model"], "version": [*VERSIONS, "99"]}
    for operations in spec["paths"].values():
        for operation in operations.values():
            for parameter in operation.get("parameters", []):
                if parameter["in"] == "path" and parameter["name"] in known:
                    parameter["schema"] = {"type": "string", "enum": known[parameter["name"]]}
    feedback_id = spec["components"]["schemas"]["FeedbackRequest"]["properties"]["request_id"]
    feedback_id["enum"] = [*SERVED, "never-served"]  # see SERVED
    entity_id = spec["components"]["schemas"]["PredictEntityRow"]["properties"][ENTITY_KEY]
    entity_id["enum"] = [*(specimen_id(i) for i in range(SPECIMENS)), "sp-99999"]  # see SPECIMENS
    return spec


def example_cases(operation: schemathesis.APIOperation) -> list[schemathesis.Case]:
    """One case per documented body example, aimed at the served model (the happy path, always sent)."""
    content = operation.definition.raw.get("requestBody", {}).get("content", {})
    path = {"name": SPEC_SETTINGS.model_name, "version": VERSIONS[0]}
    path = {p.name: path.get(p.name) or p.definition["schema"]["enum"][0] for p in operation.path_parameters}
    return [
        operation.Case(path_parameters=path, body=c["example"], media_type=m)
        for m, c in content.items()
        if "example" in c
    ]


def _call(case: schemathesis.Case, app: FastAPI, authorised: bool) -> None:
    """Call the app in-process with or without the admin token; every check must pass on the answer."""
    # Only our token or none is sent: a generated one is a wrong token, and 10 wrong tokens lock this client
    # out of the admin API (429 for a while: tests/integration/serving/test_admin.py proves that and the 403).
    # A case whose point was a malformed Authorization header is sent without one (still invalid: a 401).
    malformed = (
        case.meta is not None and case.meta.generation.mode.is_negative and "Authorization" in (case.headers or {})
    )
    auth = {"Authorization": f"Bearer {TOKEN}"} if authorised and not malformed else None
    if case.headers:
        case.headers.pop("Authorization", None)
    response = case.call(app=app, headers=auth)
    case.validate_response(response, checks=CHECKS_RUN, headers=auth, transport_kwargs={"app": app})


schemathesis.serializer.alias("text/csv", "text/plain")  # a generated CSV body is sent as its text
schema = schemathesis.openapi.from_dict(
    with_real_names(create_app(SPEC_SETTINGS, PARAMS).openapi(), SPEC_SETTINGS.model_name)
)
schema.app = create_app(
    SPEC_SETTINGS, PARAMS
)  # an ASGI app selects the in-process transport (each call passes the real one)
OPERATIONS = {result.ok().label: result.ok() for result in schema.get_all_operations()}
FAST_FAIL = [Phase.explicit, Phase.reuse, Phase.generate]  # no shrinking: a failure is reported in seconds
HUGE = 1e308  # a finite JSON number far outside the contract (it used to overflow inside the pipeline: a 500)


def _tensor(data: list[float] | None = None, **parameters: Any) -> dict[str, Any]:
    tensor = {"name": "f", "shape": [1, len(ROW)], "datatype": "FP64", "parameters": parameters}
    return {"inputs": [tensor | ({} if data is None else {"data": data})]}


EDGE_CASES = {  # name: (operation, JSON body)
    "predict-huge": ("POST /v1/predict", {**ROW, "sepal_length": HUGE}),
    "invocations-huge": ("POST /invocations", {"dataframe_records": [{**ROW, "sepal_length": HUGE}]}),
    "infer-huge": ("POST /v2/models/{name}/infer", _tensor([HUGE, *list(ROW.values())[1:]])),
    "infer-bad-binary-size": ("POST /v2/models/{name}/infer", _tensor(binary_data_size="x")),
}


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory, make_settings, params: Params) -> Iterator[FastAPI]:
    """The app over a real registry (v1 champion, v2 challenger) that has served the SERVED requests.

    Its admin API tolerates many failed authentications: after each authorised 2xx, schemathesis'
    ``ignored_auth`` check resends the request with a wrong token (it must be refused), and the 11th
    would lock the test client out for the rest of the run (that lockout is tested in test_admin.py).
    """
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(credentials, "FAILED_AUTH_BURST", 1_000_000)
        yield _served_app(tmp_path_factory.mktemp("fuzz"), make_settings, params)


def _served_app(root: Path, make_settings, params: Params) -> FastAPI:
    repo = FeatureRepo(root / "feature_repo")
    state = make_settings(root / "state", poll_interval_s=3600, feature_repo=repo.root,
                          feature_max_age_s=FEATURE_MAX_AGE_S, **APP_SETTINGS)  # fmt: skip
    assert state.model_name == SPEC_SETTINGS.model_name
    data = ingest(params.dataset, params.ingest, root / "iris.csv")
    assert [run_training(state, params, data).version for _ in VERSIONS] == VERSIONS
    now = datetime.now(UTC)
    history = generate_history(build_raw_frame(params.dataset, params.ingest), params.dataset, specimens=SPECIMENS,
                               open_share=0.3, seed=3, end=now)  # fmt: skip
    write_history(repo, history)
    materialize(apply(repo, params.dataset), end=now)
    app = create_app(state, params)
    assert app.openapi() == create_app(SPEC_SETTINGS, params).openapi()  # the document fuzzed is this app's
    for request_id in SERVED:
        case = OPERATIONS["POST /v1/predict"].Case(body=ROW, headers={"X-Request-Id": request_id})
        assert case.call(app=app).status_code == 200
    return app


@pytest.mark.parametrize("label", list(OPERATIONS))
def test_every_operation_conforms_to_the_document(label: str, app: FastAPI) -> None:
    operation = OPERATIONS[label]
    for case in example_cases(operation):
        for authorised in (True, False):
            _call(case, app, authorised)
    valid_and_invalid = st.one_of(
        operation.as_strategy(GenerationMode.POSITIVE), operation.as_strategy(GenerationMode.NEGATIVE)
    )

    @given(case=valid_and_invalid, authorised=st.booleans())
    @settings(
        max_examples=MAX_EXAMPLES,
        derandomize=True,
        database=None,
        deadline=None,
        phases=FAST_FAIL,
        suppress_health_check=list(HealthCheck),
    )
    def fuzz(case: schemathesis.Case, authorised: bool) -> None:
        _call(case, app, authorised)

    fuzz()


@pytest.mark.parametrize(("label", "body"), [pytest.param(*case, id=name) for name, case in EDGE_CASES.items()])
def test_edge_inputs_found_by_fuzzing_are_client_errors(label: str, body: Any, app: FastAPI) -> None:
    """Inputs the fuzzer found (and their neighbours on other routes), pinned so every run checks them."""
    operation = OPERATIONS[label]
    path = {p.name: SPEC_SETTINGS.model_name for p in operation.path_parameters}
    case = operation.Case(path_parameters=path, body=body, media_type="application/json")
    response = case.call(app=app)
    assert 400 <= response.status_code < 500, response.text
    case.validate_response(response, checks=CHECKS_RUN, transport_kwargs={"app": app})
