"""A proxy that refuses and records every request, to show that a process reached for no network.

Processes started with `RecordingProxy.env()` send their HTTP and HTTPS requests to it (requests, urllib,
aiohttp with trust_env, pip and git all read these variables); it answers 403 and keeps the request line.
An empty `requests` after the run means none was attempted, not merely that one failed quietly.
"""
import http.server
import threading

PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")
LOCAL = "127.0.0.1,localhost"  # the test talks to its own ComfyUI server directly


class RecordingProxy:
    """Context manager: a refusing proxy on 127.0.0.1; `requests` lists "METHOD target" of each request it saw."""

    def __init__(self):
        self.requests: list = []
        proxy = self

        class Refuse(http.server.BaseHTTPRequestHandler):
            def _refuse(self):
                proxy.requests.append(f"{self.command} {self.path}")
                self.send_error(403, "offline test: no network")

            do_GET = do_POST = do_PUT = do_HEAD = do_CONNECT = do_DELETE = do_PATCH = do_OPTIONS = _refuse

            def log_message(self, *args):  # quiet: the list is the record
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Refuse)
        self._thread = threading.Thread(target=self._server.serve_forever, name="recording-proxy", daemon=True)

    def env(self) -> dict:
        """The variables that send a process's HTTP(S) through this proxy (local addresses excepted)."""
        url = f"http://127.0.0.1:{self._server.server_address[1]}"
        return {**{name: url for name in PROXY_VARIABLES}, "NO_PROXY": LOCAL, "no_proxy": LOCAL}

    def __enter__(self) -> "RecordingProxy":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(10)
