"""Route modules, one per kind of thing the API serves."""
