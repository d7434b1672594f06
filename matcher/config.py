"""The only reader of the environment. Everything else takes arguments."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
PROJECT_DIR = PACKAGE_DIR.parent
DATA_DIR = PACKAGE_DIR / "data"
DEFAULT_POLICY = PACKAGE_DIR / "policy.toml"


def _project_root() -> Path:
    """Where `instance/` and `models/` live: the checkout, or the working directory when installed."""
    if (PROJECT_DIR / "setup.cfg").exists():
        return PROJECT_DIR
    return Path.cwd()


@dataclass(frozen=True)
class Settings:
    database_url: str
    model_path: str | None
    models_dir: Path
    policy_path: Path
    instance_dir: Path
    redis_url: str | None = None
    rate_limit_per_minute: int = 600
    max_json_bytes: int = 1 << 20
    max_csv_bytes: int = 50 << 20
    log_level: str = "INFO"
    dask_scheduler: str | None = None      # recommend and allocate on a Dask cluster (SPEC section 9)
    # Honour X-Forwarded-Proto (session cookies marked Secure behind an HTTPS proxy) only when told to.
    trust_proxy: bool = False


def _int(env: dict, name: str, default: int) -> int:
    raw = env.get(name)
    if raw in (None, ""):
        return default
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"environment variable {name} must be an integer, got {raw!r}") from None


def _bool(env: dict, name: str) -> bool:
    raw = (env.get(name) or "").strip().lower()
    if raw in ("", "0", "false", "no"):
        return False
    if raw in ("1", "true", "yes"):
        return True
    raise ValueError(f"environment variable {name} must be true or false, got {raw!r}")


def load_settings(env: dict | None = None) -> Settings:
    """Read MATCHER_* variables; defaults give the embedded SQLite setup."""
    env = dict(os.environ if env is None else env)
    root = _project_root()
    instance = Path(env.get("MATCHER_INSTANCE") or root / "instance")
    db = env.get("MATCHER_DATABASE_URL") or f"sqlite:///{instance / 'matcher.db'}"
    return Settings(
        database_url=db,
        model_path=env.get("MATCHER_MODEL") or None,
        models_dir=Path(env.get("MATCHER_MODELS_DIR") or root / "models"),
        policy_path=Path(env.get("MATCHER_POLICY") or DEFAULT_POLICY),
        instance_dir=instance,
        redis_url=env.get("MATCHER_REDIS_URL") or None,
        rate_limit_per_minute=_int(env, "MATCHER_RATE_LIMIT", 600),
        max_json_bytes=_int(env, "MATCHER_MAX_JSON_BYTES", 1 << 20),
        max_csv_bytes=_int(env, "MATCHER_MAX_CSV_BYTES", 50 << 20),
        log_level=env.get("MATCHER_LOG_LEVEL", "INFO"),
        dask_scheduler=env.get("MATCHER_DASK_SCHEDULER") or None,
        trust_proxy=_bool(env, "MATCHER_TRUST_PROXY"),
    )
