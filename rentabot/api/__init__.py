"""The HTTP API: rentabot 1.0.0's routes and keys, plus the additions of later versions."""
