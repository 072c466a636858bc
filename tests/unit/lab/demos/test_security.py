"""No secrets in the repository (C44): every file git would commit is scanned on every test run.

What is checked (`lab.demos.security.SECRET_PATTERNS`, kept few and precise so a hit is real):
private key blocks (PEM / OpenSSH), AWS access key ids (AKIA/ASIA + 16 characters), and
``password`` / ``secret`` / ``token`` / ``api_key`` / ``access_key`` names assigned a literal of 8+
characters (quoted, or unquoted in ``KEY=value`` lines) that is not a placeholder (``changeme``,
``example``, ``${VAR}``, anything with ``test`` ...). The files are those ``git ls-files`` lists
plus untracked ones that are not ignored: what ``git add -A`` would commit. And ``.env`` files,
where local secrets usually live, must be git-ignored.

The planted secrets below are assembled at run time, so this file never contains one itself.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from lab.demos.security import SECRET_PATTERNS, committable_files, env_files_not_ignored, find_secrets

REPO = Path(__file__).resolve().parents[4]
KEY_HEADER = "-----BEGIN " + "OPENSSH PRIVATE KEY" + "-----"
AWS_KEY_ID = "AKIA" + "Q7X2M4PL9RT3VW6Z"
REAL_LOOKING = "h7Gq" + "2pXv9LmN4sWz"


@pytest.fixture(scope="module")
def files() -> list[Path]:
    listed = committable_files(REPO)
    if listed is None:
        pytest.skip(f"{REPO} is not a git checkout: nothing to scan")
    return listed


@pytest.mark.integration
def test_no_committable_file_holds_a_secret(files: list[Path]) -> None:
    assert len(files) > 50  # the scan sees the repository, not an empty listing
    assert REPO / "lab" / "demos" / "security.py" in files
    assert find_secrets(files, REPO) == [], "remove the secret (and rotate it: git history keeps it)"


@pytest.mark.integration
def test_env_files_are_git_ignored(files: list[Path]) -> None:
    assert env_files_not_ignored(REPO, files) == [], "add `.env`, `.env.*` and `*.env` to .gitignore"


def test_each_kind_of_secret_is_found_and_placeholders_are_not(tmp_path: Path) -> None:
    planted = {
        "key.pem": f"{KEY_HEADER}\nb3BlbnNzaC1rZXktdjEAAAAA\n",
        "deploy.sh": f"export AWS_ACCESS_KEY_ID={AWS_KEY_ID}\n",
        "settings.py": f'DB = "sqlite"\nadmin_password = "{REAL_LOOKING}"\n',
        "ci.env": f"API_TOKEN={REAL_LOOKING}\n",
        "config.yaml": f"service:\n  client_secret: '{REAL_LOOKING}'\n",
    }
    spared = {
        "docs.md": 'password = "changeme123"\napi_key: "${API_KEY}"\ntoken = "<your token here>"\n',
        "app.py": "token = settings.admin_token\nsecret = secrets.token_urlsafe(32)\nMIN_TOKEN_CHARS = 16\n",
        "test_api.py": 'TOKEN = "admin-test-token-4f9c2b7e"\n',
        "run.sh": 'MLOPS_ADMIN_TOKEN="$(cat /run/secrets/token)"\n',
        "blob.bin": "\0" + KEY_HEADER,
    }
    for name, text in {**planted, **spared}.items():
        (tmp_path / name).write_text(text)
    found = find_secrets(sorted(tmp_path.iterdir()), tmp_path)
    assert sorted(found) == [
        "ci.env:1: password-like assignment",
        "config.yaml:2: password-like assignment",
        "deploy.sh:1: AWS access key id",
        "key.pem:1: private key",
        "settings.py:2: password-like assignment",
    ]
    assert set(SECRET_PATTERNS) == {"private key", "AWS access key id", "password-like assignment"}
