"""The REST API as `t2m jobs` and `t2m generate` reach it.

Where: `T2M_API`, else `api` in the config file, else the address `t2m up` serves on, from
`T2M_API_HOST` and `T2M_API_PORT` (default http://127.0.0.1:8000). Who: `T2M_API_KEY`, else
`api_key` in the config file, else no credentials (the loopback dev identity). The config file is
`$T2M_CONFIG`, default `$XDG_CONFIG_HOME/t2m/config.toml` (`~/.config/t2m/config.toml`), and is
optional (a file `T2M_CONFIG` names must exist).

A malformed URL or key is refused before anything is sent (exit 2), naming the setting and its rule
but never its value: a URL may hold credentials, and a key is one.

Every failure is an `ApiError`: one line with the API's own message, and the exit code the command
ends with (`t2m.errors.exit_code`). An answer that is not a t2m API's (not JSON, or JSON of another
shape than `cli.answers` expects) says so, naming the URL and the setting it came from.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import time
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from pydantic import ValidationError

from cli.answers import Answer, JobStatus
from cli.output import Unwritable, writing
from t2m.errors import T2mError, exit_code

DERIVED = "T2M_API_HOST/T2M_API_PORT"
TERMINAL = ("completed", "failed", "cancelled")
URL_RULE = "must be an http:// or https:// URL with a host and, if any, a port from 1 to 65535"
UNAVAILABLE_WAIT_S = 300.0
"""How long following a job waits out the API's 503s in a row (a restarting database or Temporal)
before it gives up (exit 1)."""
KEY = re.compile(r"[!-~]+")
"""An API key as an HTTP header can carry it: printable ASCII, no whitespace."""


class ApiError(T2mError):
    def __init__(self, message: str, code: int = 1, status: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.status = status


@dataclass(frozen=True)
class Config:
    api: str
    api_key: str | None
    source: str = DERIVED
    """The setting `api` came from: `T2M_API`, "`api` in FILE", or DERIVED."""

    @property
    def named(self) -> bool:
        """The URL was given (T2M_API, the config file), not derived from `t2m up`'s address."""
        return self.source != DERIVED

    @property
    def where(self) -> str:
        """The setting that names the URL, or those that would change it."""
        if self.named:
            return f"{self.source} names it"
        return "set T2M_API to the API's URL, or T2M_API_HOST/T2M_API_PORT to where it serves"

    def unreachable(self, reason: str) -> str:
        """One line: the URL tried, and the setting that names it or would change it."""
        return f"cannot reach the API at {self.api} ({reason}); {self.where}"

    def not_the_api(self, r: httpx.Response) -> str:
        """One line for an answer that is not a t2m API's JSON (another server at that URL)."""
        kind = _content_type(r)
        return (
            f"{self.api} does not answer as a t2m API (HTTP {r.status_code}, {kind}); {self.where}"
        )


def config_path(environ: Mapping[str, str]) -> Path:
    if environ.get("T2M_CONFIG"):
        return Path(environ["T2M_CONFIG"])
    base = environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "t2m" / "config.toml"


def load_config(environ: Mapping[str, str] = os.environ) -> Config:
    path = config_path(environ)
    file: dict[str, Any] = {}
    if environ.get("T2M_CONFIG") and not path.is_file():
        problem = "a directory, not a file" if path.is_dir() else "no such file"
        raise ApiError(f"T2M_CONFIG {path}: {problem}", 2)
    if path.is_file():
        try:
            file = tomllib.loads(path.read_text())
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
            raise ApiError(f"config file {path}: {e}", 2) from None
        except OSError as e:
            raise ApiError(f"config file {path}: {e.strerror}", 2) from None
        for name in ("api", "api_key"):
            if name in file and not isinstance(file[name], str):
                raise ApiError(f"config file {path}: {name} must be a string", 2)
    key: str | None = environ.get("T2M_API_KEY") or file.get("api_key") or None
    if key is not None and not KEY.fullmatch(key):
        where = "T2M_API_KEY" if environ.get("T2M_API_KEY") else f"`api_key` in {path}"
        raise ApiError(f"{where}: an API key is printable ASCII without whitespace", 2)
    if environ.get("T2M_API"):
        api, source = environ["T2M_API"], "T2M_API"
    elif file.get("api"):
        api, source = file["api"], f"`api` in {path}"
    else:
        api, source = served_url(), DERIVED
    if not valid_url(api):
        raise ApiError(f"{source}: {URL_RULE}", 2)
    return Config(api=api.rstrip("/"), api_key=key, source=source)


