"""One settings object for every t2m process (CLI, worker, API), read from `T2M_*` env vars."""

from __future__ import annotations

import ipaddress
import os
import re
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict, SettingsError

from t2m.media.voices import PROVIDER_VOICE, is_provider_voice


def _default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "t2m"


RENDER_TIMEOUT_MAX_S = 540.0
"""The most `render_timeout_s` may be: a render's jail must time out before its activity does
(render_scene: 20 min, the dry pass plan_render: 10 min), so that a slow scene reaches the fix
loop as "too slow" instead of being retried as it is until the job's timeout."""
HOST_PORT = re.compile(r"(?:\[[0-9A-Fa-f:.]+\]|[^\s:/\[\]]+):(\d{1,5})")
SERVICE_LINK = re.compile(r"(tcp|udp|sctp)://[^/\s]+:\d+")
"""The value the kubelet gives `<SERVICE>_PORT` for every Service of a pod's namespace (unless the
pod sets `enableServiceLinks: false`): a Service named `t2m-api` yields `T2M_API_PORT=tcp://IP:80`."""
PORT_SETTINGS = ("api_port", "temporal_ui_port", "worker_metrics_port")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="T2M_", env_file=".env", extra="ignore")

    @model_validator(mode="before")
    @classmethod
    def _ignore_service_links(cls, data: object) -> object:
        """A port setting whose value is a kubelet service link (`tcp://IP:PORT`) is not a port
        someone set: ignore it (the default applies) instead of failing every pod at start.
        Any other non-integer value still fails."""
        if isinstance(data, dict):
            return {
                k: v
                for k, v in data.items()
                if not (k in PORT_SETTINGS and isinstance(v, str) and SERVICE_LINK.fullmatch(v))
            }
        return data

    data_dir: Path = Field(default_factory=_default_data_dir)
    """Temporal's SQLite file, local storage and logs live here."""

    temporal_address: str = "127.0.0.1:7233"
    temporal_namespace: str = "t2m"
    temporal_ui_port: int = 8233
    task_queue_prefix: str = "t2m"
    """Queues are `<prefix>-video`, `<prefix>-llm`, `<prefix>-render` and `<prefix>-media`."""

    storage_url: str | None = None
    """Where artifacts live: `file:///path` or `s3://bucket[/prefix]` (endpoint, region and
    credentials from the standard AWS configuration); `<data_dir>/storage` when unset."""
    presign_expiry_s: int = Field(default=1800, ge=60, le=7 * 24 * 3600)
    """Lifetime of the presigned S3 URLs `video-url` and the media endpoints hand out."""
    s3_public_endpoint: str | None = None
    """The S3 endpoint browsers reach (e.g. `https://s3.example.com`), when it is not the one the
    pods use (`AWS_ENDPOINT_URL`, say an in-cluster service): presigned URLs name and are signed
    for this one. Unset: the pods' endpoint."""

    database_url: str | None = None
    """PostgreSQL for the job catalog; `t2m up` runs an embedded one when this is unset."""
    migrate_catalog: bool = True
    """Apply the catalog's pending migrations on connect (`t2m up`, the set-up step). Deployed
    API and workers set it false: they only check the schema is current, and their database role
    needs no DDL rights."""

    api_host: str = "127.0.0.1"
    api_port: int = Field(default=8000, ge=1, le=65535)
    allowed_models: list[str] = ["offline/templates"]
    """Models a request may name (JSON list in T2M_ALLOWED_MODELS), besides `default_model`,
    which is always allowed."""
    dev_user: str | None = "local"
    """Identity (an admin) for requests without credentials; only honoured on a loopback bind."""
    jwks_url: str | None = None
    """JWKS of the identity provider whose RS256 JWTs are accepted (e.g. Clerk's)."""
    jwt_issuer: str | None = None
    jwt_audience: str | None = None
    jwt_admin_claim: str = "t2m_admin"
    secret_key: str | None = None
    """Signs short-lived media URLs; generated and kept in the data dir when unset."""

    default_model: str = "offline/templates"
    planner_model: str | None = None
    """Model for plans and storyboards; the request's model when unset."""
    coder_model: str | None = None
    """Model for writing and fixing scene code; the request's model when unset."""
    vision_model: str | None = None
    """A vision-capable litellm model for the visual check (requests opt in); none by default."""
    reuse_results: bool = True
    """Answer a request identical to a finished job's with that job's video (`force` opts out)."""
    llm_cache: bool = True
    """Keep model responses in storage so an identical request never pays twice."""
    share_caches_across_owners: bool = False
    """Let the whole-result cache and the model-response cache answer one owner with what
    another owner's job paid for. Off: each owner's requests are made anew (a shared answer
    would confirm a guess of another user's private topic)."""
    user_max_priority: Literal["low", "normal", "high", "urgent"] = "normal"
    """The highest priority a non-admin may ask for (403 above it); admins may use any."""
    max_active_jobs_per_user: int = Field(default=10, ge=1)
    """Queued or running jobs per non-admin user; a new job or retry beyond it answers 429."""
    max_jobs_per_minute_per_user: int = Field(default=20, ge=1)
    """New jobs a non-admin user may create in any 60 s; more answer 429 with Retry-After."""
    default_voice: str = "en-us"
    """The narration voice when a request names none: an espeak-ng voice or `festival:us_slt`
    (offline), or one of `allowed_voices`."""
    allowed_voices: list[str] = []
    """Provider voices a request may name besides espeak-ng's (JSON list in T2M_ALLOWED_VOICES),
    each `PROVIDER/MODEL:VOICE` as litellm's speech API takes them, e.g. `openai/tts-1:nova`
    (the provider's usual environment applies: `OPENAI_API_KEY`, `OPENAI_API_BASE`...)."""
    max_fix_attempts: int = Field(default=3, ge=1, le=10)
    """Renders per scene: the first attempt plus model fixes, bounded."""
    default_max_cost_usd: float | None = Field(default=None, gt=0)
    """Budget (USD) of a request's model calls when it names none; no budget when unset (and
    no ceiling)."""
    max_cost_usd_ceiling: float | None = Field(default=None, gt=0)
    """The largest `max_cost_usd` a request may ask for; the budget of requests naming none
    when no default is set."""

    render_concurrency: int = Field(default_factory=lambda: os.cpu_count() or 1, ge=1)
    llm_concurrency: int = Field(default=32, ge=1)
    render_timeout_s: float = Field(default=300.0, gt=0, le=RENDER_TIMEOUT_MAX_S)
    render_cpu_s: int = Field(default=600, ge=10)
    split_min_range_s: float = Field(default=8.0, ge=0)
    """Split renders (`t2m.render.split`): the least estimated render seconds worth a range of its own."""
    render_slots: int = Field(default=0, ge=0)
    """Render slots of the whole fleet for split renders; 0: the workers polling the render queue
    times this worker's `render_concurrency`, less the renders waiting."""
    reconcile_every_s: int = Field(default=300, ge=10)
    """How often the catalog is checked against Temporal (a Temporal Schedule)."""
    reconcile_grace_s: float = Field(default=600.0, ge=0)
    worker_metrics_port: int | None = Field(default=None, ge=1, le=65535)
    """Serve the worker's Prometheus metrics (the Temporal SDK's and t2m's own) on this port at
    `/metrics`; off when unset. One port per worker process."""
    worker_metrics_host: str = "127.0.0.1"
    """Address the worker metrics endpoint binds (loopback by default)."""
    worker_drain_s: float = Field(default=100.0, ge=0, le=3600)
    """On SIGTERM a worker stops polling and lets in-flight activities finish for up to this long
    before cancelling them; deployments give their pods/containers a grace period above it (120 s)."""
    deployment_name: str = "t2m"
    """Worker Versioning: the Temporal worker deployment this release's workers belong to."""
    promote_build: bool = True
    """Worker Versioning: a worker serving the video queue makes its build the deployment's
    current version at start (new runs go to it; runs pinned to older builds stay on them). Off
    where a rollout tool (or an operator) decides when a build becomes current."""
    build_id: str | None = None
    """Worker Versioning: this release's build id; by default derived from the package version and
    a hash of the workflow code, so a forgotten version bump cannot reuse an id."""

    @field_validator("allowed_voices")
    @classmethod
    def _provider_voices(cls, voices: list[str]) -> list[str]:
        for voice in voices:
            if not PROVIDER_VOICE.fullmatch(voice):
                raise ValueError(f"{voice!r}: use PROVIDER/MODEL:VOICE, e.g. openai/tts-1:nova")
        return voices

    @field_validator("temporal_address")
    @classmethod
    def _host_and_port(cls, address: str) -> str:
        found = HOST_PORT.fullmatch(address)
        if not found or not 1 <= int(found.group(1)) <= 65535:
            raise ValueError("use HOST:PORT (a port from 1 to 65535), e.g. 127.0.0.1:7233")
        return address

    @field_validator("s3_public_endpoint")
    @classmethod
    def _endpoint_url(cls, url: str | None) -> str | None:
        if url and not url.startswith(("http://", "https://")):
            raise ValueError("use http(s)://host[:port]")
        return url or None

    @field_validator("storage_url")
    @classmethod
    def _storage_scheme(cls, url: str | None) -> str | None:
        if url and not (url.startswith("file:///") or (url.startswith("s3://") and len(url) > 5)):
            raise ValueError("use file:///path or s3://bucket[/prefix]")
        return url

    @model_validator(mode="after")
    def _default_within_ceiling(self) -> Settings:
        ceiling, default = self.max_cost_usd_ceiling, self.default_max_cost_usd
        if ceiling is not None and default is not None and default > ceiling:
            raise ValueError(
                f"T2M_DEFAULT_MAX_COST_USD ({default}) is above"
                f" T2M_MAX_COST_USD_CEILING ({ceiling})"
            )
        return self

    @model_validator(mode="after")
    def _default_voice_allowed(self) -> Settings:
        voice = self.default_voice
        if is_provider_voice(voice) and voice not in self.allowed_voices:
            raise ValueError(f"T2M_DEFAULT_VOICE {voice!r} is not in T2M_ALLOWED_VOICES")
        return self

    @property
    def storage_dir(self) -> Path:
        return self.data_dir / "storage"

    def queue(self, kind: str) -> str:
        return f"{self.task_queue_prefix}-{kind}"


