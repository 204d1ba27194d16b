from auth import openapi


def test_the_committed_document_is_current() -> None:
    assert openapi.COMMITTED.read_text() == openapi.rendered(), (
        "docs/openapi/auth.json is stale: run `make schemas` and commit it"
    )
