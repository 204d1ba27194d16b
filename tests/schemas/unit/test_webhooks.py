"""The three signature schemes: published examples where the providers publish them,
and a signer written independently in the tests (`tests/signers.py`)."""

import hashlib

import pytest

from schemas.flows import SignatureScheme
from schemas.sealing import seal, sealing_key, unseal
from schemas.webhooks import SignatureError, new_secret, sign, verify

from ...signers import github, standard_webhooks, stripe

STANDARD = SignatureScheme.STANDARD_WEBHOOKS
NOW = 1_700_000_000
BODY = b'{"orderId": "o-1", "amount": 25}'


# -- published examples -------------------------------------------------------------


def test_the_standard_webhooks_published_example() -> None:
    """The example of the Standard Webhooks specification and its reference libraries."""
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    body = b'{"test": 2432232314}'
    headers = sign(STANDARD, secret, body, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330)
    assert headers["webhook-signature"] == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    assert verify(STANDARD, [secret], headers, body, 1614265330) == "msg_p5jXN8AQM9LWM0D4loKWxJek"


def test_the_github_published_example() -> None:
    """The test values of GitHub's "Validating webhook deliveries"."""
    signature = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    secret, body = "It's a Secret to Everybody", b"Hello, World!"
    assert sign(SignatureScheme.GITHUB, secret, body, "d-1", NOW)["X-Hub-Signature-256"] == (
        signature
    )
    headers = {"x-hub-signature-256": signature, "x-github-delivery": "d-1"}
    # GitHub signs no delivery id: the message is known by its signed bytes
    assert verify(SignatureScheme.GITHUB, [secret], headers, body, NOW) == _sha256(body)


# Stripe's documentation shows the scheme but publishes no complete example (secret,
# timestamp, payload and signature together): only the independent signer checks it.


# -- the independent signer ---------------------------------------------------------


def lower(headers: dict[str, str]) -> dict[str, str]:
    return {name.lower(): value for name, value in headers.items()}


def _sha256(signed: bytes) -> str:
    return "sha256:" + hashlib.sha256(signed).hexdigest()


def test_each_scheme_verifies_what_an_independent_signer_signed() -> None:
    secret = new_secret()
    cases = [
        (STANDARD, standard_webhooks(secret, "msg_1", NOW, BODY), "msg_1"),
        (SignatureScheme.GITHUB, github(secret, "delivery-1", BODY), _sha256(BODY)),
        (SignatureScheme.STRIPE, stripe(secret, NOW, BODY), _sha256(f"{NOW}.".encode() + BODY)),
    ]
    for scheme, headers, message_id in cases:
        assert verify(scheme, [secret], lower(headers), BODY, NOW) == message_id
        assert lower(
            sign(scheme, secret, BODY, "msg_1" if scheme == STANDARD else "delivery-1", NOW)
        ) == lower(headers)


def test_any_current_secret_verifies_and_any_offered_signature_may_match() -> None:
    old, new = new_secret(), new_secret()
    headers = lower(standard_webhooks(old, "m", NOW, BODY))
    assert verify(STANDARD, [new, old], headers, BODY, NOW) == "m"
    newer = standard_webhooks(new, "m", NOW, BODY)["webhook-signature"]
    headers["webhook-signature"] = f"v1,bm9wZQ== {newer} v2,ignored"
    assert verify(STANDARD, [new], headers, BODY, NOW) == "m"
    stripe_headers = lower(stripe(new, NOW, BODY))
    stripe_headers["stripe-signature"] += ",v1=00ff,v0=legacy"
    assert verify(SignatureScheme.STRIPE, [new], stripe_headers, BODY, NOW) == _sha256(
        f"{NOW}.".encode() + BODY
    )


@pytest.mark.parametrize(
    ("scheme", "headers", "reason"),
    [
        (STANDARD, {}, "webhook-signature header is missing"),
        (STANDARD, {"webhook-signature": "v1,x", "webhook-timestamp": str(NOW)}, "are required"),
        (STANDARD, {"webhook-id": "m", "webhook-timestamp": str(NOW)}, "webhook-signature"),
        (
            STANDARD,
            {"webhook-id": "m", "webhook-timestamp": "soon", "webhook-signature": "v1,x"},
            "unix seconds",
        ),
        (SignatureScheme.GITHUB, {}, "x-hub-signature-256 header is missing"),
        (SignatureScheme.GITHUB, {"x-hub-signature-256": "sha1=abc"}, "sha256="),
        (SignatureScheme.STRIPE, {"stripe-signature": "v1=abc"}, "t=<timestamp>"),
        (SignatureScheme.STRIPE, {"stripe-signature": "t=1,t=2,v1=abc"}, "t=<timestamp>"),
        (SignatureScheme.STRIPE, {"stripe-signature": "x" * 5000}, "too long"),
    ],
)
def test_malformed_signature_headers_are_refused_with_the_reason(
    scheme: SignatureScheme, headers: dict[str, str], reason: str
) -> None:
    with pytest.raises(SignatureError, match=reason):
        verify(scheme, [new_secret()], headers, BODY, NOW)


