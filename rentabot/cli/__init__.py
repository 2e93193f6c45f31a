"""The ``rentabot`` command: start the service, and manage its store."""
