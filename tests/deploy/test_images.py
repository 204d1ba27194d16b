"""The services' images, built and started here (`make images`: Debian's buildah with
`--isolation chroot`, a base made by mmdebstrap), from the Dockerfiles compose and
Kubernetes use: each image's own entrypoint becomes ready against the real Kafka and
store, a callback through the gateway's image resumes an execution in the engine's, the
processes are not root, no build tool is in an image and nothing is written to one."""

import json
import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_every_image_builds_starts_and_serves_a_callback(
    kafka_bootstrap: str, mongodb_url: str
) -> None:
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap, "MONGODB_URL": mongodb_url}
    built = subprocess.run(  # noqa: S603
        [str(ROOT / "deploy/local/images.sh"), "all"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    report_file = ROOT / ".local/images/report.json"
    assert built.returncode == 0, built.stdout[-4000:] + built.stderr[-4000:]
    report = json.loads(report_file.read_text())
    assert report["passed"] is True
    assert report["callback_resumed_an_execution"] is True
    assert set(report["services"]) == {"gateway", "engine", "auth"}
    for service, found in report["services"].items():
        assert found["ready"], service
        assert found["entrypoint"] == ["python", "-m", service]
        assert found["uid"] == "10001", service
        assert found["build_tools"] == [], service
        assert found["written"] == [], service
    print(json.dumps({s: r["size"] for s, r in report["services"].items()}))
