"""`python -m engine.openapi`: write the committed OpenAPI document."""

from engine.openapi import COMMITTED, rendered

COMMITTED.parent.mkdir(parents=True, exist_ok=True)
COMMITTED.write_text(rendered())
print(f"wrote {COMMITTED}")