def valid_url(url: str) -> bool:
    """An http(s) URL with a host and a valid port: what the API can be reached at. (httpx takes
    `localhost:8000` for scheme `localhost`, and port 99999 as given.)"""
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL:
        return False
    port_ok = parsed.port is None or 1 <= parsed.port <= 65535
    return parsed.scheme in ("http", "https") and bool(parsed.host) and port_ok


def served_url() -> str:
    """Where `t2m up` serves the API, from the same settings it reads (T2M_API_HOST,
    T2M_API_PORT, `.env`; a kubelet service link in T2M_API_PORT is ignored as it is there)."""
    from t2m.config import InvalidSettings, get_settings

    try:
        settings = get_settings()
    except InvalidSettings as e:
        raise ApiError(f"invalid settings: {e}", 2) from None
    host = settings.api_host
    if host.startswith("[") and host.endswith("]"):  # an IPv6 address written as in a URL
        host = host[1:-1]
    if host in ("0.0.0.0", ""):  # a bind to every address: reach it on loopback
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{settings.api_port}"


def message(r: httpx.Response) -> str:
    """The API's own words for a JSON error answer, on one line."""
    try:
        detail = r.json()["detail"]
    except (ValueError, KeyError, TypeError):
        detail = r.reason_phrase
    if isinstance(detail, list):  # a 422: [{loc, msg, type}, …] (another server's: anything)
        parts = []
        for problem in detail:
            if isinstance(problem, dict):
                where = problem.get("loc")
                where = where if isinstance(where, list) else []
                loc = [str(x) for x in where if x not in ("body", "query", "path")]
                said = problem.get("msg") or str(problem)
                parts.append(f"{'.'.join(loc)}: {said}" if loc else said)
            else:
                parts.append(str(problem))
        detail = "; ".join(parts)
    elif isinstance(detail, dict):
        detail = detail.get("message") or str(detail)
    return " ".join(str(detail).split())


def _content_type(r: httpx.Response) -> str:
    return " ".join(r.headers.get("content-type", "no content type").split())


def _is_json(r: httpx.Response) -> bool:
    try:
        r.json()
    except ValueError:
        return False
    return True


def _retry_after(r: httpx.Response, default_s: float = 5, most_s: float = 60) -> float:
    """Seconds to wait before asking again: the answer's Retry-After (seconds; an HTTP date, a
    non-number, `nan` or `inf` count as none), kept within 0.5 s to `most_s`."""
    try:
        seconds = float(r.headers.get("retry-after", default_s))
    except ValueError:
        return default_s
    if not math.isfinite(seconds):
        return default_s
    return min(max(seconds, 0.5), most_s)


