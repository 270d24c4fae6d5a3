"""deploy/: the fields of the Dockerfile and the Kubernetes manifests that keep calls alive.

Static checks only — no Docker engine, no cluster, no import of the server: the manifests are parsed
with PyYAML, the Dockerfile and the Makefile with small line parsers, pyproject.toml with tomllib, and
the server's routes and CLI flags are read from their source files as text.

Each check is a function over a freshly loaded `Deploy` bundle. `test_deploy` runs every check on the
repository's files; `test_check_catches` runs each check on a deliberately broken copy (a wrong probe
path, a short grace period, a literal secret...) and expects it to fail, so no check can go vacuous.
"""

from __future__ import annotations

import json
import re
import shlex
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY_DIR = ROOT / "deploy"
K8S_DIR = DEPLOY_DIR / "kubernetes"

# What the server serves (telephony_bridge/server/app.py, cli.py). The checks below also confirm
# these against the source files, so a renamed route fails here rather than in production.
SERVER_PORT = 8080
LIVENESS_PATH = "/healthz"
READINESS_PATH = "/readyz"
CARRIER_PATHS = ("/incoming-call", "/media-stream")
CONSOLE_SCRIPT = "telephony-bridge"
SERVER_DEFAULT_DRAIN_S = 30.0  # Settings.drain_timeout_s when DRAIN_TIMEOUT_S is unset
GRACE_MARGIN_S = 5  # after the drain timeout the server still has to end the remaining calls cleanly
SECRET_ENV = ("TWILIO_AUTH_TOKEN", "OPENAI_API_KEY", "STREAM_TOKEN_SECRET")  # the last: replicas share stream tokens
SECRET_LOOKING_NAME = re.compile(r"TOKEN|SECRET|PASSWORD|API_KEY|PRIVATE", re.IGNORECASE)
EXAMPLE_SECRET_FILE = "secret.example.yaml"
IDLE_TIMEOUT_MIN_S = 3600


# ---------------------------------------------------------------------------------------------------
# Parsing


@dataclass(frozen=True, slots=True)
class Instruction:
    keyword: str
    args: str
    stage: int


def parse_dockerfile(text: str) -> list[Instruction]:
    """Logical instructions (continuations joined, comments dropped), each tagged with its stage."""
    lines: list[str] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("#") or (not line and not pending):
            continue  # comments (and parser directives) may also sit inside a continuation
        if not line:
            continue
        if line.endswith("\\"):
            pending += line[:-1].rstrip() + " "
            continue
        lines.append(pending + line)
        pending = ""
    if pending.strip():
        lines.append(pending.strip())
    instructions, stage = [], -1
    for line in lines:
        keyword, _, args = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            stage += 1
        instructions.append(Instruction(keyword, args.strip(), stage))
    return instructions


def exec_form(args: str) -> list[str] | None:
    """The argv of an exec-form (JSON array) CMD/ENTRYPOINT, or None for shell form."""
    if not args.startswith("["):
        return None
    try:
        argv = json.loads(args)
    except json.JSONDecodeError:
        return None
    return argv if isinstance(argv, list) and all(isinstance(a, str) for a in argv) else None


def shell_commands(text: str) -> Iterator[list[str]]:
    """Simple commands of a shell line, split on && ; || (enough for RUN lines and make recipes)."""
    command: list[str] = []
    for token in shlex.split(text, posix=True):
        if token in ("&&", ";", "||", "|"):
            if command:
                yield command
            command = []
        else:
            command.append(token)
    if command:
        yield command


@dataclass(frozen=True, slots=True)
class ProjectInstall:
    extras: frozenset[str]
    editable: bool


def project_installs(text: str) -> list[ProjectInstall]:
    """Every `pip install` of the project itself (`.` or `.[extras]`) in a shell text."""
    installs = []
    for command in shell_commands(text):
        pip_at = next((i for i, t in enumerate(command) if re.fullmatch(r"(.*/)?pip3?", t)), None)
        if pip_at is None or "install" not in command[pip_at + 1 :]:
            continue
        for i, token in enumerate(command):
            match = re.fullmatch(r"\.(?:\[([^\]]*)\])?", token)
            if match:
                extras = frozenset(e.strip() for e in (match.group(1) or "").split(",") if e.strip())
                installs.append(ProjectInstall(extras, editable=i > 0 and command[i - 1] in ("-e", "--editable")))
    return installs


def env_instruction_values(args: str) -> dict[str, str]:
    tokens = shlex.split(args)
    if tokens and "=" not in tokens[0]:  # legacy `ENV KEY value`
        return {tokens[0]: " ".join(tokens[1:])}
    return dict(token.split("=", 1) for token in tokens if "=" in token)


def copy_paths(args: str) -> tuple[list[str], str, dict[str, str]]:
    """(sources, destination, flags) of a COPY/ADD."""
    tokens = shlex.split(args)
    flags = {}
    while tokens and tokens[0].startswith("--"):
        key, _, value = tokens.pop(0)[2:].partition("=")
        flags[key] = value
    if tokens and tokens[0].startswith("["):
        tokens = json.loads(" ".join(tokens))
    return tokens[:-1], tokens[-1], flags


def cpu_cores(quantity: object) -> float:
    text = str(quantity)
    return float(text[:-1]) / 1000 if text.endswith("m") else float(text)


_MEMORY_UNITS = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "k": 10**3, "K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12}


def memory_bytes(quantity: object) -> float:
    match = re.fullmatch(r"([0-9.]+)([A-Za-z]*)", str(quantity))
    assert match and (match.group(2) in _MEMORY_UNITS or not match.group(2)), f"unreadable memory quantity {quantity!r}"
    return float(match.group(1)) * _MEMORY_UNITS.get(match.group(2), 1)


def seconds_of_sleep(pre_stop: dict[str, Any]) -> float | None:
    if "sleep" in pre_stop:  # Kubernetes >= 1.30 native sleep action
        return float(pre_stop["sleep"]["seconds"])
    command = " ".join(map(str, pre_stop.get("exec", {}).get("command", [])))
    match = re.search(r"\bsleep\s+([0-9.]+)", command)
    return float(match.group(1)) if match else None


# ---------------------------------------------------------------------------------------------------
# The bundle every check reads


