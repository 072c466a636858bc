"""Credentials out of anything we print, log, serve or store: one helper for every message.

Concept: security (C44). Database and tracking URLs carry passwords (``postgresql://user:secret@host``);
an error message, a readiness report or a flow run's stored parameters must show where, never with what.
"""

from __future__ import annotations

import re

# scheme://user:password@ -> scheme://user:***@ (the user name stays: it says which account is meant)
_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<user>[^:/@\s]*):(?P<password>[^@/\s]+)@")


def redact(text: str) -> str:
    """``text`` with the password of every ``scheme://user:password@`` URL replaced by ``***``."""
    return _USERINFO.sub(lambda m: f"{m['scheme']}{m['user']}:***@", text)
