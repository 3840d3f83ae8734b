"""The API token: created once per data directory, readable by its owner only, compared in
constant time, and never shown whole."""

from __future__ import annotations

import hmac
import os
import secrets
from pathlib import Path

TOKEN_FILE = "api_token"


def load_or_create_token(data_dir: Path) -> str:
    """The data directory's token; a new one (mode 0600) at the first start."""
    path = data_dir / TOKEN_FILE
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        token = path.read_text().strip()
        if not token:
            raise ValueError(f"{path} is empty: remove it to have a new token made") from None
        return token
    token = secrets.token_urlsafe(32)
    with os.fdopen(descriptor, "w") as file:
        file.write(token + "\n")
        file.flush()
        os.fsync(file.fileno())
    return token


def bearer_matches(authorization: str | None, token: str) -> bool:
    """Whether an Authorization header carries `token`, compared in constant time."""
    scheme, _, presented = (authorization or "").partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(presented.strip().encode(), token.encode())


def redacted(token: str) -> str:
    """Enough of the token to tell two apart in a log, not enough to use it."""
    return f"{token[:4]}…"
