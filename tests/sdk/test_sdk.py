"""The Backendless JS SDK (npm `backendless`, pinned in package.json) drives the product
on its one origin: every `*.test.mjs` here runs under Node's test runner."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from ..conftest import Product

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
SUITES = sorted(p.name for p in HERE.glob("*.test.mjs"))

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("suite", SUITES)
def test_the_backendless_sdk_works_unchanged(product: Product, suite: str) -> None:
    node = shutil.which("node")
    if node is None:
        pytest.fail("Node.js 20 is needed for the SDK tests (make install installs the SDK)")
    if not (ROOT / "node_modules" / "backendless").is_dir():
        pytest.fail("the Backendless SDK is not installed: run `make install`")
    done = subprocess.run(  # noqa: S603  # Node.js and the project's own tests
        [node, "--test", "--test-reporter=spec", str(HERE / suite)],
        cwd=ROOT,
        env={
            **os.environ,
            "HOOKFLOW_ORIGIN": product.gateway,  # the one origin: nothing else is given
            "HOOKFLOW_ADMIN_KEY": product.admin_key,
        },
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-3000:]
