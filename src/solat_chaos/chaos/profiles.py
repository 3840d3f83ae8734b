"""Hypothesis settings profiles and the example database of solat_chaos.

Promises:

- Importing this module registers four Hypothesis profiles (on Hypothesis' default directory
  database, `.hypothesis/examples`):

  | profile   | for                    | budget                                          |
  |-----------|------------------------|-------------------------------------------------|
  | `ci`      | every commit (default) | 50 examples x 30 steps, derandomized, so a CI   |
  |           |                        | failure reproduces locally; no database (a      |
  |           |                        | derandomized run never reads or writes one)     |
  | `dev`     | a developer's machine  | 100 examples x 50 steps, 500 ms deadline        |
  | `nightly` | the long runs          | 2000 examples x 100 steps, no deadline          |
  | `replay`  | re-running failures    | only the stored examples (explicit and reuse    |
  |           |                        | phases), nothing generated                      |

  Every profile prints the `@reproduce_failure` blob of a failure.
- `database_from()` turns `SOLAT_CHAOS_DB` (a directory, or a `redis://` / `rediss://` /
  `unix://` URL for Hypothesis' own `RedisExampleDatabase`) into an example database, or
  raises `DatabaseError` with one line saying what is wrong (bad URL, Redis unreachable,
  redis client missing, path not a directory). It checks a Redis database answers a PING.
- `configure()` re-registers the profiles on that database and loads one; the pytest plugin
  (`profiles_plugin`) calls it. This module needs no pytest: explore and replay use it too.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlsplit

from hypothesis import HealthCheck, Phase, settings
from hypothesis.database import DirectoryBasedExampleDatabase, ExampleDatabase
from hypothesis.errors import InvalidArgument

PROFILE_ENV = "SOLAT_CHAOS_PROFILE"
DB_ENV = "SOLAT_CHAOS_DB"
DEFAULT_PROFILE = "ci"
DEFAULT_DB_DIR = ".hypothesis/examples"
PROFILES = ("ci", "dev", "nightly", "replay")
REDIS_SCHEMES = ("redis", "rediss", "unix")

# The longest example any profile generates: replay must allow it, since a replayed example
# cut short by a smaller step budget is a different example.
_MAX_STEPS = 100

_BUDGETS: dict[str, dict[str, object]] = {
    "ci": {
        "max_examples": 50,
        "stateful_step_count": 30,
        # Derandomized: the same examples on every CI run of the same code, so a red CI is
        # reproduced by running the same test locally. Hypothesis forbids a database here.
        "derandomize": True,
        "deadline": None,
        "suppress_health_check": [HealthCheck.too_slow],
    },
    "dev": {
        "max_examples": 100,
        "stateful_step_count": 50,
        "deadline": 500,
    },
    "nightly": {
        "max_examples": 2000,
        "stateful_step_count": _MAX_STEPS,
        "deadline": None,
        "suppress_health_check": [HealthCheck.too_slow],
    },
    "replay": {
        "phases": [Phase.explicit, Phase.reuse],
        "stateful_step_count": _MAX_STEPS,
        "deadline": None,
    },
}


class DatabaseError(Exception):
    """SOLAT_CHAOS_DB names an example database that cannot be used; the message says why."""


def register_profiles(database: ExampleDatabase | None = None) -> None:
    """Register the four profiles; all but the derandomized `ci` use `database` (Hypothesis'
    default directory database when None)."""
    # An explicit parent, so the profiles do not inherit whichever profile is loaded now
    # (Hypothesis loads its own `ci` profile when the CI variable is set).
    base = settings.get_profile("default")
    for name, budget in _BUDGETS.items():
        chosen = {} if database is None or budget.get("derandomize") else {"database": database}
        settings.register_profile(name, base, print_blob=True, **chosen, **budget)


def selected_profile(requested: str | None = None) -> str:
    """The profile to use: `requested`, else SOLAT_CHAOS_PROFILE, else `ci`. Raises
    InvalidArgument naming the known profiles when it is not registered."""
    name = requested or os.environ.get(PROFILE_ENV) or DEFAULT_PROFILE
    try:
        settings.get_profile(name)
    except InvalidArgument:
        raise InvalidArgument(
            f"unknown Hypothesis profile {name!r} (solat_chaos has {', '.join(PROFILES)})"
        ) from None
    return name


def database_from(spec: str | None = None) -> ExampleDatabase:
    """The example database `spec` names (default: SOLAT_CHAOS_DB, else `.hypothesis/examples`).

    A Redis URL must answer a PING now: a nightly run that cannot share its failures should
    stop at once rather than at its first failure."""
    spec = spec if spec is not None else os.environ.get(DB_ENV) or DEFAULT_DB_DIR
    scheme = urlsplit(spec).scheme
    if scheme in REDIS_SCHEMES:
        return _redis_database(spec)
    # One letter is a Windows drive, not a URL scheme.
    if len(scheme) > 1:
        raise DatabaseError(
            f"{DB_ENV}={spec!r}: not a directory or a redis:// URL "
            f"(schemes understood: {', '.join(REDIS_SCHEMES)})"
        )
    path = Path(spec)
    if path.exists() and not path.is_dir():
        raise DatabaseError(f"{DB_ENV}={spec!r}: exists and is not a directory")
    return DirectoryBasedExampleDatabase(path)


def _redis_database(url: str) -> ExampleDatabase:
    try:
        import redis
        from hypothesis.extra.redis import RedisExampleDatabase
    except ImportError:
        raise DatabaseError(
            f"{DB_ENV}={url!r} needs the redis client: pip install 'solat-chaos[redis]'"
        ) from None
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=5, socket_timeout=30)
    except ValueError as exc:
        raise DatabaseError(f"{DB_ENV}={url!r}: not a valid Redis URL ({exc})") from None
    try:
        client.ping()
    except redis.RedisError as exc:
        raise DatabaseError(f"{DB_ENV}={url!r}: Redis does not answer ({exc})") from None
    return RedisExampleDatabase(client)


def configure(profile: str | None = None, database_spec: str | None = None) -> str:
    """Register the profiles on the database of `database_spec` (default SOLAT_CHAOS_DB), load
    the selected profile and return its name."""
    name = selected_profile(profile)
    register_profiles(database_from(database_spec))
    settings.load_profile(name)
    return name


register_profiles()
