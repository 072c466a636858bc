"""Demo ``security``: every protection of the API answered live, and a scan for committed secrets.

Concept: security of a model service (C44). A model server is an HTTP service like any other, so
the usual defences apply, each refusing as early and as cheaply as it can:

- the **admin API** (routing, promote, rollback) needs ``Authorization: Bearer <MLOPS_ADMIN_TOKEN>``:
  none is 401, a wrong one 403, and without a configured token the routes do not exist (404);
- **input limits**: a body over ``MLOPS_MAX_BODY_BYTES`` is 413 before it is read, a batch over
  the schema's row limit is 422 naming ``rows``;
- a **per-client rate limit** (token bucket per IP) answers 429 with ``Retry-After``;
- **CORS is off** unless origins are configured, so another site's page cannot read the answers;
- **no secrets in the repository**: tokens come from the environment. `find_secrets` scans the
  files git would commit for three precise kinds of secret, and `env_files_not_ignored` checks
  that ``.env`` files stay out of git (tests/unit/lab/demos/test_security.py runs both on every commit).

The demo token is made fresh with ``secrets.token_urlsafe`` for this run and never written down.
"""

from __future__ import annotations

import json
import re
import secrets
import subprocess
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from lab.demos.prep import ensure_champion
from lab.demos.traffic import running_service
from serving.app import create_app
from serving.contract import MAX_BATCH_ROWS

if TYPE_CHECKING:
    from core.context import LabContext
    from lab.demos.traffic import DemoService
    from lab.narrate import Narrator

