import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "forum.settings")

from channels.routing import ProtocolTypeRouter, URLRouter
from django.core.asgi import get_asgi_application
from django.urls import path

django_app = get_asgi_application()

from forum.consumers import ForumConsumer  # noqa: E402

application = ProtocolTypeRouter({"http": django_app, "websocket": URLRouter([path("ws", ForumConsumer.as_asgi())])})
