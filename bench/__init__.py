"""Kindred's fan-out benchmark: Kindred side by side with Django Channels and a raw-websockets ceiling, same box,
same run. Entry point: `uv run --group bench python -m bench` (see bench/README.md)."""
