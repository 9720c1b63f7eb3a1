"""A Gradio app started in a subprocess, as a user starts it: a free port, and a wait until it serves."""

import socket
import time
import urllib.request
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_serving(proc, url: str, log_path: Path, timeout: float = 120) -> str:
    """`url` once its /gradio_api/info answers; a RuntimeError with the log's end if the process
    exits or `timeout` seconds pass first."""
    started = time.perf_counter()
    while True:
        try:
            if urllib.request.urlopen(url + "gradio_api/info", timeout=2).status == 200:
                return url
        except OSError:
            pass
        if proc.poll() is not None or time.perf_counter() - started > timeout:
            raise RuntimeError(f"the app did not start: {Path(log_path).read_text()[-3000:]}")
        time.sleep(0.5)
