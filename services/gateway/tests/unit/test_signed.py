"""Signed callbacks at the gateway: verified over the raw bytes, with every current
secret of the trigger, the message id as the idempotency key."""

import hashlib
import json
import time
from collections.abc import AsyncIterator

import pytest

from schemas.flows import SignatureScheme
from schemas.signing import verification_is_signed
from schemas.webhooks import sign

from ..harness import ACTIVATION_KEY, OLD_SECRET, SECRET, SIGNED, SIGNED_QUIET, Harness, gateway

STANDARD = SignatureScheme.STANDARD_WEBHOOKS
BODY = json.dumps({"id": "evt_1", "orderId": "o-1", "amount": 25}).encode()


@pytest.fixture
async def gw() -> AsyncIterator[Harness]:
    async with gateway() as harness:
        yield harness


def signed(
    scheme: SignatureScheme, body: bytes = BODY, secret: str = SECRET, **kw: int
) -> dict[str, str]:
    headers = sign(scheme, secret, body, "msg-1", kw.get("at", int(time.time())))
    return {**headers, "content-type": "application/json"}


@pytest.mark.parametrize("scheme", list(SignatureScheme))
async def test_a_correctly_signed_callback_is_accepted_with_its_message_id(
    gw: Harness, scheme: SignatureScheme
) -> None:
    response = await gw.http.post(gw.url(SIGNED[scheme]), content=BODY, headers=signed(scheme))
    assert (response.status_code, response.content) == (200, b"")
    (event,) = gw.activations
    assert event["data"] == json.loads(BODY)
    # the message id: webhook-id, the signed bytes' SHA-256 (GitHub signs no id), the
    # Stripe event's id
    expected = {
        SignatureScheme.STANDARD_WEBHOOKS: "msg-1",
        SignatureScheme.GITHUB: "sha256:" + hashlib.sha256(BODY).hexdigest(),
        SignatureScheme.STRIPE: "evt_1",
    }
    assert event["idempotencyKey"] == expected[scheme]
    assert verification_is_signed(ACTIVATION_KEY, event["activationId"], event["signatureVerified"])


@pytest.mark.parametrize("scheme", list(SignatureScheme))
async def test_a_bad_signature_is_a_401_with_code_1002_and_nothing_is_accepted(
    gw: Harness, scheme: SignatureScheme
) -> None:
    url = gw.url(SIGNED[scheme])
    tampered = await gw.http.post(url, content=BODY + b" ", headers=signed(scheme))
    unsigned = await gw.http.post(url, content=BODY)
    wrong_secret = await gw.http.post(
        url, content=BODY, headers=signed(scheme, secret="whsec_d3Jvbmc=")
    )
    for response in (tampered, unsigned, wrong_secret):
        assert response.status_code == 401
        body = response.json()
        assert body["code"] == 1002
        assert body["message"].startswith("Unable to verify the callback's signature: ")
    assert "does not match" in tampered.json()["message"]
    assert "missing" in unsigned.json()["message"]
    assert gw.activations == []


async def test_a_timestamp_outside_the_tolerance_is_refused(gw: Harness) -> None:
    for scheme in (STANDARD, SignatureScheme.STRIPE):
        stale = signed(scheme, at=int(time.time()) - 301)
        response = await gw.http.post(gw.url(SIGNED[scheme]), content=BODY, headers=stale)
        assert (response.status_code, response.json()["code"]) == (401, 1002)
        assert "more than 300 s from now" in response.json()["message"]
    assert gw.activations == []


async def test_a_secret_in_its_grace_period_verifies_an_expired_one_does_not(gw: Harness) -> None:
    url = gw.url(SIGNED[STANDARD])
    assert (
        await gw.http.post(url, content=BODY, headers=signed(STANDARD, secret=OLD_SECRET))
    ).status_code == 200
    expired = await gw.http.post(
        url, content=BODY, headers=signed(STANDARD, secret="whsec_ZXhwaXJlZA==")
    )
    assert expired.status_code == 401
    assert len(gw.activations) == 1


async def test_under_ignore_a_bad_signature_is_a_200_and_nothing_happens(gw: Harness) -> None:
    response = await gw.http.post(gw.url(SIGNED_QUIET), content=BODY)
    assert (response.status_code, response.content) == (200, b"")
    assert "x-activation-id" in response.headers
    assert gw.activations == []
    good = await gw.http.post(gw.url(SIGNED_QUIET), content=BODY, headers=signed(STANDARD))
    assert good.status_code == 200
    assert len(gw.activations) == 1


async def test_the_signature_is_checked_before_the_body_is_read_as_json(gw: Harness) -> None:
    url = gw.url(SIGNED[STANDARD])
    assert (await gw.http.post(url, content=b"not json")).json()["code"] == 1002
    malformed = await gw.http.post(url, content=b"not json", headers=signed(STANDARD, b"not json"))
    assert (malformed.status_code, malformed.json()["code"]) == (400, 2000)
    assert gw.activations == []


async def test_a_signed_get_is_verified_over_its_raw_query_string(gw: Harness) -> None:
    query = b"orderId=o-9&tag=a&tag=b"
    headers = sign(STANDARD, SECRET, query, "msg-get", int(time.time()))
    url = gw.url(SIGNED[STANDARD], query="?" + query.decode())
    response = await gw.http.get(url, headers=headers)
    assert response.status_code == 200
    (event,) = gw.activations
    assert event["data"] == {"orderId": "o-9", "tag": ["a", "b"]}
    altered = await gw.http.get(url.replace("o-9", "o-8"), headers=headers)
    assert altered.status_code == 401


async def test_a_user_token_may_still_come_along(gw: Harness) -> None:
    headers = {**signed(STANDARD), "user-token": "payer-token"}
    assert (
        await gw.http.post(gw.url(SIGNED[STANDARD]), content=BODY, headers=headers)
    ).status_code == 200
    assert gw.activations[0]["user"]["email"] == "pay@gw.example"
    anonymous = {**signed(STANDARD), "user-token": "unknown-token"}
    assert (
        await gw.http.post(gw.url(SIGNED[STANDARD]), content=BODY, headers=anonymous)
    ).status_code == 200
    assert gw.activations[1]["user"] is None


async def test_a_gateway_without_the_activation_key_cannot_verify(gw: Harness) -> None:
    async with gateway(activation_key=None) as keyless:
        response = await keyless.http.post(
            keyless.url(SIGNED[STANDARD]), content=BODY, headers=signed(STANDARD)
        )
        assert (response.status_code, response.json()["code"]) == (401, 1002)
        assert "no activation key" in response.json()["message"]
        assert keyless.activations == []


async def test_stripe_events_without_an_id_or_with_a_long_one_are_never_confused(
    gw: Harness,
) -> None:
    stripe = SignatureScheme.STRIPE
    bodies = [
        json.dumps({"orderId": "o-1"}).encode(),  # no id: known by its signed bytes
        json.dumps({"id": "e" * 256 + "a"}).encode(),  # ids past 256 characters: hashed
        json.dumps({"id": "e" * 256 + "b"}).encode(),
    ]
    at = int(time.time())
    for body in bodies:
        for _ in range(2):  # the same signed request twice: the same message id
            headers = signed(stripe, body, at=at)
            response = await gw.http.post(gw.url(SIGNED[stripe]), content=body, headers=headers)
            assert response.status_code == 200
    keys = [event["idempotencyKey"] for event in gw.activations]
    assert keys[0::2] == keys[1::2]
    assert len(set(keys)) == 3
    assert all(len(key) <= 256 for key in keys)
