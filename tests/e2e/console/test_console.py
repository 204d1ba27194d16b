"""The web console in a real browser: Playwright driving Debian's Chromium.

One scenario walks what an operator does (sign in, open the example order flow, start
an execution, see it wait, run its curl, see it complete without reloading); the others
cover each page. Every test fails on a console error, and on an input without a label.
Screenshots of every page go to HOOKFLOW_SCREENSHOTS (`make screenshots`: docs/console).
"""

import asyncio
import json
import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from playwright.sync_api import Browser, ConsoleMessage, Page, expect, sync_playwright

from schemas.topics import Topics

from ...conftest import ROOT, Product

# how Debian's Chromium runs on a machine without a network (and as root)
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PAYMENT = {"orderId": "o-42", "amount": 42}


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    assert found, "Debian's chromium is not installed: `make test` installs it"
    return found


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium(), args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def answered() -> set[int]:
    """HTTP error statuses a test provokes on purpose: the browser logs each such answer
    as a console error ("Failed to load resource"), and only those are let through."""
    return set()


@pytest.fixture
def page(browser: Browser, answered: set[int]) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    opened = context.new_page()
    errors: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            errors.append(message.text)

    opened.on("console", on_console)
    opened.on("pageerror", lambda error: errors.append(str(error)))
    yield opened
    context.close()
    provoked = tuple(f"the server responded with a status of {code} " for code in answered)
    unexpected = [e for e in errors if not provoked or not any(p in e for p in provoked)]
    assert unexpected == [], f"the console logged errors: {unexpected}"


@pytest.fixture(scope="module")
def api(product: Product) -> Iterator[httpx.Client]:
    with httpx.Client(timeout=30, headers={"X-Admin-Key": product.admin_key}) as client:
        yield client


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    where = os.environ.get("HOOKFLOW_SCREENSHOTS")
    folder = Path(where) if where else tmp_path_factory.mktemp("console")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def deploy_order_flow(api: httpx.Client, product: Product) -> dict[str, Any]:
    definition = json.loads((ROOT / "examples" / "order-flow.json").read_text())
    text = json.dumps(definition).replace("http://127.0.0.1:8089", product.stub)
    deployed = api.post(f"{product.engine}/api/automation/flows", content=text)
    assert deployed.status_code == 201, deployed.text
    return dict(deployed.json())


def user_token(api: httpx.Client, product: Product, roles: list[str]) -> str:
    email, password = f"{uuid.uuid4().hex[:10]}@example.com", "console " + uuid.uuid4().hex
    user = api.post(
        f"{product.auth}/api/users/register", json={"email": email, "password": password}
    ).json()
    api.put(f"{product.auth}/api/users/{user['objectId']}/roles", json={"roles": roles})
    login = api.post(f"{product.auth}/api/users/login", json={"login": email, "password": password})
    return str(login.json()["user-token"])


def sign_in(
    page: Page, product: Product, credential: str | None = None, kind: str = "admin"
) -> None:
    """Sign in with the keyboard only: the field has the focus, Enter submits."""
    page.goto(f"{product.engine}/console/")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    if kind != "admin":
        page.get_by_label("Sign in with").select_option(kind)
        page.get_by_label("Admin key or user-token").focus()
    expect(page.get_by_label("Admin key or user-token")).to_be_focused()
    page.keyboard.type(credential or product.admin_key)
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Flows")).to_be_visible()


