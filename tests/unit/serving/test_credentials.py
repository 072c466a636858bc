"""The feedback token and the admin gate: what a caller must hold to steer traffic or label it."""

from __future__ import annotations

import pytest

from serving.credentials import (
    FAILED_AUTH_BURST,
    AdminGate,
    CredentialError,
    FeedbackSigner,
    UserKeys,
    bearer_token,
    check_feedback,
    feedback_key,
    user_keys,
)
from serving.limits import RateLimiter

TOKEN = "workshop-admin-test-token"


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_replicas_that_share_a_secret_agree_on_tokens_and_others_do_not() -> None:
    one, two = (FeedbackSigner(feedback_key(None, TOKEN)) for _ in range(2))
    assert one.token("r-1") == two.token("r-1") != one.token("r-2")
    assert one.valid("r-1:3", two.token("r-1"))  # a batch row's id: the request's token covers it
    assert not one.valid("r-2", one.token("r-1"))
    other = FeedbackSigner(feedback_key(None, TOKEN + "-other"))
    assert not other.valid("r-1", one.token("r-1"))
    configured = FeedbackSigner(feedback_key("example-feedback-key-0123", TOKEN))
    assert configured.source == "MLOPS_FEEDBACK_KEY"
    assert not configured.valid("r-1", one.token("r-1"))  # the configured key wins over the derived one
    assert TOKEN not in one.token("r-1")


def test_without_any_secret_the_key_is_random_per_process() -> None:
    a, b = FeedbackSigner(feedback_key(None, None)), FeedbackSigner(feedback_key(None, None))
    assert a.source == "random, this process only"
    assert a.token("r-1") != b.token("r-1")


def test_a_short_feedback_key_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 16"):
        feedback_key("example", None)


def test_bearer_token_parsing() -> None:
    assert bearer_token(f"Bearer {TOKEN}") == TOKEN
    assert bearer_token(f"bearer  {TOKEN} ") == TOKEN
    assert bearer_token(f"Basic {TOKEN}") is None
    assert bearer_token("Bearer") is None
    assert bearer_token(None) is None


def test_the_gate_without_a_configured_token_admits_nobody() -> None:
    gate = AdminGate(None)
    with pytest.raises(CredentialError) as refused:
        gate.check("c", "anything-at-all-long", "X-Force-Arm")
    assert refused.value.status == 403
    assert "no MLOPS_ADMIN_TOKEN" in str(refused.value)


def test_wrong_feedback_tokens_count_towards_the_lockout() -> None:
    clock = Clock()
    gate = AdminGate(TOKEN, RateLimiter(1 / 6, FAILED_AUTH_BURST, clock=clock))
    signer = FeedbackSigner(feedback_key(None, TOKEN))
    statuses = []
    for _ in range(FAILED_AUTH_BURST + 1):
        try:
            check_feedback(gate, signer, "guesser", "r-1", "not-the-token", None)
        except CredentialError as err:
            statuses.append(err.status)
    assert statuses == [403] * FAILED_AUTH_BURST + [429]
    with pytest.raises(CredentialError) as locked:  # even the right token: no oracle while locked out
        check_feedback(gate, signer, "guesser", "r-1", signer.token("r-1"), None)
    assert locked.value.status == 429
    check_feedback(gate, signer, "someone-else", "r-1", signer.token("r-1"), None)  # others are not affected
    clock.now += 6.0
    check_feedback(gate, signer, "guesser", "r-1", signer.token("r-1"), None)  # one more try every 6 s


def test_user_keys_take_their_own_secret_and_a_rotation_keeps_the_old_ones_for_lookup() -> None:
    derived = feedback_key(None, TOKEN)
    old = user_keys("example-user-key-secret-old-01", [], derived)
    new = user_keys("example-user-key-secret-new-02", ["example-user-key-secret-old-01"], derived)
    user = "carol.raw-id@example.invalid"
    assert old.source == "MLOPS_USER_KEY_SECRET"
    assert user_keys(None, [], derived).key(user) == UserKeys(derived).key(user)  # unset: as before this setting
    assert old.key(user) != new.key(user)  # rotated: new rows get a new key
    assert new.candidates(user) == [new.key(user), old.key(user)]  # and erasure still finds the old rows
    assert old.key(user) != user_keys(None, [], derived).key(user)  # independent of the feedback key
    with pytest.raises(ValueError, match="MLOPS_USER_KEY_PREVIOUS"):
        user_keys("example-user-key-secret-new-02", ["short"], derived)
    with pytest.raises(ValueError, match="MLOPS_USER_KEY_SECRET"):
        user_keys("short", [], derived)


def test_an_old_feedback_key_listed_as_previous_finds_the_rows_keyed_before_its_rotation() -> None:
    old_secret, new_secret = "example-feedback-key-old-0001", "example-feedback-key-new-0002"
    before = user_keys(None, [], feedback_key(old_secret, None))  # no user-key secret: keyed by the feedback key
    after = user_keys(None, [old_secret], feedback_key(new_secret, None))
    user = "erin.raw-id@example.invalid"
    assert before.key(user) != after.key(user)
    assert before.key(user) in after.candidates(user)
