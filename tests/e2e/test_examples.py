"""The examples' README walkthroughs, run as written against the product.

Every `sh` block of `examples/*/README.md` runs in bash, from the repository root, with
the product's URLs and admin key in the environment; each `# -> <output>` comment must
be printed, in order (`...` stands for anything).
"""

import asyncio
import os
import re
from pathlib import Path

import pytest

from ..conftest import ROOT, Product

WALKTHROUGHS = sorted((ROOT / "examples").glob("*/README.md"))
_BLOCK = re.compile(r"^```sh\n(.*?)^```", re.MULTILINE | re.DOTALL)


def test_every_example_has_a_walkthrough() -> None:
    flows = sorted(p.parent for p in (ROOT / "examples").glob("*/flow.json"))
    assert flows == [p.parent for p in WALKTHROUGHS]
    assert len(flows) >= 2


@pytest.mark.parametrize("readme", WALKTHROUGHS, ids=lambda p: p.parent.name)
async def test_the_walkthrough_works_as_written(product: Product, readme: Path) -> None:
    script = "\n".join(_BLOCK.findall(readme.read_text()))  # noqa: ASYNC240  # a small file
    expected = [line.split("# -> ", 1)[1] for line in script.splitlines() if "# -> " in line]
    assert expected, "a walkthrough shows what its commands print"
    env = {
        **os.environ,
        "HOOKFLOW_ADMIN_KEY": product.admin_key,
        "GATEWAY": product.gateway,
        "ENGINE": product.engine,
    }
    process = await asyncio.create_subprocess_exec(
        "bash",
        "-euo",
        "pipefail",
        "-c",
        script,
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    async with asyncio.timeout(120):
        output, _ = await process.communicate()
    printed = output.decode()
    assert process.returncode == 0, printed
    position = 0
    for line in expected:
        for fragment in (f.strip() for f in line.split("...") if f.strip()):
            found = printed.find(fragment, position)
            assert found >= 0, f"{fragment!r} not printed after position {position}:\n{printed}"
            position = found + len(fragment)