def run_curl(script: str, **env: str) -> "subprocess.CompletedProcess[str]":
    """Run a curl the console shows, as a user would paste it; it must be answered 200."""
    ran = subprocess.run(  # noqa: S603  # the console's own text, in bash
        ["/bin/bash", "-euo", "pipefail", "-c", script],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.startswith("HTTP/1.1 200"), ran.stdout + ran.stderr
    return ran


def assert_accessible(page: Page) -> None:
    """Every form control has a label, every drawing a text alternative."""
    unlabelled = page.evaluate(
        """() => [...document.querySelectorAll('input, select, textarea')]
            .filter(e => !(e.labels && e.labels.length) && !e.getAttribute('aria-label'))
            .map(e => e.outerHTML)"""
    )
    assert unlabelled == []
    unnamed = page.evaluate(
        """() => [...document.querySelectorAll('svg[role=img], button')]
            .filter(e => !(e.getAttribute('aria-label') || e.textContent.trim()))
            .map(e => e.outerHTML)"""
    )
    assert unnamed == []


def test_an_operator_starts_an_order_and_sees_its_callback_complete_it(
    page: Page, product: Product, api: httpx.Client, screenshots: Path
) -> None:
    flow = deploy_order_flow(api, product)
    sign_in(page, product)
    assert_accessible(page)
    page.screenshot(path=screenshots / "flows.png", full_page=True)

    page.locator(f'a[href="#/flows/{flow["flowId"]}"]').click()
    expect(page.get_by_role("heading", name=f"Order fulfilment v{flow['version']}")).to_be_visible()
    graph = page.get_by_role(
        "img", name="Flow graph of 6 blocks; callback blocks: Payment Confirmed"
    )
    expect(graph).to_be_visible()
    expect(graph.locator("g.block.callback")).to_have_count(1)
    assert_accessible(page)
    page.screenshot(path=screenshots / "flow.png", full_page=True)

    order = {"order": {"id": "o-42", "total": 42, "customer": "ann@example.com"}}
    page.get_by_label("Input (JSON object)").fill(json.dumps(order))
    page.get_by_role("button", name="Start an execution").click()
    expect(page.get_by_role("heading", name="Execution")).to_be_visible()
    expect(page.locator(".status").first).to_have_text("waiting", timeout=20_000)
    curl = page.locator("pre.curl")
    expect(curl).to_contain_text("?execution=")
    page.evaluate("window.stillTheSamePage = true")
    assert_accessible(page)
    page.screenshot(path=screenshots / "execution-waiting.png", full_page=True)

    script = curl.inner_text().replace("BODY='{}'", f"BODY='{json.dumps(PAYMENT)}'")
    token = user_token(api, product, ["PaymentGateway"])
    ran = run_curl(script, USER_TOKEN=token)

    expect(page.locator(".status").first).to_have_text("completed", timeout=20_000)
    assert page.evaluate("window.stillTheSamePage") is True  # updated in place
    expect(page.get_by_text("Nothing.")).to_be_visible()  # it waits on nothing now
    expect(page.locator(".timeline")).to_contain_text("resumed")
    expect(page.locator("main")).to_contain_text('"paidBy"')
    page.screenshot(path=screenshots / "execution-completed.png", full_page=True)

    activation = next(
        line.split(":", 1)[1].strip()
        for line in ran.stdout.splitlines()
        if line.lower().startswith("x-activation-id:")
    )
    page.get_by_role("link", name="Activations").click()
    page.get_by_label("Activation id (the X-Activation-Id of a callback)").fill(activation)
    page.get_by_label("Activation id (the X-Activation-Id of a callback)").press("Enter")
    expect(page.locator(".outcome")).to_have_text("ACTIVATED")
    expect(page.locator(".lookup pre.value")).to_contain_text('"orderId"')  # the body kept
    # the log below lists it, newest first, with a replay button
    logged = page.locator("table.log tr", has=page.locator(f'a[href="#/activations/{activation}"]'))
    expect(logged).to_contain_text("ACTIVATED")
    assert_accessible(page)
    page.screenshot(path=screenshots / "activation.png", full_page=True)
    page.locator(".lookup a[href^='#/executions/']").click()
    expect(page.locator(".status").first).to_have_text("completed")


def test_executions_filter_by_status_and_page(
    page: Page, product: Product, api: httpx.Client
) -> None:
    flow = deploy_order_flow(api, product)
    executions = [
        api.post(
            f"{product.engine}/api/automation/flow/{flow['flowId']}/execute",
            params={"wait": 10},  # the list is read once, when the page opens
            json={"order": {"id": f"o-{n}", "total": 1, "customer": "a@b.c"}},
        ).json()["executionId"]
        for n in range(23)
    ]
    failed = api.post(
        f"{product.engine}/api/automation/flow/{flow['flowId']}/execute",
        params={"wait": 10},
        json={},
    )
    sign_in(page, product)
    page.goto(f"{product.engine}/console/#/flows/{flow['flowId']}")
    rows = page.locator("tbody tr:has(a[href^='#/executions/'])")
    expect(rows).to_have_count(20, timeout=20_000)  # a page
    page.get_by_role("button", name="Next page").click()
    expect(rows).to_have_count(24)
    page.get_by_label("Status").select_option("failed")
    expect(rows).to_have_count(1, timeout=20_000)
    expect(rows.first).to_contain_text(failed.json()["executionId"])
    page.get_by_label("Status").select_option("waiting")
    expect(rows).to_have_count(20)
    assert executions[0] in page.locator("main").inner_text()


def test_the_expression_tester_shows_a_value_or_the_error_where_it_is(
    page: Page, product: Product, screenshots: Path, answered: set[int]
) -> None:
    answered.add(400)  # an expression that does not compile is a 400 with its position
    sign_in(page, product)
    for _ in range(12):  # the keyboard reaches the navigation, and Enter follows a link
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.textContent") == "Expression tester":
            break
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Expression tester")).to_be_visible()
    page.get_by_role("button", name="Evaluate").click()
    expect(page.locator("pre.value")).to_have_text("true")
    page.get_by_label("CEL expression").fill("data.amount * 2 + 1")
    page.get_by_label("Context (JSON object: data, user, input, vars, results...)").fill(
        '{"data": {"amount": 20}}'
    )
    page.get_by_role("button", name="Evaluate").click()
    expect(page.locator("pre.value")).to_have_text("41")
    assert_accessible(page)
    page.get_by_label("CEL expression").fill("data.amount +")
    page.get_by_role("button", name="Evaluate").click()
    expect(page.get_by_role("alert")).to_contain_text("syntax error at line 1, column 14")
    expect(page.locator(".caret")).to_have_text(" " * 13 + "^")
    page.screenshot(path=screenshots / "expressions.png", full_page=True)
    page.get_by_label("CEL expression").fill("[1, 2, 3].map(x, [1, 2, 3].map(y, [1, 2].map(z, z)))")
    page.get_by_role("button", name="Evaluate").click()
    expect(page.get_by_role("alert")).to_contain_text("comprehension")  # over the budget


def test_dead_letters_are_listed_and_replayed(
    page: Page, product: Product, screenshots: Path
) -> None:
    activation_id = str(uuid.uuid4())

    async def publish() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=product.kafka, acks="all")
        await producer.start()
        try:
            bad = json.dumps({"activationId": activation_id, "flowId": "x"}).encode()
            await producer.send_and_wait(Topics(product.topic_prefix).activations, bad, key=b"x")
        finally:
            await producer.stop()

    with ThreadPoolExecutor(1) as thread:  # Playwright's loop runs in this one
        thread.submit(asyncio.run, publish()).result()
    sign_in(page, product)
    page.get_by_role("link", name="Dead letters").click()
    replay = page.get_by_role("button", name="Replay dead letter", exact=False)
    row = page.locator("tr", has=page.locator(f'a[href="#/activations/{activation_id}"]'))
    for _ in range(60):  # parked within moments; the list is read when the page opens
        if row.count():
            break
        page.wait_for_timeout(500)
        page.reload()
    expect(row).to_have_count(1)
    expect(row.locator("td").nth(1)).to_have_text("invalid")
    expect(row.locator("td").nth(4)).to_have_text("no")
    assert_accessible(page)
    page.screenshot(path=screenshots / "dead-letters.png", full_page=True)
    row.get_by_role("button").click()
    expect(row.locator("td").nth(4)).not_to_have_text("no")
    assert replay.count() >= 1