WORKER_QUEUES = ("video", "llm", "render")
"""What a worker process can serve (`t2m worker --queues`, `t2m up --queues`): `render` brings its
sibling `media` (the finishing steps run on render hosts)."""
DRAIN_MARGIN_S = 10.0
"""After the drain limit the SDK cancels what still runs; this long more for that to finish before
the process exits regardless (deployments' grace periods leave room for it)."""
POLLER_FRESH_S = 120
"""A worker re-polls its task queue at least every ~70 s; the server lists a gone worker's pollers
until they age out, so one not seen for longer is gone (the render-slot count of split renders,
`/health`)."""


def parse_queues(text: str) -> list[str]:
    return [q.strip() for q in text.split(",") if q.strip()]


def queues_problem(text: str) -> str | None:
    """Why `--queues TEXT` (of `t2m up`, `t2m worker`) is refused: it names no queue, or one that
    is not t2m's; None when it is fine."""
    queues = parse_queues(text)
    if not queues or set(queues) - set(WORKER_QUEUES):
        return f"--queues {text!r}: choose from {','.join(WORKER_QUEUES)}"
    return None


SECRETS_DIR = "/run/secrets/t2m"


def secrets_dir() -> str | None:
    """Where settings may also be read from files, one per setting named like its variable
    (`T2M_DATABASE_URL`, `T2M_SECRET_KEY`): `T2M_SECRETS_DIR`, or /run/secrets/t2m when it exists
    (a mounted Kubernetes Secret, Docker/Compose secrets). A variable set in the environment wins."""
    path = os.environ.get("T2M_SECRETS_DIR") or SECRETS_DIR
    return path if os.path.isdir(path) else None


