"""The hookflow command line."""