def test_a_viewer_reads_but_cannot_start_and_a_wrong_key_is_refused(
    page: Page, product: Product, api: httpx.Client, answered: set[int]
) -> None:
    answered.update({401, 403})
    page.goto(f"{product.engine}/console/")
    page.get_by_label("Admin key or user-token").fill("not the key")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("401")
    flow = deploy_order_flow(api, product)
    sign_in(page, product, user_token(api, product, ["FlowViewer"]), kind="token")
    page.goto(f"{product.engine}/console/#/flows/{flow['flowId']}")
    page.get_by_role("button", name="Start an execution").click()
    expect(page.get_by_role("alert")).to_contain_text("403")
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()


@pytest.mark.parametrize("scheme", ["standard-webhooks", "github", "stripe"])
def test_the_curl_of_a_signed_trigger_signs_its_body(
    page: Page, product: Product, api: httpx.Client, scheme: str
) -> None:
    definition = {
        "name": f"Signed {scheme}",
        "blocks": [
            {"name": "s", "type": "start", "next": "signed"},
            {
                "name": "signed",
                "type": "external_callback",
                "authenticationType": "SIGNATURE",
                "signatureScheme": scheme,
                "next": "done",
            },
            {"name": "done", "type": "assign", "assign": {"got": "data.ok"}},
        ],
    }
    deployed = api.post(f"{product.engine}/api/automation/flows", json=definition).json()
    secret = deployed["triggers"][0]["signingSecret"]
    started = api.post(
        f"{product.engine}/api/automation/flow/{deployed['flowId']}/execute", json={}
    )
    sign_in(page, product)
    page.goto(f"{product.engine}/console/#/executions/{started.json()['executionId']}")
    curl = page.locator("pre.curl")
    expect(curl).to_contain_text("SIG=", timeout=20_000)
    script = curl.inner_text().replace("BODY='{}'", """BODY='{"ok": true}'""")
    run_curl(script, SECRET=secret)
    expect(page.locator(".status").first).to_have_text("completed", timeout=20_000)
    expect(page.locator("main")).to_contain_text('"got": true')


