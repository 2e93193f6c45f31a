"""The web page at ``/``: the lab's resources and queue at a glance."""
