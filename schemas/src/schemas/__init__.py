"""Models, topic names and helpers shared by every hookflow service."""
