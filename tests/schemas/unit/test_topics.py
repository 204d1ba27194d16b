import pytest

from schemas import topics


def test_names_carry_the_prefix() -> None:
    assert topics.Topics("acme").activations == "acme.activations"
    assert topics.Topics("").flow_registry == "flow-registry"


def test_every_topic_has_a_distinct_name() -> None:
    names = {topics.Topics("p").name(base) for base in topics.ALL}
    assert len(names) == len(topics.ALL)


def test_unknown_topic_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown topic"):
        topics.Topics().name("activation")


def test_every_broker_of_a_cluster_is_an_address_of_its_own() -> None:
    # FastStream takes one string as one address: a cluster's list must be split
    assert topics.bootstrap_servers("10.0.0.1:9092, 10.0.0.2:9092,10.0.0.3:9092,") == [
        "10.0.0.1:9092",
        "10.0.0.2:9092",
        "10.0.0.3:9092",
    ]
    assert topics.bootstrap_servers("kafka:9092") == ["kafka:9092"]