@dataclass
class Deploy:
    manifests: list[tuple[str, dict[str, Any]]]  # (file name, document)
    dockerfile_text: str
    makefile_text: str
    pyproject: dict[str, Any]
    server_source: str  # telephony_bridge/server/*.py, concatenated
    server_routes: set[str]  # the paths the real app serves (carrier routes are made per carrier)
    cli_source: str
    repo_files: set[str]  # top-level names in the repository, for COPY sources
    scenario_files: set[str]

    # -- manifests --
    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        return [doc for _, doc in self.manifests if doc.get("kind") == kind]

    def one(self, kind: str) -> dict[str, Any]:
        docs = self.of_kind(kind)
        assert len(docs) == 1, f"expected exactly one {kind} in deploy/kubernetes, found {len(docs)}"
        return docs[0]

    @property
    def deployment(self) -> dict[str, Any]:
        return self.one("Deployment")

    @property
    def pod(self) -> dict[str, Any]:
        return self.deployment["spec"]["template"]["spec"]

    @property
    def pod_labels(self) -> dict[str, str]:
        return self.deployment["spec"]["template"]["metadata"].get("labels") or {}

    @property
    def container(self) -> dict[str, Any]:
        containers = self.pod["containers"]
        named = [c for c in containers if c.get("name") == "telephony-bridge"]
        assert len(named) == 1 or len(containers) == 1, "cannot tell which container is the bridge"
        return named[0] if named else containers[0]

    def configmap(self, name: str) -> dict[str, Any] | None:
        return next((cm for cm in self.of_kind("ConfigMap") if cm["metadata"]["name"] == name), None)

    def env(self, name: str) -> str | None:
        """The bridge container's value of `name`, resolved the way the kubelet does (env wins over envFrom)."""
        for entry in self.container.get("env") or []:
            if entry["name"] != name:
                continue
            if "value" in entry:
                return str(entry["value"])
            ref = (entry.get("valueFrom") or {}).get("configMapKeyRef")
            if ref:
                cm = self.configmap(ref["name"])
                return None if cm is None else (cm.get("data") or {}).get(ref["key"])
            return None  # a Secret or field ref: not readable here
        found = None
        for source in self.container.get("envFrom") or []:
            ref = source.get("configMapRef")
            cm = self.configmap(ref["name"]) if ref else None
            if cm is not None and name in (cm.get("data") or {}):
                found = str(cm["data"][name])  # later sources win
        return found

    def container_port(self, port: int | str) -> int:
        """A probe's or Service's port, resolved against the container's named ports."""
        if isinstance(port, int):
            return port
        if str(port).isdigit():
            return int(port)
        for declared in self.container.get("ports") or []:
            if declared.get("name") == port:
                return int(declared["containerPort"])
        raise AssertionError(f"port name {port!r} is not declared by the container")

    # -- Dockerfile --
    @property
    def dockerfile(self) -> list[Instruction]:
        return parse_dockerfile(self.dockerfile_text)

    @property
    def final_stage(self) -> list[Instruction]:
        instructions = self.dockerfile
        last = max(i.stage for i in instructions)
        return [i for i in instructions if i.stage == last]

    def last(self, keyword: str) -> Instruction | None:
        found = [i for i in self.final_stage if i.keyword == keyword]
        return found[-1] if found else None

    @property
    def image_env(self) -> dict[str, str]:
        env: dict[str, str] = {}
        for instruction in self.final_stage:
            if instruction.keyword == "ENV":
                env.update(env_instruction_values(instruction.args))
        return env

    @property
    def cmd(self) -> list[str]:
        cmd = self.last("CMD")
        assert cmd is not None, "the Dockerfile has no CMD"
        argv = exec_form(cmd.args)
        assert argv is not None, "CMD must be exec form (JSON array): a shell-form CMD puts /bin/sh at PID 1, which does not forward SIGTERM, so calls never drain"
        return argv

    # -- server source --



def _served_paths() -> set[str]:
    from telephony_bridge.server.app import create_app
    from telephony_bridge.server.settings import Settings

    app = create_app(Settings(scenarios_dir=ROOT / "scenarios", realtime_url="ws://127.0.0.1:9/unused"))
    return {route.path for route in app.routes}


