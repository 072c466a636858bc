"""Container health probe: exit 0 if a URL answers 2xx within a few seconds, 1 otherwise.

Concept: containers (C46). The slim Python base images have no curl or wget, and installing one
only for a probe adds a package to patch. The interpreter is already in every image we build, so
the probe is a few lines of standard library. Used by the Dockerfiles' HEALTHCHECK and by compose.

Usage: python healthcheck.py URL [TIMEOUT_SECONDS]
"""

from __future__ import annotations

import sys
import urllib.error
import urllib.request


def probe(url: str, timeout: float) -> tuple[bool, str]:
    """(healthy?, one line saying why) for a GET of ``url``."""
    if not url.startswith(("http://", "https://")):
        return False, f"not an http(s) URL: {url!r}"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - scheme checked above
            return 200 <= response.status < 300, f"{url} answered {response.status}"
    except urllib.error.HTTPError as err:
        return False, f"{url} answered {err.code}"
    except (urllib.error.URLError, OSError) as err:
        return False, f"{url} unreachable: {err}"


def main(argv: list[str]) -> int:
    if len(argv) not in (2, 3):
        print("usage: healthcheck.py URL [TIMEOUT_SECONDS]", file=sys.stderr)
        return 1  # Docker reserves exit code 2: only 0 (healthy) and 1 (unhealthy) are meaningful
    healthy, reason = probe(argv[1], float(argv[2]) if len(argv) == 3 else 3.0)
    print(reason)
    return 0 if healthy else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
