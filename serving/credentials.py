"""Who may steer traffic and who may label it: the admin token check and the feedback token.

Concept: API security (C44). Two things change what the service learns from its traffic: forcing a
request onto an arm (``X-Force-Arm``) and labelling a prediction (``/v1/feedback``). Both are
authenticated here, once, for every protocol:

- `AdminGate` checks ``Authorization: Bearer <MLOPS_ADMIN_TOKEN>`` for the admin API and for a forced
  arm. No token is 401 (with ``WWW-Authenticate``), a wrong one 403, and a client that failed more than
  ``FAILED_AUTH_BURST`` times is 429 before its token is even compared, one more try every 6 s. The
  comparison is ``hmac.compare_digest``, whose time does not depend on where the strings differ. Without
  an admin token configured nothing can pass the gate: a forced arm is then always refused.
- `FeedbackSigner` issues a token with every prediction: HMAC-SHA256 over the request id under a key
  (``MLOPS_FEEDBACK_KEY``; without it a key derived from the admin token with a labelled HMAC, so
  every replica that shares the admin token agrees; without either a random key, which ``mlops-lab serve``
  makes once and hands to all of its workers, and which other replicas do not know: so a deployment of
  several replicas sets one of the two, as the Kubernetes manifests do with the admin token's secret).
  Feedback must bring it back (or the admin token, for labelling pipelines), so only the caller who got
  the answer -- or an operator -- can label it; labels are write-once, and an
  attacker who could label first would block the true label. One token covers every row of a batch
  (row ids are ``<request id>:<i>``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import math
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from serving.limits import RateLimiter

log = logging.getLogger(__name__)
MIN_TOKEN_CHARS = 16
# Failed authentications per client: a burst of 10, then one every 6 s. While a client is over it, every
# authenticated request from it is 429 before the token is compared, so guessing runs at 10 a minute at most.
FAILED_AUTH_BURST, FAILED_AUTH_PER_S = 10, 1 / 6
FEEDBACK_KEY_LABEL = b"mlops-lab feedback-token key v1"
USER_KEY_LABEL = b"mlops-lab user-key key v1"
USER_KEY_CHARS = 32  # hex characters kept of the HMAC: 128 bits
FEEDBACK_HEADER = "X-Feedback-Token"


class CredentialError(Exception):
    """A credential the service refuses: HTTP status, message with the fix, the header at fault, extra headers."""

    def __init__(self, status: int, message: str, field: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.field, self.headers = status, field, headers


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header value, else None (other schemes too)."""
    if not authorization:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


