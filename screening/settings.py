"""Settings of the web service (``sse-screen serve``): which models, how much input, who may call the API."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

#: Environment variable holding the optional API token (``Authorization: Bearer <token>`` on ``/api/*``).
TOKEN_ENV = "SSE_SCREEN_API_TOKEN"
MAX_UPLOAD_ENV = "SSE_SCREEN_MAX_UPLOAD_BYTES"
MAX_ROWS_ENV = "SSE_SCREEN_MAX_ROWS"
HOME_ENV = "SSE_SCREEN_HOME"
MAX_RUNNING_JOBS_ENV = "SSE_SCREEN_MAX_RUNNING_JOBS"
DEFAULT_MAX_UPLOAD_BYTES = 20 * 1024 * 1024
DEFAULT_MAX_ROWS = 100_000


@dataclass(frozen=True, kw_only=True)
class Settings:
    """Configuration of :func:`screening.api.create_app`.

    Attributes:
        model_uris: Task (``stability``, ``band_gap``, ``conductivity``) -> model URI or bundle folder; a task left
            out falls back to ``SSE_SCREEN_<TASK>_MODEL_URI``, then to the shipped model.
        max_upload_bytes: Largest request body accepted (bytes); larger requests get 413.
        max_rows: Most candidate rows accepted in one request; more get 413.
        api_token: When set, every ``/api/*`` route needs ``Authorization: Bearer <api_token>``.
        max_parallel_jobs: Rankings computed at the same time (the rest queue; the event loop is never blocked).
        home: The service's home folder: job records (SQLite) and results of ``POST /api/jobs``; None:
            ``$SSE_SCREEN_HOME``, else ``~/.sse-screen``.
        max_running_jobs: Jobs of ``POST /api/jobs`` ranked at the same time (the rest wait, on disk).
    """

    model_uris: Mapping[str, str | None] = field(default_factory=dict)
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES
    max_rows: int = DEFAULT_MAX_ROWS
    api_token: str | None = None
    max_parallel_jobs: int = 2
    home: str | None = None
    max_running_jobs: int = 1

    def home_folder(self) -> Path:
        """Where job records and results live (see ``home``)."""
        return Path(self.home or os.environ.get(HOME_ENV) or Path.home() / ".sse-screen")

    @classmethod
    def from_env(cls, **overrides: object) -> Settings:
        """Settings from the environment (``SSE_SCREEN_API_TOKEN``, ``SSE_SCREEN_MAX_UPLOAD_BYTES``,
        ``SSE_SCREEN_MAX_ROWS``, ``SSE_SCREEN_MAX_RUNNING_JOBS``), with keyword overrides taking precedence.

        Raises:
            ValueError: A numeric environment variable is not a positive integer.
        """
        values: dict[str, object] = {"api_token": os.environ.get(TOKEN_ENV) or None}
        numeric = {
            "max_upload_bytes": MAX_UPLOAD_ENV,
            "max_rows": MAX_ROWS_ENV,
            "max_running_jobs": MAX_RUNNING_JOBS_ENV,
        }
        for name, env in numeric.items():
            raw = os.environ.get(env)
            if raw:
                if not raw.strip().isdigit() or int(raw) <= 0:
                    raise ValueError(f"{env} must be a positive integer, got {raw!r}")
                values[name] = int(raw)
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)  # type: ignore[arg-type]