# Three kinds of secret, kept precise so that a finding is worth stopping a commit for.
PLACEHOLDER = re.compile(r"example|changeme|change-me|dummy|placeholder|fake|sample|redacted|test|xxxx|[<{$]")
SECRET_PATTERNS: dict[str, re.Pattern[str]] = {
    # PEM / OpenSSH private key blocks: "-----BEGIN [RSA |EC |OPENSSH |ENCRYPTED ...]PRIVATE KEY-----"
    "private key": re.compile(r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----"),
    # AWS access key ids: long-term (AKIA) and temporary (ASIA), 20 upper-case characters
    "AWS access key id": re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"),
    # password / secret / token / api key = a literal of 8+ characters: quoted, or unquoted in KEY=value lines
    "password-like assignment": re.compile(
        r"""(?ix) \b [\w.-]*? (?:password|passwd|secret|token|api_?key|access_?key) [\w.-]* \s* [:=] \s*
        (?: "([^"\s]{8,})" | '([^'\s]{8,})' | (?<==)([^\s"'$`\#;]{8,})\s*$ )""",
        re.MULTILINE,
    ),
}
ENV_FILES = (".env", ".env.local", "serving/.env", "secrets.env")  # samples that must be git-ignored


def committable_files(repo: Path) -> list[Path] | None:
    """The files git tracks or would add (``git add -A``), or None when ``repo`` is not a git checkout."""
    try:
        listed = subprocess.run(
            ["git", "-C", str(repo), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            capture_output=True,
            check=True,
            timeout=30,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    paths = {repo / name for name in listed.decode().split("\0") if name}
    return sorted(p for p in paths if p.is_file())  # a tracked file deleted from the worktree is not there


def find_secrets(files: list[Path], repo: Path) -> list[str]:
    """``path:line: kind`` for each line matching `SECRET_PATTERNS` (placeholder values excepted; binaries skipped).

    A placeholder value: names an example or a test, or holds ``<``, ``{`` or ``$`` (a template or a variable).
    """
    findings: dict[tuple[Path, int], str] = {}  # one finding per line: the first kind that matches
    for path in files:
        raw = path.read_bytes()
        if b"\0" in raw[:8192]:
            continue
        text = raw.decode("utf-8", errors="replace")
        for kind, pattern in SECRET_PATTERNS.items():
            for match in pattern.finditer(text):
                value = next((g for g in match.groups() if g), match.group(0))
                if kind == "password-like assignment" and PLACEHOLDER.search(value.lower()):
                    continue
                line = text.count("\n", 0, match.start()) + 1
                findings.setdefault((path, line), f"{path.relative_to(repo)}:{line}: {kind}")
    return list(findings.values())


def env_files_not_ignored(repo: Path, files: list[Path]) -> list[str]:
    """``.env``-like files that git would commit: committable ones, and samples the ignore rules miss."""
    committed = [str(p.relative_to(repo)) for p in files if p.name == ".env" or p.name.endswith(".env")]
    missed = []
    for sample in ENV_FILES:
        check = subprocess.run(["git", "-C", str(repo), "check-ignore", "-q", "--no-index", sample], timeout=30)
        if check.returncode != 0:  # 0: ignored, 1: not ignored
            missed.append(sample)
    return committed + missed


def _admin(n: Narrator, service: DemoService, token: str) -> None:
    client, url = service.client, "/v1/admin/state"
    missing = client.get(url)
    wrong = client.get(url, headers={"Authorization": "Bearer not-the-token"})
    right = client.get(url, headers={"Authorization": f"Bearer {token}"})
    challenge = f"WWW-Authenticate: {missing.headers.get('www-authenticate')}"
    n.table(
        f"GET {url}",
        ["Authorization header", "status", "answer"],
        [
            ["(none)", missing.status_code, f"{missing.json()['error']}; {challenge}"],
            ["Bearer not-the-token", wrong.status_code, wrong.json()["error"]],
            ["Bearer <the token>", right.status_code, f"routing strategy {right.json()['routing']['strategy']}, ..."],
        ],
    )


def _steering(n: Narrator, service: DemoService, token: str) -> None:
    """Who may force an arm, who may label an answer, and what a reused request id gets."""
    client = service.client
    row = service.rows(2, seed=6)[service.ctx.params.dataset.feature_names].to_dict("records")
    anonymous = client.post("/v1/predict", json=row[0], headers={"X-Force-Arm": "champion"})
    operator = client.post(
        "/v1/predict", json=row[0], headers={"X-Force-Arm": "champion", "Authorization": f"Bearer {token}"}
    )
    n.say(f"X-Force-Arm without the admin token → {anonymous.status_code}; with it → {operator.status_code}, "
          f"logged as strategy {operator.json()['strategy']!r}")  # fmt: skip
    rid = f"security-demo-{secrets.token_hex(4)}"
    answer = client.post("/v1/predict", json=row[0], headers={"X-Request-Id": rid})
    reused = client.post("/v1/predict", json=row[1], headers={"X-Request-Id": rid})
    n.say(f"the same X-Request-Id with other features → {reused.status_code}: {reused.json()['error'][:60]}...")
    service.flush()
    label = {"request_id": rid, "label": answer.json()["predictions"][0]["class"]}
    stranger = client.post("/v1/feedback", json=label)
    forged = client.post("/v1/feedback", json=label, headers={"X-Feedback-Token": "a-guessed-token-value"})
    owner = client.post("/v1/feedback", json=label, headers={"X-Feedback-Token": answer.json()["feedback_token"]})
    n.say(f"feedback without the answer's X-Feedback-Token → {stranger.status_code}, with a guessed one → "
          f"{forged.status_code}, with the answer's own → {owner.status_code} {owner.json()['status']}")  # fmt: skip
    n.why(
        "forced requests are for operators and stay out of every canary analysis, A/B test, bandit reward and "
        "monitoring window; labels are write-once, so only the caller that got the answer (an HMAC-SHA256 token "
        "over its request id) or a labelling pipeline with the admin token may give one"
    )


def _limits(n: Narrator, service: DemoService) -> None:

    client, limit = service.client, service.ctx.settings.max_body_bytes
    big = client.post("/v1/predict", content=b" " * (limit + 1), headers={"Content-Type": "application/json"})
    n.say(f"{limit + 1:,} bytes → {big.status_code}: {big.json()['error']}")
    row = service.rows(1, seed=5)[service.ctx.params.dataset.feature_names].to_dict("records")[0]
    body = json.dumps({"rows": [row] * (MAX_BATCH_ROWS + 1)}, separators=(",", ":")).encode()
    if len(body) > limit:
        n.say(f"[dim]a {MAX_BATCH_ROWS + 1:,}-row batch is {len(body):,} bytes, over the body limit: 413 first[/dim]")
    many = client.post("/v1/predict", content=body, headers={"Content-Type": "application/json"})
    field, message = many.json()["detail"][0]["field"], many.json()["detail"][0]["msg"]
    n.say(f"{MAX_BATCH_ROWS + 1:,} rows ({len(body):,} bytes) → {many.status_code}: field {field!r}, {message}")
    n.why("refused before any model work: a 413 is decided from Content-Length alone, before a byte is read")


def _rate_limit(n: Narrator, ctx: LabContext) -> None:
    from fastapi.testclient import TestClient

    settings = ctx.settings.model_copy(update={"rate_limit_per_s": 1.0, "rate_limit_burst": 3, "access_log": False})
    client = TestClient(create_app(settings, ctx.params))  # no lifespan: the limiter answers before any route
    answers = [client.get("/healthz") for _ in range(5)]
    n.say(
        "rate 1 request/s, burst 3 (MLOPS_RATE_LIMIT_PER_S, MLOPS_RATE_LIMIT_BURST); 5 requests at once → "
        + " ".join(str(a.status_code) for a in answers)
    )
    n.say(f"the 429 says when to come back: Retry-After: {answers[-1].headers.get('retry-after')} s")
    n.why(
        "a token bucket per client IP (never per X-User-Id, which the client picks); the flood is refused at the "
        "edge, cheaply, and other clients keep their own buckets"
    )


def _cors(n: Narrator, service: DemoService) -> None:
    preflight = {"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"}
    answer = service.client.options("/v1/predict", headers=preflight)
    allowed = answer.headers.get("access-control-allow-origin")
    (n.ok if allowed is None else n.bad)(
        f"preflight from https://evil.example: {answer.status_code}, Access-Control-Allow-Origin: {allowed or 'absent'}"
    )
    n.say("so a browser refuses to hand our answers to that page; MLOPS_CORS_ORIGINS='[\"https://ui\"]' allows one")


def _repository(n: Narrator, ctx: LabContext) -> None:
    repo = ctx.settings.project_dir
    files = committable_files(repo)
    if files is None:
        n.say(f"[dim]{repo} is not a git checkout: nothing to scan[/dim]")
        return
    findings = find_secrets(files, repo)
    n.say(f"scanned {len(files)} files (tracked, or what `git add -A` would add) for: {', '.join(SECRET_PATTERNS)}")
    (n.ok if not findings else n.bad)(f"{len(findings)} finding(s)" + "".join(f"\n     {f}" for f in findings))
    exposed = env_files_not_ignored(repo, files)
    (n.ok if not exposed else n.bad)(
        f".env files git-ignored: {', '.join(ENV_FILES)}"
        if not exposed
        else f"git would commit: {', '.join(exposed)}; add `.env`, `.env.*` and `*.env` to .gitignore"
    )
    n.why("secrets come from the environment (MLOPS_ADMIN_TOKEN), never from files in git: history keeps them forever")


def run(n: Narrator, ctx: LabContext) -> None:
    """Admin auth, input limits, rate limit, CORS and the repository scan, each shown live."""
    from fastapi.testclient import TestClient

    n.title("Security: who may change the service, what it accepts, how much, and from where", "C44 security")
    ensure_champion(ctx, n)
    token = secrets.token_urlsafe(24)
    update = {"admin_token": token, "cors_origins": [], "access_log": False}
    with running_service(replace(ctx, settings=ctx.settings.model_copy(update=update))) as service:
        n.step("The admin API needs the bearer token (MLOPS_ADMIN_TOKEN; a fresh random one for this demo)")
        _admin(n, service, token)
        off = TestClient(create_app(ctx.settings.model_copy(update={"admin_token": None}), ctx.params))
        absent = off.get("/v1/admin/state").status_code  # no lifespan needed: the routes are not even there
        n.say(f"without MLOPS_ADMIN_TOKEN the routes do not exist: GET /v1/admin/state → {absent}")
        n.why("compared with hmac.compare_digest (constant time); X-Actor only names who acted in the audit log")

        n.step("Nobody else steers the canary or labels your answers")
        _steering(n, service, token)

        n.step("Input limits: refused before the model runs")
        _limits(n, service)

        n.step("CORS is off by default")
        _cors(n, service)

    n.step("Per-client rate limit")
    _rate_limit(n, ctx)

    n.step("No secrets in the repository")
    _repository(n, ctx)
    n.code(
        "serving/admin.py",
        "serving/credentials.py (admin token, feedback token)",
        "serving/request_ids.py",
        "serving/limits.py",
        "core/settings.py (admin_token, limits)",
        "tests/unit/lab/demos/test_security.py",
    )