def test_a_triggers_group_is_one_box_and_its_arrivals_show_on_the_execution(
    page: Page, product: Product, api: httpx.Client, screenshots: Path
) -> None:
    member = {"type": "external_callback", "condition": "data.orderId == input.orderId"}
    definition = {
        "name": f"Captured and reserved {uuid.uuid4().hex[:6]}",
        "blocks": [
            {"name": "s", "type": "start", "next": "Ready"},
            {
                "name": "Ready",
                "type": "triggers_group",
                "mode": "all",
                "windowSeconds": 3600,
                "triggers": [
                    {"name": "Payment Captured", **member},
                    {"name": "Stock Reserved", **member},
                ],
                "next": "Ship",
            },
            {"name": "Ship", "type": "assign", "assign": {"shipped": "true"}},
        ],
    }
    deployed = api.post(f"{product.engine}/api/automation/flows", json=definition).json()
    urls = {t["name"]: t["callbackUrl"] for t in deployed["triggers"]}
    sign_in(page, product)
    page.goto(f"{product.engine}/console/#/flows/{deployed['flowId']}")
    graph = page.get_by_role(
        "img", name="Flow graph of 3 blocks; callback blocks: Payment Captured, Stock Reserved"
    )
    expect(graph).to_be_visible()
    box = graph.locator("g.block.group")
    expect(box).to_have_count(1)
    expect(box.locator("g.member")).to_have_count(2)  # drawn inside the group's box
    inner, outer = (
        box.locator("g.member rect").first.bounding_box(),
        box.locator("rect").first.bounding_box(),
    )
    assert inner is not None
    assert outer is not None
    assert outer["y"] < inner["y"]
    assert inner["y"] + inner["height"] <= outer["y"] + outer["height"]
    assert_accessible(page)
    page.screenshot(path=screenshots / "flow-group.png", full_page=True)

    started = api.post(
        f"{product.engine}/api/automation/flow/{deployed['flowId']}/execute?wait=10",
        json={"orderId": "o-9"},
    ).json()
    page.goto(f"{product.engine}/console/#/executions/{started['executionId']}")
    group = page.get_by_role("region", name="Triggers group Ready")
    expect(group).to_contain_text("Payment Captured · awaited", timeout=20_000)
    httpx.post(urls["Stock Reserved"], json={"orderId": "o-9"}, timeout=10)
    expect(group).to_contain_text("Stock Reserved · arrived", timeout=20_000)
    expect(group).to_contain_text("Payment Captured · awaited")
    expect(page.locator(".timeline")).to_contain_text("arrived Stock Reserved")
    expect(page.locator("pre.curl")).to_have_count(1)  # only the awaited member's
    assert_accessible(page)
    page.screenshot(path=screenshots / "execution-group.png", full_page=True)
    httpx.post(urls["Payment Captured"], json={"orderId": "o-9"}, timeout=10)
    expect(page.locator(".status").first).to_have_text("completed", timeout=20_000)
    expect(page.locator("main")).to_contain_text('"activated"')