class AdminGate:
    """The admin token check shared by the admin API and every other place that needs the operator."""

    def __init__(
        self, token: str | None, failures: RateLimiter | None = None, people: Mapping[str, str] | None = None
    ) -> None:
        token = (token or "").strip()
        self._expected = token.encode() if token else None
        self.failures = failures or RateLimiter(FAILED_AUTH_PER_S, FAILED_AUTH_BURST)
        self._people = [(name, secret.strip().encode()) for name, secret in (people or {}).items()]

    @property
    def configured(self) -> bool:
        return self._expected is not None

    @property
    def personal(self) -> bool:
        """Personal approval tokens are set (``MLOPS_APPROVER_TOKENS``): approvals carry an authenticated name."""
        return bool(self._people)

    def person(self, token: str) -> str | None:
        """The owner of a personal approval token, or None; every token is compared (constant time each)."""
        given, owner = token.encode(), None
        for name, secret in self._people:
            if hmac.compare_digest(given, secret):
                owner = name
        return owner

    def admits(self, token: str | None) -> bool:
        """True for the admin token (constant-time); counts nothing, for callers that have another way in."""
        return self._expected is not None and token is not None and hmac.compare_digest(token.encode(), self._expected)

    def throttled(self, client: str, what: str) -> None:
        """Raise 429 while ``client`` is over its failed-authentication budget (before anything is compared)."""
        if (wait := self.failures.waiting(client)) > 0:
            raise CredentialError(
                429,
                f"{what}: too many failed authentications from {client}; retry in {math.ceil(wait)} s",
                "Authorization",
                {"Retry-After": str(math.ceil(wait))},
            )

    def failed(self, client: str) -> None:
        """Count a failed authentication against ``client``'s budget."""
        self.failures.check(client)

    def check(self, client: str, token: str | None, what: str, *, personal: bool = False) -> str | None:
        """Let the admin token through; 429 / 401 / 403 otherwise, naming ``what`` needs it.

        Args:
            client: the rate-limit key of the caller (`serving.limits.client_key`).
            token: the bearer token the request sent (`bearer_token`), None without one.
            what: what is being authorised, e.g. "admin API" or "X-Force-Arm", for the message.
            personal: a personal approval token is let through too (the approval routes).

        Returns:
            The owner's name when a personal token was let through; None for the admin token.
        """
        self.throttled(client, what)
        if token is None:
            raise CredentialError(
                401,
                f"{what} needs the header Authorization: Bearer <MLOPS_ADMIN_TOKEN>",
                "Authorization",
                {"WWW-Authenticate": 'Bearer realm="mlops-lab admin"'},
            )
        if self.admits(token):
            return None
        if personal and (owner := self.person(token)) is not None:
            return owner
        self.failed(client)
        unset = "" if self.configured else " (no MLOPS_ADMIN_TOKEN is set on this service, so nothing is)"
        yours = " or your own MLOPS_APPROVER_TOKEN" if personal and self.personal else ""
        raise CredentialError(
            403, f"{what}: wrong token; use the service's MLOPS_ADMIN_TOKEN{yours}{unset}", "Authorization"
        )


@dataclass(frozen=True)
class FeedbackKey:
    """The feedback-token key and where it came from (the key itself is never shown)."""

    key: bytes
    source: str  # "MLOPS_FEEDBACK_KEY", "derived from MLOPS_ADMIN_TOKEN" or "random, this process only"


def feedback_key(feedback_secret: str | None, admin_token: str | None) -> FeedbackKey:
    """The key every replica must share: the configured secret, else one derived from the admin token.

    The derivation is HMAC-SHA256(admin token, a fixed label) -- an HKDF-style extract with a label of
    its own, so a feedback token reveals nothing about the admin token and cannot be used as one.
    """
    if feedback_secret and feedback_secret.strip():
        if (n := len(feedback_secret.strip())) < MIN_TOKEN_CHARS:
            raise ValueError(
                f"MLOPS_FEEDBACK_KEY has {n} characters; it needs at least {MIN_TOKEN_CHARS}. "
                "Make one with: python -c 'import secrets; print(secrets.token_urlsafe(32))'"
            )
        return FeedbackKey(feedback_secret.strip().encode(), "MLOPS_FEEDBACK_KEY")
    if admin_token and admin_token.strip():
        derived = hmac.new(admin_token.strip().encode(), FEEDBACK_KEY_LABEL, hashlib.sha256).digest()
        return FeedbackKey(derived, "derived from MLOPS_ADMIN_TOKEN")
    log.warning(
        "neither MLOPS_FEEDBACK_KEY nor MLOPS_ADMIN_TOKEN is set: feedback tokens use a random key of this "
        "process, which other workers and replicas refuse; set MLOPS_FEEDBACK_KEY when running more than one"
    )
    return FeedbackKey(secrets.token_bytes(32), "random, this process only")


class FeedbackSigner:
    """Issues and checks the per-prediction feedback token (HMAC-SHA256 over the request id)."""

    def __init__(self, key: FeedbackKey) -> None:
        self.source = key.source
        self._key = key.key

    def token(self, request_id: str) -> str:
        """The token for a request id (43 URL-safe characters, 256 bits)."""
        mac = hmac.digest(self._key, request_id.encode(), "sha256")  # one-shot: OpenSSL's, no HMAC object
        return base64.urlsafe_b64encode(mac)[:43].decode()  # 32 bytes = 43 characters and one "=" of padding

    def valid(self, row_id: str, token: str) -> bool:
        """Does ``token`` belong to the request of ``row_id`` (a request id, or ``<request id>:<row>``)?"""
        return hmac.compare_digest(self.token(row_id.partition(":")[0]).encode(), token.encode())