def load_deploy() -> Deploy:
    manifests = []
    for path in sorted(K8S_DIR.glob("*.y*ml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc is not None:
                manifests.append((path.name, doc))
    server_dir = ROOT / "telephony_bridge" / "server"
    return Deploy(
        manifests=manifests,
        dockerfile_text=(DEPLOY_DIR / "Dockerfile").read_text(),
        makefile_text=(ROOT / "Makefile").read_text(),
        pyproject=tomllib.loads((ROOT / "pyproject.toml").read_text()),
        server_source="\n".join(p.read_text() for p in sorted(server_dir.glob("*.py"))),
        server_routes=_served_paths(),
        cli_source=(ROOT / "telephony_bridge" / "cli.py").read_text(),
        repo_files={p.name for p in ROOT.iterdir()},
        scenario_files={p.name for p in (ROOT / "scenarios").iterdir()} if (ROOT / "scenarios").is_dir() else set(),
    )


# ---------------------------------------------------------------------------------------------------
# Checks: Kubernetes


def check_manifests_are_complete(d: Deploy) -> None:
    for file, doc in d.manifests:
        assert isinstance(doc, dict) and doc.get("apiVersion") and doc.get("kind"), f"{file}: not a Kubernetes object"
        if doc["kind"] != "Kustomization":
            assert doc.get("metadata", {}).get("name"), f"{file}: {doc['kind']} without metadata.name"
    kinds = {doc["kind"] for _, doc in d.manifests}
    for kind in ("Deployment", "Service", "ConfigMap", "Secret", "HorizontalPodAutoscaler", "PodDisruptionBudget"):
        assert kind in kinds, f"deploy/kubernetes has no {kind}"


def check_server_serves_the_probed_routes(d: Deploy) -> None:
    routes = d.server_routes
    for path in (LIVENESS_PATH, READINESS_PATH, *CARRIER_PATHS):
        assert path in routes, f"telephony_bridge/server has no route {path} (routes found: {sorted(routes)})"


def check_probes_hit_the_server(d: Deploy) -> None:
    c = d.container
    expected = {"readinessProbe": READINESS_PATH, "livenessProbe": LIVENESS_PATH, "startupProbe": LIVENESS_PATH}
    for probe_name in ("readinessProbe", "livenessProbe"):
        assert probe_name in c, f"the bridge container has no {probe_name}"
    for probe_name, path in expected.items():
        if probe_name not in c:
            continue
        http = c[probe_name].get("httpGet")
        assert http, f"{probe_name} must be an httpGet probe"
        assert http.get("path") == path, f"{probe_name} probes {http.get('path')!r}, the server answers it on {path!r}"
        assert http.get("path") in d.server_routes, f"{probe_name}: the server has no route {http.get('path')!r}"
        assert d.container_port(http.get("port")) == SERVER_PORT, f"{probe_name} probes port {http.get('port')!r}, the server listens on {SERVER_PORT}"


def check_liveness_is_lenient(d: Deploy) -> None:
    # A failed liveness probe restarts the container: every call on the pod is dropped.
    probe = d.container["livenessProbe"]
    tolerated = probe.get("failureThreshold", 3) * probe.get("periodSeconds", 10)
    assert tolerated >= 30, f"liveness restarts the pod after {tolerated}s without answer; a busy event loop deserves >= 30s"
    assert probe.get("timeoutSeconds", 1) >= 2, "liveness timeoutSeconds < 2: a loaded event loop answers late, not never"


def check_container_listens_on_server_port(d: Deploy) -> None:
    ports = [int(p["containerPort"]) for p in d.container.get("ports") or []]
    assert ports == [SERVER_PORT], f"container ports {ports}, the server listens on {SERVER_PORT}"
    port_flag = d.cmd[d.cmd.index("--port") + 1] if "--port" in d.cmd else None
    assert port_flag == str(SERVER_PORT), f"the image's CMD serves on --port {port_flag}"


def check_service_reaches_the_pods(d: Deploy) -> None:
    service = d.one("Service")
    selector = service["spec"].get("selector") or {}
    assert selector, "Service without selector"
    for key, value in selector.items():
        assert d.pod_labels.get(key) == value, f"Service selects {key}={value}, pods are labelled {d.pod_labels}"
    for port in service["spec"]["ports"]:
        target = port.get("targetPort", port["port"])
        assert d.container_port(target) == SERVER_PORT, f"Service targetPort {target!r} is not the container's {SERVER_PORT}"
    assert service["spec"].get("sessionAffinity", "None") == "None", "no session affinity is needed (one WebSocket per call)"


def check_deployment_selector_matches_template(d: Deploy) -> None:
    match_labels = d.deployment["spec"]["selector"].get("matchLabels") or {}
    assert match_labels, "Deployment selector has no matchLabels"
    for key, value in match_labels.items():
        assert d.pod_labels.get(key) == value, f"Deployment selector {key}={value} does not match template labels {d.pod_labels}"


def check_rolling_update_keeps_capacity(d: Deploy) -> None:
    strategy = d.deployment["spec"].get("strategy") or {}
    assert strategy.get("type", "RollingUpdate") == "RollingUpdate", "Recreate stops every pod (and call) at once"
    rolling = strategy.get("rollingUpdate") or {}
    assert str(rolling.get("maxUnavailable", "25%")) in ("0", "0%"), "rollingUpdate.maxUnavailable must be 0"
    assert str(rolling.get("maxSurge", "25%")) not in ("0", "0%"), "with maxUnavailable 0, maxSurge must be >= 1"


def check_grace_period_covers_drain(d: Deploy) -> None:
    pre_stop = (d.container.get("lifecycle") or {}).get("preStop")
    assert pre_stop, "no preStop hook: SIGTERM arrives before the endpoint has left the load balancers"
    sleep_s = seconds_of_sleep(pre_stop)
    assert sleep_s is not None and sleep_s > 0, "the preStop hook does not sleep"
    drain = d.env("DRAIN_TIMEOUT_S")
    drain_s = float(drain) if drain is not None else SERVER_DEFAULT_DRAIN_S
    grace = d.pod.get("terminationGracePeriodSeconds", 30)
    needed = sleep_s + drain_s + GRACE_MARGIN_S
    assert grace >= needed, f"terminationGracePeriodSeconds {grace} < preStop {sleep_s:g} + DRAIN_TIMEOUT_S {drain_s:g} + margin {GRACE_MARGIN_S}: calls get SIGKILLed"


def check_drain_timeout_defined_once(d: Deploy) -> None:
    # env silently wins over envFrom: two values would make the grace arithmetic lie.
    explicit = [e for e in d.container.get("env") or [] if e["name"] == "DRAIN_TIMEOUT_S"]
    from_configmaps = [cm["metadata"]["name"] for cm in d.of_kind("ConfigMap") if "DRAIN_TIMEOUT_S" in (cm.get("data") or {})]
    assert len(explicit) + len(from_configmaps) <= 1, f"DRAIN_TIMEOUT_S is set in the env and in ConfigMap(s) {from_configmaps}"
    value = d.env("DRAIN_TIMEOUT_S")
    assert value is None or float(value) > 0, f"DRAIN_TIMEOUT_S={value!r}"


def check_resources_are_set(d: Deploy) -> None:
    for c in d.pod["containers"]:
        resources = c.get("resources") or {}
        for kind in ("requests", "limits"):
            for resource in ("cpu", "memory"):
                assert resource in (resources.get(kind) or {}), f"container {c['name']}: resources.{kind}.{resource} is not set"
        assert cpu_cores(resources["requests"]["cpu"]) <= cpu_cores(resources["limits"]["cpu"]), "cpu request above its limit"
        assert memory_bytes(resources["requests"]["memory"]) <= memory_bytes(resources["limits"]["memory"]), "memory request above its limit"


def check_runs_as_non_root(d: Deploy) -> None:
    pod_ctx = d.pod.get("securityContext") or {}
    ctx = {**pod_ctx, **(d.container.get("securityContext") or {})}
    assert ctx.get("runAsNonRoot") is True, "runAsNonRoot must be true"
    assert ctx.get("allowPrivilegeEscalation") is False, "allowPrivilegeEscalation must be false"
    user = d.last("USER")
    image_uid = user.args.split(":")[0] if user else None
    if "runAsUser" in ctx:
        assert ctx["runAsUser"] != 0, "runAsUser 0 is root"
        assert str(ctx["runAsUser"]) == image_uid, f"runAsUser {ctx['runAsUser']} differs from the image's USER {image_uid}"


def check_root_filesystem_read_only(d: Deploy) -> None:
    ctx = d.container.get("securityContext") or {}
    assert ctx.get("readOnlyRootFilesystem") is True, "readOnlyRootFilesystem must be true"
    writable = {v["name"] for v in d.pod.get("volumes") or [] if "emptyDir" in v or "persistentVolumeClaim" in v}
    mounts = [m["mountPath"].rstrip("/") for m in d.container.get("volumeMounts") or [] if m["name"] in writable]

    def is_writable(path: str) -> bool:
        return any(path == m or path.startswith(m + "/") for m in mounts)

    calls_dir = d.env("CALLS_DIR")
    assert calls_dir is None or is_writable(calls_dir.rstrip("/")), f"CALLS_DIR {calls_dir} is not on a writable volume"
    assert is_writable("/tmp"), "/tmp is not on a writable volume"


def check_secrets_come_from_secret_refs(d: Deploy) -> None:
    entries = {e["name"]: e for e in d.container.get("env") or []}
    for name in SECRET_ENV:
        ref = ((entries.get(name) or {}).get("valueFrom") or {}).get("secretKeyRef")
        assert ref, f"{name} must come from a Secret via secretKeyRef"
    for name, entry in entries.items():
        assert not (SECRET_LOOKING_NAME.search(name) and "value" in entry), f"env {name} has a literal value in the Deployment"
    for cm in d.of_kind("ConfigMap"):
        for key in cm.get("data") or {}:
            assert not SECRET_LOOKING_NAME.search(key), f"ConfigMap {cm['metadata']['name']} holds {key}: secrets belong in a Secret"
    secrets = {s["metadata"]["name"]: {**(s.get("data") or {}), **(s.get("stringData") or {})} for s in d.of_kind("Secret")}
    for name, entry in entries.items():
        ref = (entry.get("valueFrom") or {}).get("secretKeyRef")
        if ref and not ref.get("optional"):
            assert ref["key"] in secrets.get(ref["name"], {}), f"env {name}: Secret {ref['name']}/{ref['key']} is not in {EXAMPLE_SECRET_FILE}"


def check_config_refs_resolve(d: Deploy) -> None:
    for source in d.container.get("envFrom") or []:
        ref = source.get("configMapRef")
        if ref and not ref.get("optional"):
            assert d.configmap(ref["name"]) is not None, f"envFrom names ConfigMap {ref['name']}, which is not in deploy/kubernetes"


def check_example_secret_is_placeholder(d: Deploy) -> None:
    example = [doc for file, doc in d.manifests if file == EXAMPLE_SECRET_FILE]
    assert example, f"no {EXAMPLE_SECRET_FILE}"
    assert all(doc.get("kind") == "Secret" for doc in example)
    for doc in example:
        assert not doc.get("data"), "use stringData placeholders, not base64 data"
        for key, value in (doc.get("stringData") or {}).items():
            assert "REPLACE_ME" in str(value), f"{EXAMPLE_SECRET_FILE}: {key} is not a REPLACE_ME placeholder"
    for file, doc in d.manifests:
        if doc.get("kind") == "Secret":
            assert file == EXAMPLE_SECRET_FILE, f"{file}: a real Secret does not belong in the repository"


def check_kustomization_leaves_out_example_secret(d: Deploy) -> None:
    kustomization = d.one("Kustomization")
    resources = set(kustomization.get("resources") or [])
    files = {file for file, doc in d.manifests if doc.get("kind") != "Kustomization"}
    assert EXAMPLE_SECRET_FILE not in resources, "kustomization would apply the placeholder Secret over the real one"
    assert resources == files - {EXAMPLE_SECRET_FILE}, f"kustomization resources {sorted(resources)} vs manifests {sorted(files)}"


def check_hpa_scales_the_deployment(d: Deploy) -> None:
    hpa = d.one("HorizontalPodAutoscaler")
    assert hpa["apiVersion"] == "autoscaling/v2"
    target = hpa["spec"]["scaleTargetRef"]
    assert (target.get("apiVersion"), target.get("kind"), target.get("name")) == ("apps/v1", "Deployment", d.deployment["metadata"]["name"]), f"HPA targets {target}"
    cpu = [m for m in hpa["spec"].get("metrics") or [] if m.get("type") == "Resource" and m["resource"]["name"] == "cpu"]
    assert cpu and cpu[0]["resource"]["target"]["type"] == "Utilization", "HPA must scale on CPU utilization"
    assert 0 < cpu[0]["resource"]["target"]["averageUtilization"] <= 100
    assert hpa["spec"].get("minReplicas", 1) >= 2, "minReplicas >= 2: one pod means every rollout or node drain is a single point of failure"
    assert "replicas" not in d.deployment["spec"], "the HPA owns replicas; a replicas field is reset by every kubectl apply"


def check_pdb_covers_the_pods(d: Deploy) -> None:
    pdb = d.one("PodDisruptionBudget")
    match_labels = pdb["spec"].get("selector", {}).get("matchLabels") or {}
    assert match_labels, "PDB without selector.matchLabels"
    for key, value in match_labels.items():
        assert d.pod_labels.get(key) == value, f"PDB selects {key}={value}, pods are labelled {d.pod_labels}"
    min_replicas = d.one("HorizontalPodAutoscaler")["spec"].get("minReplicas", 1)
    if "minAvailable" in pdb["spec"]:
        assert int(pdb["spec"]["minAvailable"]) < min_replicas, "minAvailable >= minReplicas: node drains would block forever"
    else:
        assert str(pdb["spec"].get("maxUnavailable")) not in ("0", "0%", "None"), "maxUnavailable 0 blocks every node drain"


def check_ingress_keeps_websockets_open(d: Deploy) -> None:
    ingresses = d.of_kind("Ingress")
    service = d.one("Service")
    service_ports = {p.get("name") for p in service["spec"]["ports"]} | {p["port"] for p in service["spec"]["ports"]}
    for ingress in ingresses:
        annotations = ingress["metadata"].get("annotations") or {}
        for key in ("nginx.ingress.kubernetes.io/proxy-read-timeout", "nginx.ingress.kubernetes.io/proxy-send-timeout"):
            assert int(annotations.get(key, 60)) >= IDLE_TIMEOUT_MIN_S, f"{key} < {IDLE_TIMEOUT_MIN_S}s would cut long calls"
        assert ingress["spec"].get("tls"), "the carrier needs https/wss: no TLS on the Ingress"
        routed = set()
        for rule in ingress["spec"]["rules"]:
            for path in rule["http"]["paths"]:
                backend = path["backend"]["service"]
                assert backend["name"] == service["metadata"]["name"], f"Ingress backend {backend['name']} is not the Service"
                port = backend["port"].get("name", backend["port"].get("number"))
                assert port in service_ports, f"Ingress backend port {port!r} is not a Service port"
                routed.add(path["path"])
        assert routed == set(CARRIER_PATHS), f"Ingress exposes {sorted(routed)}; only the carrier's {CARRIER_PATHS} should be public"


def check_public_url_is_the_ingress_host(d: Deploy) -> None:
    public_url = d.env("PUBLIC_URL")
    assert public_url, "PUBLIC_URL is not set: Twilio's signatures are computed on it"
    url = urlsplit(public_url)
    assert url.scheme == "https" and url.hostname, f"PUBLIC_URL {public_url!r} must be the external https URL"
    assert not public_url.endswith("/") and url.path == "", f"PUBLIC_URL {public_url!r}: scheme and host only"
    for ingress in d.of_kind("Ingress"):
        hosts = {r.get("host") for r in ingress["spec"]["rules"]}
        tls_hosts = {h for t in ingress["spec"].get("tls") or [] for h in t.get("hosts") or []}
        assert url.hostname in hosts and url.hostname in tls_hosts, f"PUBLIC_URL host {url.hostname} is not the Ingress host {hosts}/{tls_hosts}"


def check_scenarios_dir_is_in_the_image(d: Deploy) -> None:
    copied = [copy_paths(i.args) for i in d.final_stage if i.keyword == "COPY"]
    destinations = [dest.rstrip("/") for sources, dest, flags in copied if "from" not in flags and sources == ["scenarios"]]
    assert destinations, "the final stage does not COPY scenarios"
    image_dir = d.image_env.get("SCENARIOS_DIR", "").rstrip("/")
    assert image_dir in destinations, f"image SCENARIOS_DIR {image_dir!r} is not where scenarios/ is copied ({destinations})"
    deployed = d.env("SCENARIOS_DIR")
    assert deployed is None or deployed.rstrip("/") == image_dir, f"the cluster sets SCENARIOS_DIR {deployed!r}, the image has them in {image_dir!r}"
    assert d.scenario_files & {"default.py", "routes.toml"}, "scenarios/ has neither routes.toml nor default.py: the server refuses to start"


# ---------------------------------------------------------------------------------------------------
# Checks: Dockerfile


def check_docker_base_image(d: Deploy) -> None:
    bases = [i.args.split()[0] for i in d.dockerfile if i.keyword == "FROM" and not i.args.split()[0].startswith("scratch")]
    assert bases, "no FROM"
    minimum = re.search(r">=\s*(\d+)\.(\d+)", d.pyproject["project"]["requires-python"])
    for base in bases:
        match = re.fullmatch(r"python:(\d+)\.(\d+)(?:\.\d+)?-slim(?:-\w+)?(?:@sha256:[0-9a-f]+)?", base)
        assert match, f"base image {base}: expected python:3.X-slim"
        assert (int(match.group(1)), int(match.group(2))) >= (int(minimum.group(1)), int(minimum.group(2))), f"{base} is older than requires-python"
    # The venv built in one stage is copied into the next: its interpreter path must exist there.
    assert len(set(bases)) == 1, f"all stages must share one base image, found {bases}"


def check_docker_runs_as_non_root(d: Deploy) -> None:
    user = d.last("USER")
    assert user is not None, "the final stage has no USER: the server would run as root"
    uid = user.args.split(":")[0]
    assert uid.isdigit(), f"USER {user.args}: use a numeric uid, Kubernetes cannot verify runAsNonRoot for a user name"
    assert int(uid) != 0, "USER 0 is root"
    assert d.final_stage.index(user) < d.final_stage.index(d.last("CMD")), "USER must come before CMD"


def check_docker_healthcheck_hits_healthz(d: Deploy) -> None:
    healthcheck = d.last("HEALTHCHECK")
    assert healthcheck is not None, "no HEALTHCHECK"
    match = re.search(r"\bCMD\s+(.*)$", healthcheck.args)
    assert match, f"HEALTHCHECK without CMD: {healthcheck.args}"
    command = match.group(1)
    assert "urllib" in command and not re.search(r"\b(curl|wget)\b", command), "python:3.11-slim has no curl/wget: use python's urllib"
    urls = re.findall(r"https?://[^\s'\"]+", command)
    assert len(urls) == 1, f"HEALTHCHECK should request exactly one URL, found {urls}"
    url = urlsplit(urls[0])
    assert url.hostname in ("127.0.0.1", "localhost"), f"HEALTHCHECK host {url.hostname}"
    assert url.port == SERVER_PORT, f"HEALTHCHECK port {url.port}, the server listens on {SERVER_PORT}"
    assert url.path == LIVENESS_PATH and url.path in d.server_routes, f"HEALTHCHECK path {url.path}, liveness is {LIVENESS_PATH}"


def check_docker_exposes_server_port(d: Deploy) -> None:
    exposed = {int(p.split("/")[0]) for i in d.final_stage if i.keyword == "EXPOSE" for p in i.args.split()}
    assert exposed == {SERVER_PORT}, f"EXPOSE {sorted(exposed)}, the server listens on {SERVER_PORT}"


def check_docker_cmd_serves_on_all_interfaces(d: Deploy) -> None:
    argv = d.cmd
    assert d.last("ENTRYPOINT") is None, "an ENTRYPOINT would turn CMD into its arguments"
    assert argv[:2] == [CONSOLE_SCRIPT, "serve"], f"CMD {argv} does not run `{CONSOLE_SCRIPT} serve`"
    flags = dict(zip(argv[2::2], argv[3::2], strict=True))
    assert flags.get("--host") == "0.0.0.0", f"--host {flags.get('--host')}: a container must listen on all interfaces"
    assert flags.get("--port") == str(SERVER_PORT), f"--port {flags.get('--port')}"
    for flag in flags:
        assert f'"{flag}"' in d.cli_source, f"`{CONSOLE_SCRIPT} serve` has no option {flag} (telephony_bridge/cli.py)"
    assert 'add_parser("serve"' in d.cli_source, "telephony_bridge/cli.py has no serve command"
    for key in ("command", "args"):
        assert key not in d.container, f"the Deployment overrides the image's CMD with {key}"


def check_console_script_matches_pyproject(d: Deploy) -> None:
    scripts = d.pyproject["project"].get("scripts") or {}
    name = d.cmd[0]
    assert name in scripts, f"CMD runs {name!r}, pyproject.toml [project.scripts] defines {sorted(scripts)}"
    module, _, function = scripts[name].partition(":")
    source = ROOT / (module.replace(".", "/") + ".py")
    assert source.exists() and re.search(rf"^def {function}\(", source.read_text(), re.MULTILINE), f"{scripts[name]} does not exist"


def check_docker_installs_the_makefiles_runtime_extras(d: Deploy) -> None:
    make_installs = [inst for line in d.makefile_text.splitlines() if "pip" in line for inst in project_installs(re.sub(r"\$[({][^)}]*[)}]", "VAR", line))]
    assert len(make_installs) == 1, f"expected one install of the project in the Makefile, found {make_installs}"
    assert "test" in make_installs[0].extras, "the Makefile's install has no test extra: did its install line change?"
    runtime_extras = make_installs[0].extras - {"test"}
    docker_installs = [inst for i in d.dockerfile if i.keyword == "RUN" for inst in project_installs(i.args)]
    assert len(docker_installs) == 1, f"expected one pip install of the project in the Dockerfile, found {docker_installs}"
    install = docker_installs[0]
    assert not install.editable, "the image must install the project non-editable"
    assert install.extras == runtime_extras, f"Dockerfile installs extras {sorted(install.extras)}, the Makefile's runtime extras are {sorted(runtime_extras)}"
    declared = set(d.pyproject["project"].get("optional-dependencies") or {})
    assert install.extras <= declared, f"extras {sorted(install.extras - declared)} are not in pyproject.toml"


def check_docker_copies_the_build_inputs(d: Deploy) -> None:
    install_stage = next(i.stage for i in d.dockerfile if i.keyword == "RUN" and project_installs(i.args))
    sources = set()
    for instruction in d.dockerfile:
        if instruction.keyword in ("COPY", "ADD"):
            srcs, _, flags = copy_paths(instruction.args)
            if "from" not in flags:
                for src in srcs:
                    assert src.rstrip("/").split("/")[0] in d.repo_files, f"COPY {src}: no such path in the repository"
                if instruction.stage == install_stage:
                    sources.update(s.rstrip("/") for s in srcs)
    if "." in sources:
        return
    readme = d.pyproject["project"].get("readme")
    readme = readme.get("file") if isinstance(readme, dict) else readme
    needed = {"pyproject.toml", *([readme] if readme else [])}
    needed |= {pattern.rstrip("*") for pattern in d.pyproject["tool"]["setuptools"]["packages"]["find"]["include"]}
    assert needed <= sources, f"the build stage does not COPY {sorted(needed - sources)}: pip install '.' would fail"


def check_docker_stop_signal(d: Deploy) -> None:
    stop = d.last("STOPSIGNAL")
    assert stop is None or stop.args in ("SIGTERM", "15"), f"STOPSIGNAL {stop.args}: the server drains on SIGTERM"


CHECKS: list[Callable[[Deploy], None]] = [
    check_manifests_are_complete,
    check_server_serves_the_probed_routes,
    check_probes_hit_the_server,
    check_liveness_is_lenient,
    check_container_listens_on_server_port,
    check_service_reaches_the_pods,
    check_deployment_selector_matches_template,
    check_rolling_update_keeps_capacity,
    check_grace_period_covers_drain,
    check_drain_timeout_defined_once,
    check_resources_are_set,
    check_runs_as_non_root,
    check_root_filesystem_read_only,
    check_secrets_come_from_secret_refs,
    check_config_refs_resolve,
    check_example_secret_is_placeholder,
    check_kustomization_leaves_out_example_secret,
    check_hpa_scales_the_deployment,
    check_pdb_covers_the_pods,
    check_ingress_keeps_websockets_open,
    check_public_url_is_the_ingress_host,
    check_scenarios_dir_is_in_the_image,
    check_docker_base_image,
    check_docker_runs_as_non_root,
    check_docker_healthcheck_hits_healthz,
    check_docker_exposes_server_port,
    check_docker_cmd_serves_on_all_interfaces,
    check_console_script_matches_pyproject,
    check_docker_installs_the_makefiles_runtime_extras,
    check_docker_copies_the_build_inputs,
    check_docker_stop_signal,
]


# ---------------------------------------------------------------------------------------------------
# Mutations: one broken copy per way each check must fail


def _doc(d: Deploy, kind: str, file: str | None = None) -> dict[str, Any]:
    return next(doc for f, doc in d.manifests if doc.get("kind") == kind and (file is None or f == file))


def _env_entry(d: Deploy, name: str) -> dict[str, Any]:
    return next(e for e in d.container["env"] if e["name"] == name)


def _docker(old: str, new: str) -> Callable[[Deploy], None]:
    def mutate(d: Deploy) -> None:
        assert old in d.dockerfile_text, f"mutation target {old!r} not in the Dockerfile"
        d.dockerfile_text = d.dockerfile_text.replace(old, new)

    return mutate


def _set(getter: Callable[[Deploy], dict[str, Any]], key: str, value: Any) -> Callable[[Deploy], None]:
    def mutate(d: Deploy) -> None:
        getter(d)[key] = value

    return mutate


def _delete(getter: Callable[[Deploy], dict[str, Any]], key: str) -> Callable[[Deploy], None]:
    def mutate(d: Deploy) -> None:
        del getter(d)[key]

    return mutate


def _configmap_data(d: Deploy) -> dict[str, Any]:
    return _doc(d, "ConfigMap")["data"]


def _replace_text(attr: str, old: str, new: str) -> Callable[[Deploy], None]:
    def mutate(d: Deploy) -> None:
        text = getattr(d, attr)
        assert old in text, f"mutation target {old!r} not in {attr}"
        setattr(d, attr, text.replace(old, new))

    return mutate


def _drop_manifest(kind: str) -> Callable[[Deploy], None]:
    def mutate(d: Deploy) -> None:
        d.manifests = [(f, doc) for f, doc in d.manifests if doc.get("kind") != kind]

    return mutate


def _add_literal_secret(d: Deploy) -> None:
    entry = _env_entry(d, "OPENAI_API_KEY")
    entry.pop("valueFrom")
    entry["value"] = "sk-live-123"


def _pdb_min_available(count: int) -> Callable[[Deploy], None]:
    def mutate(d: Deploy) -> None:
        spec = _doc(d, "PodDisruptionBudget")["spec"]
        spec.pop("maxUnavailable", None)
        spec["minAvailable"] = count

    return mutate


def _add_ingress_path(d: Deploy) -> None:
    paths = _doc(d, "Ingress")["spec"]["rules"][0]["http"]["paths"]
    paths.append({**paths[0], "path": "/metrics"})


MUTATIONS = [
    pytest.param(check_manifests_are_complete, _drop_manifest("PodDisruptionBudget"), id="no PDB"),
    pytest.param(check_manifests_are_complete, _delete(lambda d: _doc(d, "Service"), "metadata"), id="unnamed Service"),
    pytest.param(check_server_serves_the_probed_routes, lambda d: d.server_routes.discard("/readyz"), id="server renamed /readyz"),
    pytest.param(check_probes_hit_the_server, _set(lambda d: d.container["readinessProbe"]["httpGet"], "path", LIVENESS_PATH), id="readiness on /healthz"),
    pytest.param(check_probes_hit_the_server, _set(lambda d: d.container["livenessProbe"]["httpGet"], "path", "/health"), id="liveness on /health"),
    pytest.param(check_probes_hit_the_server, _set(lambda d: d.container["livenessProbe"]["httpGet"], "port", 9090), id="liveness on port 9090"),
    pytest.param(check_probes_hit_the_server, _set(lambda d: d.container["readinessProbe"]["httpGet"], "port", "metrics"), id="readiness on undeclared port name"),
    pytest.param(check_probes_hit_the_server, _delete(lambda d: d.container, "readinessProbe"), id="no readiness probe"),
    pytest.param(check_liveness_is_lenient, _set(lambda d: d.container["livenessProbe"], "failureThreshold", 1), id="liveness kills after one miss"),
    pytest.param(check_liveness_is_lenient, _delete(lambda d: d.container["livenessProbe"], "timeoutSeconds"), id="liveness 1s default timeout"),
    pytest.param(check_container_listens_on_server_port, _set(lambda d: d.container["ports"][0], "containerPort", 8000), id="containerPort 8000"),
    pytest.param(check_service_reaches_the_pods, _set(lambda d: _doc(d, "Service")["spec"]["ports"][0], "targetPort", 8000), id="Service targetPort 8000"),
    pytest.param(check_service_reaches_the_pods, _set(lambda d: _doc(d, "Service")["spec"]["selector"], "app.kubernetes.io/name", "bridge"), id="Service selects no pod"),
    pytest.param(check_service_reaches_the_pods, _set(lambda d: _doc(d, "Service")["spec"], "sessionAffinity", "ClientIP"), id="Service sticky sessions"),
    pytest.param(check_deployment_selector_matches_template, _set(lambda d: d.deployment["spec"]["selector"]["matchLabels"], "app.kubernetes.io/component", "worker"), id="selector vs template"),
    pytest.param(check_rolling_update_keeps_capacity, _set(lambda d: d.deployment["spec"]["strategy"]["rollingUpdate"], "maxUnavailable", 1), id="maxUnavailable 1"),
    pytest.param(check_rolling_update_keeps_capacity, _set(lambda d: d.deployment["spec"], "strategy", {"type": "Recreate"}), id="Recreate strategy"),
    pytest.param(check_grace_period_covers_drain, _set(lambda d: d.pod, "terminationGracePeriodSeconds", 30), id="grace 30s"),
    pytest.param(check_grace_period_covers_drain, _set(lambda d: _env_entry(d, "DRAIN_TIMEOUT_S"), "value", "900"), id="drain raised alone"),
    pytest.param(check_grace_period_covers_drain, _delete(lambda d: d.container, "lifecycle"), id="no preStop"),
    pytest.param(check_drain_timeout_defined_once, _set(_configmap_data, "DRAIN_TIMEOUT_S", "30"), id="drain in env and ConfigMap"),
    pytest.param(check_resources_are_set, _delete(lambda d: d.container["resources"], "limits"), id="no limits"),
    pytest.param(check_resources_are_set, _set(lambda d: d.container["resources"]["requests"], "memory", "4Gi"), id="memory request above limit"),
    pytest.param(check_runs_as_non_root, _set(lambda d: d.container["securityContext"], "runAsNonRoot", False), id="container overrides runAsNonRoot"),
    pytest.param(check_runs_as_non_root, _set(lambda d: d.pod["securityContext"], "runAsUser", 1000), id="runAsUser differs from image"),
    pytest.param(check_root_filesystem_read_only, _set(lambda d: d.container["securityContext"], "readOnlyRootFilesystem", False), id="writable root"),
    pytest.param(check_root_filesystem_read_only, _set(lambda d: _env_entry(d, "CALLS_DIR"), "value", "/app/calls"), id="CALLS_DIR on read-only root"),
    pytest.param(check_secrets_come_from_secret_refs, _add_literal_secret, id="literal OPENAI_API_KEY"),
    pytest.param(check_secrets_come_from_secret_refs, lambda d: d.container["env"].append({"name": "STRIPE_API_KEY", "value": "sk_live_x"}), id="literal secret-looking env"),
    pytest.param(check_secrets_come_from_secret_refs, _set(_configmap_data, "TWILIO_AUTH_TOKEN", "abc"), id="token in ConfigMap"),
    pytest.param(check_secrets_come_from_secret_refs, _set(lambda d: _env_entry(d, "TWILIO_AUTH_TOKEN")["valueFrom"]["secretKeyRef"], "key", "token"), id="secretKeyRef to missing key"),
    pytest.param(check_config_refs_resolve, _set(lambda d: d.container["envFrom"][0]["configMapRef"], "name", "bridge-config"), id="envFrom missing ConfigMap"),
    pytest.param(check_example_secret_is_placeholder, _set(lambda d: _doc(d, "Secret")["stringData"], "OPENAI_API_KEY", "sk-proj-abc123"), id="real-looking key in example"),
    pytest.param(check_kustomization_leaves_out_example_secret, lambda d: _doc(d, "Kustomization")["resources"].append(EXAMPLE_SECRET_FILE), id="kustomization applies example Secret"),
    pytest.param(check_kustomization_leaves_out_example_secret, lambda d: _doc(d, "Kustomization")["resources"].remove("pdb.yaml"), id="kustomization forgets pdb"),
    pytest.param(check_hpa_scales_the_deployment, _set(lambda d: _doc(d, "HorizontalPodAutoscaler")["spec"]["scaleTargetRef"], "name", "bridge"), id="HPA targets other name"),
    pytest.param(check_hpa_scales_the_deployment, _set(lambda d: d.deployment["spec"], "replicas", 3), id="Deployment fixes replicas"),
    pytest.param(check_hpa_scales_the_deployment, _set(lambda d: _doc(d, "HorizontalPodAutoscaler")["spec"], "minReplicas", 1), id="HPA minReplicas 1"),
    pytest.param(check_pdb_covers_the_pods, _set(lambda d: _doc(d, "PodDisruptionBudget")["spec"]["selector"]["matchLabels"], "app.kubernetes.io/name", "bridge"), id="PDB selects no pod"),
    pytest.param(check_pdb_covers_the_pods, _pdb_min_available(2), id="PDB minAvailable = minReplicas"),
    pytest.param(check_pdb_covers_the_pods, _set(lambda d: _doc(d, "PodDisruptionBudget")["spec"], "maxUnavailable", 0), id="PDB maxUnavailable 0"),
    pytest.param(check_ingress_keeps_websockets_open, _set(lambda d: _doc(d, "Ingress")["metadata"]["annotations"], "nginx.ingress.kubernetes.io/proxy-read-timeout", "60"), id="ingress read timeout 60"),
    pytest.param(check_ingress_keeps_websockets_open, _add_ingress_path, id="ingress exposes /metrics"),
    pytest.param(check_public_url_is_the_ingress_host, _set(_configmap_data, "PUBLIC_URL", "http://bridge.example.com"), id="PUBLIC_URL http"),
    pytest.param(check_public_url_is_the_ingress_host, _set(_configmap_data, "PUBLIC_URL", "https://other.example.com"), id="PUBLIC_URL other host"),
    pytest.param(check_scenarios_dir_is_in_the_image, _set(_configmap_data, "SCENARIOS_DIR", "/scenarios"), id="cluster SCENARIOS_DIR elsewhere"),
    pytest.param(check_scenarios_dir_is_in_the_image, _docker("SCENARIOS_DIR=/app/scenarios", "SCENARIOS_DIR=/srv/scenarios"), id="image SCENARIOS_DIR elsewhere"),
    pytest.param(check_docker_base_image, _docker("FROM python:3.11-slim\n", "FROM python:3.12-slim\n"), id="stages on different Pythons"),
    pytest.param(check_docker_base_image, _docker("FROM python:3.11-slim AS build", "FROM python:3.10 AS build"), id="non-slim old base"),
    pytest.param(check_docker_runs_as_non_root, _docker("USER 10001:10001", "USER bridge"), id="USER by name"),
    pytest.param(check_docker_runs_as_non_root, _docker("USER 10001:10001", "USER 0"), id="USER root"),
    pytest.param(check_docker_healthcheck_hits_healthz, _docker("8080/healthz", "8080/readyz"), id="healthcheck on /readyz"),
    pytest.param(check_docker_healthcheck_hits_healthz, _docker("127.0.0.1:8080/healthz", "127.0.0.1:8000/healthz"), id="healthcheck port 8000"),
    pytest.param(check_docker_healthcheck_hits_healthz, _docker('CMD ["python", "-c", "import urllib.request; urllib.request.urlopen(', 'CMD ["curl", "-f", "(", "'), id="healthcheck with curl"),
    pytest.param(check_docker_exposes_server_port, _docker("EXPOSE 8080", "EXPOSE 8000"), id="EXPOSE 8000"),
    pytest.param(check_docker_cmd_serves_on_all_interfaces, _docker('"--host", "0.0.0.0"', '"--host", "127.0.0.1"'), id="CMD on loopback"),
    pytest.param(check_docker_cmd_serves_on_all_interfaces, _docker('CMD ["telephony-bridge", "serve", "--host", "0.0.0.0", "--port", "8080"]', "CMD telephony-bridge serve --host 0.0.0.0 --port 8080"), id="shell-form CMD"),
    pytest.param(check_docker_cmd_serves_on_all_interfaces, _docker('"--port", "8080"]', '"--port", "8080", "--bind", "x"]'), id="CMD flag the CLI lacks"),
    pytest.param(check_docker_cmd_serves_on_all_interfaces, _set(lambda d: d.container, "args", ["serve"]), id="Deployment overrides CMD"),
    pytest.param(check_console_script_matches_pyproject, lambda d: d.pyproject["project"].update(scripts={"tbridge": "telephony_bridge.cli:main"}), id="script renamed in pyproject"),
    pytest.param(check_docker_installs_the_makefiles_runtime_extras, _docker("'.[fast]'", "'.[test,fast]'"), id="image installs test extra"),
    pytest.param(check_docker_installs_the_makefiles_runtime_extras, _docker("pip install '.[fast]'", "pip install ."), id="image drops fast extra"),
    pytest.param(check_docker_installs_the_makefiles_runtime_extras, _docker("pip install '.[fast]'", "pip install -e '.[fast]'"), id="editable install"),
    pytest.param(check_docker_installs_the_makefiles_runtime_extras, _replace_text("makefile_text", "'.[test,fast]'", "'.[test,fast,otel]'"), id="Makefile gains an extra"),
    pytest.param(check_docker_copies_the_build_inputs, _docker("COPY pyproject.toml README.md ./", "COPY pyproject.toml ./"), id="README not copied"),
    pytest.param(check_docker_copies_the_build_inputs, _docker("COPY scenarios /app/scenarios", "COPY examples /app/scenarios"), id="COPY of a missing path"),
    pytest.param(check_docker_stop_signal, _docker("STOPSIGNAL SIGTERM", "STOPSIGNAL SIGINT"), id="STOPSIGNAL SIGINT"),
]


# ---------------------------------------------------------------------------------------------------
# Tests


@pytest.fixture
def deploy() -> Deploy:
    return load_deploy()


@pytest.mark.parametrize("check", CHECKS, ids=lambda check: check.__name__.removeprefix("check_"))
def test_deploy(check: Callable[[Deploy], None], deploy: Deploy) -> None:
    check(deploy)


@pytest.mark.parametrize("check, mutate", MUTATIONS)
def test_check_catches(check: Callable[[Deploy], None], mutate: Callable[[Deploy], None], deploy: Deploy) -> None:
    mutate(deploy)
    with pytest.raises(AssertionError):
        check(deploy)


def test_every_check_has_a_failing_case() -> None:
    covered = {param.values[0] for param in MUTATIONS}
    missing = [check.__name__ for check in CHECKS if check not in covered]
    assert not missing, f"checks never shown to fail: {missing}"


def test_dockerfile_parser_joins_continuations_and_tracks_stages() -> None:
    instructions = parse_dockerfile(
        "# syntax=docker/dockerfile:1\nFROM a AS b\nRUN x \\\n    # inside\n    && y\n\nFROM c\nUSER 1\n"
    )
    assert [(i.keyword, i.args, i.stage) for i in instructions] == [
        ("FROM", "a AS b", 0), ("RUN", "x && y", 0), ("FROM", "c", 1), ("USER", "1", 1),
    ]
    assert project_installs("python -m pip install --quiet -e '.[test,fast]' && pip install .") == [
        ProjectInstall(frozenset({"test", "fast"}), editable=True), ProjectInstall(frozenset(), editable=False),
    ]
