from pathlib import Path

from schemas.errors import ErrorCode

PAGE = Path(__file__).resolve().parents[2] / "docs" / "errors.md"


def test_every_error_code_is_documented() -> None:
    text = PAGE.read_text()
    missing = [c for c in ErrorCode if f"| {c.value} |" not in text or c.name not in text]
    assert missing == []
