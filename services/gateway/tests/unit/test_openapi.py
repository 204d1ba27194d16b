from gateway import openapi

from ..harness import gateway


def test_the_committed_document_is_current() -> None:
    assert openapi.COMMITTED.read_text() == openapi.rendered(), (
        "docs/openapi/gateway.json is stale: run `make schemas` and commit it"
    )


async def test_the_gateway_serves_its_document() -> None:
    async with gateway() as gw:
        served = (await gw.http.get("/openapi.json")).json()
    assert served == openapi.document()
    assert set(served["paths"]) == {
        "/api/automation/flow/{flowId}/trigger/{triggerId}/activate",
        "/api/automation/flow/{flowId}/execute",
        "/api/automation/flow/{flowId}/activate",
        "/api/automation/flow/activate-by-name",
        "/api/automation/flow/trigger/activate-by-name",
        "/api/info",
    }


async def test_unknown_paths_and_methods_answer_in_the_contract_format() -> None:
    async with gateway() as gw:
        missing = await gw.http.get("/nowhere")
        wrong = await gw.http.put("/api/automation/flow/f/trigger/t/activate")
    assert (missing.status_code, missing.json()["code"]) == (404, 4040)
    assert (wrong.status_code, wrong.json()["code"]) == (405, 2004)


async def test_the_front_door_answers_502_when_the_service_behind_it_is_away() -> None:
    async with gateway(engine_url="http://127.0.0.1:9", auth_url="http://127.0.0.1:9") as gw:
        for path in ("/api/automation/flows", "/api/users/login"):
            response = await gw.http.get(path)
            assert (response.status_code, response.json()["code"]) == (502, 5020)
        private = await gw.http.post("/internal/tokens/introspect", json={"token": "x"})
        assert (private.status_code, private.json()["code"]) == (404, 4040)
        info = await gw.http.get("/api/info")
        assert info.json() == {"appId": "hookflow", "name": "hookflow", "loggers": []}
