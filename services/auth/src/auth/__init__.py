"""hookflow auth service."""
