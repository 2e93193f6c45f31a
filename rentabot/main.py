"""The ASGI application, for ``uvicorn rentabot.main:app``.

Settings come from ``RENTABOT_*`` environment variables, the descriptor from
``RENTABOT_RESOURCE_DESCRIPTOR``, as with rentabot 1.0.0.
"""

from rentabot.api.app import create_app

app = create_app()