class InvalidSettings(ValueError):
    """Settings the environment (or the secrets dir) gets wrong: each by its variable's name and
    the rule it breaks, never its value (it may be a secret)."""


_FIELD_OF_SOURCE_ERROR = re.compile(r'field "(\w+)"')


@lru_cache
def get_settings() -> Settings:
    try:
        return Settings(_secrets_dir=secrets_dir())
    except ValidationError as e:
        problems = []
        for p in e.errors():
            rule = p["msg"].removeprefix("Value error, ")
            problems.append(f"T2M_{str(p['loc'][0]).upper()}: {rule}" if p["loc"] else rule)
        raise InvalidSettings("; ".join(problems)) from None
    except SettingsError as e:  # read before validation: a list setting that is not JSON
        found = _FIELD_OF_SOURCE_ERROR.search(str(e))
        name = f"T2M_{found.group(1).upper()}" if found else "a setting"
        raise InvalidSettings(f'{name}: must be JSON, e.g. ["a", "b"]') from None
    except UnicodeDecodeError:
        raise InvalidSettings(".env or a file of the secrets dir is not UTF-8 text") from None


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_bind(settings: Settings) -> None:
    """Refuse to serve a non-loopback address while unauthenticated requests are let in."""
    if not is_loopback(settings.api_host) and settings.dev_user:
        raise SystemExit(
            f"refusing to bind {settings.api_host}: T2M_DEV_USER lets unauthenticated requests in."
            " Set T2M_DEV_USER= (empty) and use API keys (`t2m keys create`) or T2M_JWKS_URL."
        )
