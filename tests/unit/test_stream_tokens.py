"""Stream tokens bind a media stream to the call the webhook answered: one behaviour per test."""

from __future__ import annotations

import base64

import orjson
import pytest

from telephony_bridge.server.stream_tokens import StreamGrant, StreamTokenError, StreamTokenProblem, StreamTokens

SECRET = b"0123456789abcdef0123456789abcdef"
CALL = "CA" + "a" * 32
GRANT = StreamGrant(call_id=CALL, scenario="support", caller="+15550199", number="+15550100")


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def problem(tokens: StreamTokens, token: str | None, call_id: str = CALL) -> StreamTokenProblem:
    with pytest.raises(StreamTokenError) as caught:
        tokens.redeem(token, call_id)
    return caught.value.problem


def test_a_token_gives_back_the_grant_it_was_issued_for():
    tokens = StreamTokens(SECRET)
    assert tokens.redeem(tokens.issue(GRANT), CALL) == GRANT


def test_a_token_opens_one_stream_only():
    tokens = StreamTokens(SECRET)
    token = tokens.issue(GRANT)
    tokens.redeem(token, CALL)
    assert problem(tokens, token) is StreamTokenProblem.REUSED


def test_two_answers_of_one_call_give_two_usable_tokens():
    # Twilio retries a webhook that timed out: either answer's stream may be the one that comes.
    tokens = StreamTokens(SECRET)
    first, second = tokens.issue(GRANT), tokens.issue(GRANT)
    assert first != second
    assert tokens.redeem(second, CALL) == tokens.redeem(first, CALL) == GRANT


def test_a_token_for_one_call_does_not_open_another():
    tokens = StreamTokens(SECRET)
    assert problem(tokens, tokens.issue(GRANT), "CA" + "b" * 32) is StreamTokenProblem.WRONG_CALL


def test_a_token_expires():
    clock = Clock()
    tokens = StreamTokens(SECRET, ttl_s=30, clock=clock)
    token = tokens.issue(GRANT)
    clock.now += 30
    assert problem(tokens, token) is StreamTokenProblem.EXPIRED


def test_a_token_signed_with_another_secret_is_refused():
    forged = StreamTokens(b"another secret of 32 bytes......").issue(GRANT)
    assert problem(StreamTokens(SECRET), forged) is StreamTokenProblem.BAD_SIGNATURE


@pytest.mark.parametrize("field", ["s", "c"])
def test_a_tampered_body_is_refused(field):
    # Changing the scenario (or the call) in the body breaks the signature.
    tokens = StreamTokens(SECRET)
    version, body, mac = tokens.issue(GRANT).split(".")
    fields = orjson.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    fields[field] = "admin" if field == "s" else "CA" + "c" * 32
    tampered = base64.urlsafe_b64encode(orjson.dumps(fields)).rstrip(b"=").decode()
    assert problem(tokens, f"{version}.{tampered}.{mac}", fields["c"]) is StreamTokenProblem.BAD_SIGNATURE


@pytest.mark.parametrize("token", [None, ""])
def test_no_token_is_refused(token):
    assert problem(StreamTokens(SECRET), token) is StreamTokenProblem.MISSING


@pytest.mark.parametrize("token", ["v1", "v1.a", "v2.abc.def", "v1.abc.!!!", "v1..", "x" * 5000, "v1.a.b.c"])
def test_malformed_tokens_are_refused_without_raising_anything_else(token):
    assert problem(StreamTokens(SECRET), token) in (StreamTokenProblem.MALFORMED, StreamTokenProblem.BAD_SIGNATURE)


def test_spent_tokens_are_forgotten_once_expired():
    clock = Clock()
    tokens = StreamTokens(SECRET, ttl_s=30, clock=clock)
    for _ in range(100):
        tokens.redeem(tokens.issue(GRANT), CALL)
    assert tokens.spent_count() == 100
    clock.now += 31
    tokens.redeem(tokens.issue(GRANT), CALL)
    assert tokens.spent_count() == 1


def test_a_short_secret_is_refused():
    with pytest.raises(ValueError, match="16 bytes"):
        StreamTokens(b"short")
