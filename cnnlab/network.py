"""The one network probe: can a download server be reached within a few seconds? (stdlib only)

Downloads (``cnnlab download``, ``load_alexnet("imagenet")``, ``load_mnist(download=True)``)
call ``reachable`` first, so that without a network they fail within ``timeout`` seconds with
a message naming the offline alternative, instead of waiting for the operating system to give
up. Nothing here changes the process-wide socket timeout: other code in the same process (a
Jupyter kernel, a running download) keeps its own settings.
"""

from __future__ import annotations

import socket
import threading
from urllib.parse import urlparse

PROBE_TIMEOUT = 5.0  # seconds to open a TCP connection to the download server


def reachable(url: str, timeout: float = PROBE_TIMEOUT) -> bool:
    """True if a TCP connection to the URL's host opens within ``timeout`` seconds.

    The probe runs in a daemon thread, so a hanging DNS look-up cannot block the caller either.
    """
    parsed = urlparse(url)
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    result: list[bool] = []

    def probe() -> None:
        try:
            socket.create_connection((parsed.hostname, port), timeout=timeout).close()
            result.append(True)
        except OSError:
            result.append(False)

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(timeout)
    return bool(result and result[0])


__all__: list[str] = []
