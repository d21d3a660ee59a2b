"""The app class: chalice's ``Chalice`` with the request being handled kept per thread."""

import threading

from chalice import Chalice
from chalice.app import Request


class ThreadSafeChalice(Chalice):
    """Chalice keeps the request being handled in one attribute of the app, shared by all threads.

    Lambda sends one event at a time, but `chalice local` serves each connection on its own thread,
    and there two concurrent requests could each read the other's body: one client got another
    client's answer. Each thread keeps its own current request instead.
    """

    _requests = threading.local()

    @property
    def current_request(self) -> Request | None:
        return getattr(self._requests, "request", None)

    @current_request.setter
    def current_request(self, request: Request | None) -> None:
        self._requests.request = request
