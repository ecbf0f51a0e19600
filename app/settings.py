"""Settings from the environment (TUNELAB_*) or a `.env` file."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


def default_data_dir() -> Path:
    return Path.home() / ".tunelab"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TUNELAB_", env_file=".env", extra="ignore")

    data_dir: Path = Field(default_factory=default_data_dir)
    # Empty means the embedded default: a SQLite file in data_dir, created on first start.
    database_url: str = ""
    # Empty means trials run in-process; a redis:// URL sends them to Celery workers.
    broker_url: str = ""
    # Redis for fanning out live events between API processes; defaults to the broker.
    redis_url: str = ""
    # The URL trial processes and workers use to reach this API.
    api_url: str = "http://127.0.0.1:8000"
    host: str = "127.0.0.1"
    port: int = 8000
    # Seconds between sweeps for trials whose heartbeat stopped.
    reaper_interval_s: float = 2.0
    max_body_bytes: int = 4 * 1024 * 1024
    # The whole of a streamed import (POST /studies/import/stream); each of its lines must
    # still fit max_body_bytes.
    max_import_bytes: int = 1024 * 1024 * 1024
    # API processes of `tunelab serve`; above 1 needs PostgreSQL and Redis.
    workers: int = 1
    # Start a demo study on an empty database (the quick start sets it).
    demo: bool = False
    # Start trials of studies that have an `execution` (in-process, or as Celery tasks when
    # a broker is set). `tunelab serve` turns it on; an app built for tests leaves it off.
    run_trials: bool = False
    # API tokens (docs/security.md). auto: required once any token exists, a bootstrap
    # admin token is set, or the server listens beyond loopback; required; off (loopback only).
    auth: Literal["auto", "required", "off"] = "auto"
    # A bootstrap admin token read from the environment, for a first start without the CLI.
    admin_token: str = ""
    # Folders (os.pathsep-separated) a study's execution.working_dir must lie under;
    # empty: the data dir's "work" folder only.
    workdir_roots: str = ""
    # Webhooks (app/webhooks): seconds a receiver has to answer; attempts per delivery,
    # retried after retry_base_s, doubling (with jitter) up to retry_max_s: about 20 min
    # in all by default; how often the dispatcher looks for deliveries committed by other
    # processes; POSTs in flight at once; deliveries kept per webhook in the log.
    webhook_timeout_s: float = 5.0
    webhook_max_attempts: int = 8
    webhook_retry_base_s: float = 10.0
    webhook_retry_max_s: float = 900.0
    webhook_poll_s: float = 1.0
    webhook_concurrency: int = 32
    webhook_keep_deliveries: int = 1000
    # The address people open the dashboard at (e.g. https://tunelab.example.com): webhook
    # messages link to the study and trial there. Empty: messages carry no links.
    public_url: str = ""

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.data_dir / 'tunelab.db'}"

    @property
    def is_sqlite(self) -> bool:
        return self.resolved_database_url.startswith("sqlite")


@lru_cache
def get_settings() -> Settings:
    return Settings()