class UserKeys:
    """The pseudonymous user key logged with each prediction: HMAC-SHA256 of ``X-User-Id``, 32 hex characters.

    Keyed with HMAC(secret, a label of its own). The secret is ``MLOPS_USER_KEY_SECRET``, else the feedback
    key (`user_keys`), so every replica that shares it gives one user the same key, a user key reveals
    nothing about feedback tokens, and without the secret nobody can test a guessed user id against the
    log. The raw user id is never stored. Rotation (`previous`): new rows get the new key, rows already
    written keep the old one (the raw id to recompute them is gone), so the log cannot link a user's rows
    across a rotation -- an A/B test running across it sees returning users as new ones. Only someone who
    holds the raw id and the previous secrets can find both (`candidates`, which erasure uses). With a
    random per-process key (no secret set at all) keys change at every restart.
    """

    def __init__(self, key: FeedbackKey, previous: Sequence[bytes] = ()) -> None:
        self.source = key.source
        self._key = hmac.digest(key.key, USER_KEY_LABEL, "sha256")
        self._previous = [hmac.digest(p, USER_KEY_LABEL, "sha256") for p in previous]

    def key(self, user_id: str | None) -> str | None:
        """The user's key, or None without a user id (the request is then its own unit)."""
        if not user_id:
            return None
        return hmac.digest(self._key, user_id.encode(), "sha256").hex()[:USER_KEY_CHARS]

    def candidates(self, user_id: str) -> list[str]:
        """The user's key under the current secret and under every previous one: all their rows, across rotations."""
        keys = [self._key, *self._previous]
        return [hmac.digest(k, user_id.encode(), "sha256").hex()[:USER_KEY_CHARS] for k in keys]


def user_keys(secret: str | None, previous: Sequence[str], feedback: FeedbackKey | None) -> UserKeys:
    """The user keys of the settings: keyed by ``secret`` (MLOPS_USER_KEY_SECRET), else by the feedback key.

    Raises:
        ValueError: a secret (current or previous) shorter than ``MIN_TOKEN_CHARS``, or neither a secret nor
            a feedback key.
    """
    for name, value in [("MLOPS_USER_KEY_SECRET", secret or ""), *(("MLOPS_USER_KEY_PREVIOUS", p) for p in previous)]:
        if value.strip() and len(value.strip()) < MIN_TOKEN_CHARS:
            raise ValueError(f"{name} holds a secret of {len(value.strip())} characters; it needs {MIN_TOKEN_CHARS}")
    current = FeedbackKey(secret.strip().encode(), "MLOPS_USER_KEY_SECRET") if secret and secret.strip() else feedback
    if current is None:
        raise ValueError("user keys need MLOPS_USER_KEY_SECRET or the feedback key")
    return UserKeys(current, [p.strip().encode() for p in previous if p.strip()])


def check_feedback(
    gate: AdminGate, signer: FeedbackSigner, client: str, row_id: str, token: str | None, bearer: str | None
) -> None:
    """Admit feedback for ``row_id`` with its feedback token or the admin token; 429 / 401 / 403 otherwise."""
    gate.throttled(client, "feedback")
    if bearer is not None and gate.admits(bearer):
        return
    if token is None and bearer is None:
        raise CredentialError(
            401,
            f"feedback needs the {FEEDBACK_HEADER} header the prediction was answered with "
            "(or Authorization: Bearer <MLOPS_ADMIN_TOKEN> for a labelling pipeline)",
            FEEDBACK_HEADER,
        )
    if token is None or not signer.valid(row_id, token):
        gate.failed(client)
        field = FEEDBACK_HEADER if token is not None else "Authorization"
        raise CredentialError(403, f"feedback: wrong {field} for request {row_id!r}", field)
