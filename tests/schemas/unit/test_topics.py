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
