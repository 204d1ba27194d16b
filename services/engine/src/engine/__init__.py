"""hookflow engine service."""