def test_the_log_refreshes_live_and_the_charts_show_outcomes_and_the_system(
    page: Page, product: Product, api: httpx.Client, screenshots: Path
) -> None:
    flow = deploy_order_flow(api, product)
    (trigger,) = flow["triggers"]
    token = user_token(api, product, ["PaymentGateway"])

    def callback(user_token: str | None) -> httpx.Response:
        headers = {"user-token": user_token} if user_token else {}
        return api.post(trigger["callbackUrl"], json=PAYMENT, headers=headers)

    assert callback(None).status_code == 401  # refused: in the log with why
    assert callback(token).status_code == 200  # nobody waits: NO_WAITER
    sign_in(page, product)

    page.get_by_role("link", name="Activations").click()
    page.get_by_label("Flow id").fill(flow["flowId"])
    page.get_by_role("button", name="Filter").click()
    rows = page.locator("table.log tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.filter(has_text="REFUSED").first).to_contain_text("answered 401, code 1000")
    page.get_by_label("Live (refresh every 2 s)").check()
    page.evaluate("window.stillTheSamePage = true")
    late = callback(None)
    assert late.status_code == 401
    expect(rows).to_have_count(3, timeout=10_000)  # arrived without a reload
    assert page.evaluate("window.stillTheSamePage") is True
    rows.filter(has_text="NO_WAITER").locator("a").first.click()
    detail = page.get_by_role("region", name="Activation detail")
    expect(detail).to_contain_text("no execution of this flow version waits")
    expect(detail.locator("pre.value")).to_contain_text('"orderId": "o-42"')
    assert_accessible(page)
    page.screenshot(path=screenshots / "activations.png", full_page=True)

    page.goto(f"{product.engine}/console/#/flows/{flow['flowId']}")
    chart = page.get_by_role("figure").filter(has_text="Payment Confirmed: activations per minute")
    expect(chart).to_be_visible(timeout=10_000)
    expect(chart.locator(".legend")).to_contain_text("REFUSED: 2")
    expect(chart.locator(".legend")).to_contain_text("NO_WAITER: 1")
    expect(chart.locator("svg.chart rect")).not_to_have_count(0)
    assert_accessible(page)
    page.screenshot(path=screenshots / "flow-outcomes.png", full_page=True)

    page.get_by_role("link", name="System").click()
    expect(page.get_by_role("heading", name="System")).to_be_visible()
    accepted = page.get_by_role("row", name="Activations accepted")
    expect(accepted).to_be_visible(timeout=10_000)
    for title in (
        "Callbacks per second",
        "Decisions per second",
        "Engine lag (activations not yet decided)",
        "Dead letters per interval",
    ):
        expect(page.get_by_role("img", name=title)).to_be_visible()
    # the totals follow what happens, without a reload
    before = int(accepted.locator("td").inner_text())
    assert callback(token).status_code == 200
    expect(accepted.locator("td")).not_to_have_text(str(before), timeout=10_000)
    expect(
        page.get_by_role("img", name="Callbacks per second").locator("polyline")
    ).not_to_have_count(0)
    assert_accessible(page)
    page.screenshot(path=screenshots / "system.png", full_page=True)
