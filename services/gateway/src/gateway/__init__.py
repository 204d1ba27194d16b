"""hookflow gateway service."""
