from schemas.forwarding import TrustedProxies


def test_nothing_is_believed_without_trusted_proxies() -> None:
    proxies = TrustedProxies("")
    assert proxies.client("203.0.113.9", "198.51.100.1") == "203.0.113.9"
    assert proxies.forwarded_for("203.0.113.9", "198.51.100.1") == "203.0.113.9"


def test_the_client_is_the_last_address_no_trusted_proxy_added() -> None:
    proxies = TrustedProxies("10.0.0.0/8, 127.0.0.1")
    # a client's own X-Forwarded-For ("1.2.3.4") is to the left of what its proxies added
    assert proxies.client("127.0.0.1", "1.2.3.4, 203.0.113.9, 10.1.2.3") == "203.0.113.9"
    assert proxies.client("127.0.0.1", "10.1.2.3") == "10.1.2.3"  # every hop trusted
    assert proxies.client("203.0.113.9", "1.2.3.4") == "203.0.113.9"  # not from a proxy
    assert proxies.client("127.0.0.1", "not an address") == "not an address"


def test_the_chain_passed_on_keeps_only_what_trusted_proxies_said() -> None:
    proxies = TrustedProxies("10.0.0.0/8")
    assert proxies.forwarded_for("10.0.0.2", "203.0.113.9") == "203.0.113.9, 10.0.0.2"
    assert proxies.forwarded_for("203.0.113.9", "1.2.3.4") == "203.0.113.9"
    assert proxies.trusts("10.255.0.1")
    assert not proxies.trusts("11.0.0.1")
    assert not proxies.trusts("::1")
    assert TrustedProxies("::1").trusts("::1")
