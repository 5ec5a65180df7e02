"""The project's ASGI application as the live server runs it in browser tests.

Identical to config.asgi except that HTTP also serves static files (as ``runserver`` and
Channels' live-server test case do), since no front web server sits in front of it here.
"""

from channels.routing import ProtocolTypeRouter
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler

from config.asgi import application as project_application
from config.asgi import django_asgi_app

application = ProtocolTypeRouter(
    {
        "http": ASGIStaticFilesHandler(django_asgi_app),
        "websocket": project_application.application_mapping["websocket"],
    }
)
