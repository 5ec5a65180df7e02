import inspect
import os
from concurrent.futures import ThreadPoolExecutor

import django
from asgiref.sync import ThreadSensitiveContext, sync_to_async
from django.core.handlers.asgi import ASGIHandler

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
# Django must be set up before consumers (which import models) are loaded.
django.setup(set_prefix=False)

# Idle request threads kept per process; more concurrent requests than this still get their own.
REQUEST_THREADS_KEPT = 32


class ReusedThreadsASGIHandler(ASGIHandler):
    """Django's ASGI handler, with the threads sync views and middleware run in kept for reuse.

    Django runs each request's sync code in a thread of its own: stock, a new thread is started
    for every request and another one joins it afterwards. For the Twilio webhooks (a few ms of
    work each) that start-up and tear-down was about an eighth of the CPU a request costs. Here a
    request borrows an idle single-thread executor and gives it back, as a threaded WSGI server
    reuses its threads. One request at a time per thread, as before: thread-local state (the
    database connection, returned to the pool at the end of every request) is never shared by
    two requests at once.
    """

    def __init__(self) -> None:
        super().__init__()
        self._idle: list[ThreadPoolExecutor] = []  # touched only on the event loop's thread

    def load_middleware(self, is_async: bool = False) -> None:
        # Some of our middleware is sync-only (WhiteNoise, crm's), so Django's async stack
        # crosses from the event loop into the request's thread, back to the loop halfway down
        # the stack, and into the thread again for the (sync) view. Built in sync mode and
        # entered once, the same middleware and view run in the same thread with one crossing.
        super().load_middleware(is_async=False)
        if is_async:
            self._middleware_chain = sync_to_async(self._middleware_chain, thread_sensitive=True)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await super().__call__(scope, receive, send)
        executor = (
            self._idle.pop()
            if self._idle
            else ThreadPoolExecutor(max_workers=1, thread_name_prefix="django-request")
        )
        try:
            async with ThreadSensitiveContext(executor=executor):
                await self.handle(scope, receive, send)
        finally:
            if len(self._idle) < REQUEST_THREADS_KEPT:
                self._idle.append(executor)
            else:
                executor.shutdown(wait=False)


# Only recent asgiref releases let ThreadSensitiveContext take an executor; older: Django's own.
_takes_executor = "executor" in inspect.signature(ThreadSensitiveContext).parameters
django_asgi_app = ReusedThreadsASGIHandler() if _takes_executor else ASGIHandler()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from config.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": AllowedHostsOriginValidator(
            AuthMiddlewareStack(URLRouter(websocket_urlpatterns))
        ),
    }
)