class Remote:
    """A synchronous client of the REST API (one connection pool per command)."""

    def __init__(self, config: Config, version: str, timeout_s: float = 30) -> None:
        self.config = config
        headers = {"User-Agent": f"t2m-cli/{version}", "Accept": "application/json"}
        if config.api_key:
            headers["Authorization"] = f"Bearer {config.api_key}"
        self.base = config.api
        # A 307 to S3 is followed only for media; httpx drops Authorization for another origin.
        self.http = httpx.Client(base_url=config.api, headers=headers, timeout=timeout_s)

    def __enter__(self) -> Remote:
        return self

    def __exit__(self, *exc: object) -> None:
        self.http.close()

    def _send(self, method: str, path: str, **kw: Any) -> httpx.Response:
        try:
            return self.http.request(method, path, **kw)
        except httpx.TransportError as e:
            raise ApiError(self.config.unreachable(str(e) or type(e).__name__)) from None

    def answers(self, timeout_s: float = 2) -> bool:
        """Whether an API listens there (its liveness endpoint answers)."""
        try:
            return self.http.get("/livez", timeout=timeout_s).status_code == 200
        except httpx.HTTPError:
            return False

    def _checked(self, r: httpx.Response) -> httpx.Response:
        """`r` if it is no error answer; else ApiError with the API's words, or saying that no
        t2m API answered (an error page of another server: not dumped as the "one line")."""
        if r.status_code < 400:
            return r
        if not _is_json(r) and r.history:  # where the API redirected a download (S3) refused
            origin = f"{r.url.scheme}://{r.url.netloc.decode()}"  # not the signed query
            raise ApiError(
                f"{origin}, where the API sent the download, answered HTTP {r.status_code}"
                f" ({_content_type(r)})",
                1,
                r.status_code,
            )
        if not _is_json(r):
            raise ApiError(self.config.not_the_api(r), 1, r.status_code)
        raise ApiError(
            f"{message(r)} (HTTP {r.status_code})", exit_code(r.status_code), r.status_code
        )

    def _json(self, r: httpx.Response, shape: type[Answer]) -> dict[str, Any]:
        """The JSON of a successful answer, as it came; ApiError when it holds none, or JSON of
        another shape than `shape` (another server, or another API at that URL)."""
        self._checked(r)
        try:
            answer: dict[str, Any] = r.json()
            shape.model_validate(answer)
        except (ValueError, ValidationError):
            raise ApiError(self.config.not_the_api(r), 1, r.status_code) from None
        return answer

    def request(self, method: str, path: str, **kw: Any) -> httpx.Response:
        return self._checked(self._send(method, path, **kw))

    def json(self, method: str, path: str, shape: type[Answer], **kw: Any) -> dict[str, Any]:
        return self._json(self._send(method, path, **kw), shape)

    def status(self, job_id: str) -> dict[str, Any]:
        return self.json("GET", f"/api/v1/videos/jobs/{job_id}/status", JobStatus)

    def follow(
        self, job_id: str, interval_s: float, seen: Callable[[dict[str, Any]], None]
    ) -> dict[str, Any]:
        """Poll the job's status until it ends, calling `seen` with each. The API's own 503 (a
        JSON answer: a backing service is unavailable) is waited out, as its Retry-After says,
        for `UNAVAILABLE_WAIT_S` in a row at most; any other 503 (a proxy's page) is an error."""
        unavailable_since: float | None = None
        while True:
            r = self._send("GET", f"/api/v1/videos/jobs/{job_id}/status")
            if r.status_code == 503 and _is_json(r):
                if unavailable_since is None:
                    unavailable_since = time.monotonic()
                left = unavailable_since + UNAVAILABLE_WAIT_S - time.monotonic()
                if left <= 0:
                    raise ApiError(
                        f"{message(r)} (HTTP 503), still after {UNAVAILABLE_WAIT_S:g} s", 1, 503
                    )
                time.sleep(min(_retry_after(r), left))
                continue
            unavailable_since = None
            status = self._json(r, JobStatus)
            seen(status)
            if status["status"] in TERMINAL:
                return status
            time.sleep(interval_s)

    def download(self, path: str, dest: Path, missing_ok: bool = False) -> Path | None:
        """Stream one media file to `dest` (through a 307 to S3 if so answered); None when the job
        has no such file and `missing_ok`. It goes to `dest`.part first, removed if it fails."""
        partial = dest.with_name(dest.name + ".part")
        try:
            with self.http.stream("GET", path, follow_redirects=True) as r:
                if r.status_code == 404 and missing_ok:
                    return None
                if r.status_code >= 400:
                    r.read()
                    self._checked(r)
                with writing(dest):
                    with partial.open("wb") as f:
                        for chunk in r.iter_bytes(1 << 16):
                            f.write(chunk)
                    partial.replace(dest)
                return dest
        except httpx.TransportError as e:
            raise ApiError(self.config.unreachable(str(e) or type(e).__name__)) from None
        except Unwritable as e:
            raise ApiError(str(e)) from None
        finally:
            with contextlib.suppress(OSError):
                partial.unlink(missing_ok=True)
