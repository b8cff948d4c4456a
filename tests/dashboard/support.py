"""What the dashboard's command tests share."""

from __future__ import annotations

import re
import subprocess
import time
from typing import IO


def address_of(process: subprocess.Popen[str], log: IO[str] | None = None) -> str:
    """The address the dashboard logs once it listens (on its stderr, or in ``log``)."""
    stream = log or process.stderr
    assert stream is not None
    deadline = time.monotonic() + 30
    seen = []
    while time.monotonic() < deadline:
        line = stream.readline()
        seen.append(line)
        if found := re.search(r"dashboard on (http://\S+)", line):
            return found.group(1)
        if not line:
            if process.poll() is not None:
                break
            time.sleep(0.05)
    raise AssertionError(f"the dashboard did not start: {''.join(seen)}")