def test_a_changed_body_another_secret_or_an_old_timestamp_do_not_verify() -> None:
    secret = new_secret()
    signed = {
        STANDARD: lower(standard_webhooks(secret, "m", NOW, BODY)),
        SignatureScheme.GITHUB: lower(github(secret, "d", BODY)),
        SignatureScheme.STRIPE: lower(stripe(secret, NOW, BODY)),
    }
    for scheme, headers in signed.items():
        with pytest.raises(SignatureError, match="does not match"):
            verify(scheme, [secret], headers, BODY + b" ", NOW)
        with pytest.raises(SignatureError, match="does not match"):
            verify(scheme, [new_secret()], headers, BODY, NOW)
        with pytest.raises(SignatureError, match="no signing secret"):
            verify(scheme, [], headers, BODY, NOW)
    for scheme in (STANDARD, SignatureScheme.STRIPE):
        assert verify(scheme, [secret], signed[scheme], BODY, NOW + 300, tolerance=300) in (
            "m",
            _sha256(f"{NOW}.".encode() + BODY),
        )
        with pytest.raises(SignatureError, match="more than 300 s from now"):
            verify(scheme, [secret], signed[scheme], BODY, NOW + 301, tolerance=300)
        with pytest.raises(SignatureError, match="more than 300 s from now"):
            verify(scheme, [secret], signed[scheme], BODY, NOW - 301, tolerance=300)


def test_new_secrets_are_random_standard_webhooks_secrets() -> None:
    first, second = new_secret(), new_secret()
    assert first != second
    assert first.startswith("whsec_")
    assert len(first) == len("whsec_") + 44


def test_a_sealed_secret_opens_only_with_its_key_and_for_its_trigger() -> None:
    key = sealing_key("activation key")
    sealed = seal(key, "whsec_abc", "T-1")
    assert "whsec_abc" not in sealed
    assert seal(key, "whsec_abc", "t-1") != sealed  # a fresh nonce every time
    assert unseal(key, sealed, "t-1") == "whsec_abc"
    with pytest.raises(ValueError, match="does not open"):
        unseal(sealing_key("another key"), sealed, "t-1")
    with pytest.raises(ValueError, match="does not open"):
        unseal(key, sealed, "t-2")
    with pytest.raises(ValueError, match="does not open"):
        unseal(key, "not base64 at all!", "t-1")


def test_svix_headers_are_the_standard_webhooks_headers() -> None:
    secret = new_secret()
    standard = lower(standard_webhooks(secret, "msg_svix", NOW, BODY))
    svix = {name.replace("webhook-", "svix-"): value for name, value in standard.items()}
    assert verify(STANDARD, [secret], svix, BODY, NOW) == "msg_svix"
    svix["svix-signature"] = "v1,bm9wZQ=="
    with pytest.raises(SignatureError, match="does not match"):
        verify(STANDARD, [secret], svix, BODY, NOW)


def test_a_github_request_sent_again_under_another_delivery_id_is_the_same_message() -> None:
    secret = new_secret()
    first = lower(github(secret, "delivery-1", BODY))
    again = {**first, "x-github-delivery": "delivery-2"}
    without = {k: v for k, v in first.items() if k != "x-github-delivery"}
    ids = {verify(SignatureScheme.GITHUB, [secret], h, BODY, NOW) for h in (first, again, without)}
    assert len(ids) == 1
    other = b'{"orderId": "o-2"}'
    assert verify(
        SignatureScheme.GITHUB, [secret], lower(github(secret, "d", other)), other, NOW
    ) != (ids.pop())


def test_long_message_ids_are_hashed_never_cut() -> None:
    secret = new_secret()
    base = "m" * 256
    first, second = base + "a", base + "b"
    keys = {
        verify(STANDARD, [secret], lower(standard_webhooks(secret, i, NOW, BODY)), BODY, NOW)
        for i in (first, second)
    }
    assert len(keys) == 2
    assert all(len(k) <= 256 for k in keys)
    assert (
        verify(STANDARD, [secret], lower(standard_webhooks(secret, base, NOW, BODY)), BODY, NOW)
        == base
    )
