#!/usr/bin/env python3
"""What the schemas cannot see in deploy/ and k8s/: that the packaging agrees
with the code it packages. Run by the `packaging` step of .ci/run, after the
schema checks (hadolint, the compose spec, kubernetes-validate):

    check_packaging.py dockerfile deploy/Dockerfile
    check_packaging.py compose deploy/docker-compose.yml
    check_packaging.py k8s RENDERED.yaml...      (the output of kubectl kustomize)

Each check names the file and what is wrong; the exit status is 1 if any failed.
"""

import re
import sys
import tomllib
from pathlib import Path
from urllib.parse import urlparse

import yaml

ROOT = Path(__file__).resolve().parent.parent
ROLES = {"inventory", "audit", "issuance", "scheduler", "notification", "gateway"}
# Which role calls which (docs/reference/config.md, "Which role calls which").
CALLS = {
    "audit": set(),
    "inventory": {"audit"},
    "issuance": {"audit", "inventory"},
    "scheduler": {"audit", "inventory", "issuance"},
    "notification": {"audit", "inventory"},
    "gateway": {"audit", "inventory", "issuance", "scheduler", "notification"},
}
failures = []


def fail(where, message):
    failures.append(f"{where}: {message}")


def cli_env_vars():
    """Every CERTCTL_* variable the certctl binary reads."""
    names = set()
    for source in (ROOT / "cli/src").glob("*.rs"):
        names.update(re.findall(r'"(CERTCTL_[A-Z_]+)"', source.read_text()))
    return names


def health_services():
    """The grpc.health.v1 service names `certctl server` reports (cli/src/server.rs)."""
    return set(re.findall(r'"(certctl\.[a-z]+\.v1\.[A-Za-z]+Service)"', (ROOT / "cli/src/server.rs").read_text()))


def check_env(where, env, known):
    for name in env:
        if name.startswith("CERTCTL_") and name not in known:
            fail(where, f"{name} is not a variable certctl reads (cli/src)")


def check_roles(where, env):
    roles = set(str(env.get("CERTCTL_ROLES", "all")).split(","))
    if not roles <= ROLES | {"all"}:
        fail(where, f"CERTCTL_ROLES names unknown roles: {sorted(roles - ROLES - {'all'})}")
    return roles


def listen_port(where, env):
    listen = str(env.get("CERTCTL_LISTEN", ""))
    if not re.fullmatch(r"0\.0\.0\.0:\d+", listen):
        fail(where, f"CERTCTL_LISTEN `{listen}` should be 0.0.0.0:PORT, reachable from other containers")
        return None
    return int(listen.rsplit(":", 1)[1])


# ---- deploy/Dockerfile ------------------------------------------------------------
def check_dockerfile(path):
    text = Path(path).read_text()
    workspace = tomllib.loads((ROOT / "Cargo.toml").read_text())
    cli = tomllib.loads((ROOT / "cli/Cargo.toml").read_text())
    binary = cli["package"]["name"]
    rust = workspace["workspace"]["package"]["rust-version"]
    if f"ARG RUST_VERSION={rust}" not in text:
        fail(path, f"the build stage should use the workspace's rust-version {rust}")
    if not re.search(rf"cargo build --release --locked -p {binary}\b", text):
        fail(path, f"the build stage should run `cargo build --release --locked -p {binary}`, as CI builds it")
    if f"target/release/{binary} " not in text:
        fail(path, f"the image should take the binary cargo writes, target/release/{binary}")
    vite = (ROOT / "web/vite.config.ts").read_text()
    out_dir = re.search(r'outDir:\s*"([^"]+)"', vite).group(1)
    if f"/src/web/{out_dir} /usr/share/certctl/web" not in text:
        fail(path, f"the image should take the GUI from web/{out_dir}, where vite writes it")
    if "CERTCTL_WEB_DIR=/usr/share/certctl/web" not in text:
        fail(path, "CERTCTL_WEB_DIR should point at the GUI copied into the image")
    check_env(path, re.findall(r"(CERTCTL_[A-Z_]+)=", text), cli_env_vars())
    stages = re.findall(r"^FROM .*$", text, re.M)
    user = re.findall(r"^USER (\S+)", text, re.M)
    if not user or user[-1].split(":")[0] in ("0", "root"):
        fail(path, "the runtime stage must run as a non-root USER")
    if len(stages) < 3:
        fail(path, "expected web, build and runtime stages")
    if f'ENTRYPOINT ["{binary}"]' not in text:
        fail(path, f"the entry point should be the {binary} binary")


# ---- deploy/docker-compose.yml ----------------------------------------------------------
def check_compose(path):
    compose = yaml.safe_load(Path(path).read_text())
    services = compose["services"]
    known = cli_env_vars()
    ports = {}
    roles_seen = set()
    for name, service in services.items():
        where = f"{path}: service {name}"
        for dependency in service.get("depends_on", {}):
            if dependency not in services:
                fail(where, f"depends on `{dependency}`, which is not a service")
        for secret in service.get("secrets", []):
            if secret not in compose.get("secrets", {}):
                fail(where, f"uses the undefined secret `{secret}`")
        if service.get("command", [None])[0] != "server":
            continue
        env = service.get("environment", {})
        check_env(where, env, known)
        roles = check_roles(where, env)
        roles_seen |= roles
        port = listen_port(where, env)
        if len(roles) == 1 and port:
            ports[next(iter(roles))] = (name, port)
        if roles & {"issuance", "notification", "all"} and "CERTCTL_MASTER_KEY_FILE" not in env:
            fail(where, "issuance and notification seal secrets with the master key: set CERTCTL_MASTER_KEY_FILE")
        if roles & {"issuance", "notification", "all"} and "CERTCTL_MASTER_KEY_FILE" in env:
            if not env["CERTCTL_MASTER_KEY_FILE"].startswith("/run/secrets/"):
                fail(where, "the master key should come from a compose secret under /run/secrets/")
        if not service.get("read_only") or "ALL" not in service.get("cap_drop", []):
            fail(where, "certctl containers run with a read-only root and no capabilities")
    if roles_seen != ROLES:
        fail(path, f"no container runs {sorted(ROLES - roles_seen)}")
    # Every peer URL reaches the container of that role at its listen port.
    for name, service in services.items():
        for key, value in service.get("environment", {}).items():
            match = re.fullmatch(r"CERTCTL_([A-Z]+)_URL", key)
            if not match or match.group(1) in ("DATABASE", "PUBLIC"):
                continue
            role = match.group(1).lower()
            url = urlparse(value)
            if role not in ports or (url.hostname, url.port) != ports[role]:
                fail(f"{path}: service {name}", f"{key}={value} does not reach the {role} container {ports.get(role)}")
    gateway = ports.get("gateway")
    if gateway and not services[gateway[0]].get("ports"):
        fail(path, "the gateway's port is not published")


# ---- rendered Kubernetes manifests ----------------------------------------------------------
def pod_spec(obj):
    if obj["kind"] in ("Deployment", "Job", "DaemonSet", "StatefulSet"):
        return obj["spec"]["template"]["spec"]
    return None


def labels_match(selector, labels):
    return all(labels.get(k) == v for k, v in (selector or {}).items())


def selects(selector, labels):
    """A full label selector (matchLabels and `In`/`NotIn` matchExpressions) picks `labels`."""
    for expression in selector.get("matchExpressions", []):
        inside = labels.get(expression["key"]) in expression.get("values", [])
        if inside != (expression["operator"] == "In"):
            return False
    return labels_match(selector.get("matchLabels"), labels)


def peer_matches(peers, labels):
    """A NetworkPolicy `from`/`to` list admits pods with `labels` (no list: everyone)."""
    if peers is None:
        return True
    return any("podSelector" in p and "namespaceSelector" not in p
               and labels_match(p["podSelector"].get("matchLabels"), labels) for p in peers)


def port_matches(ports, port):
    return ports is None or any(p.get("port") == port for p in ports)


def flow_allowed(policies, caller, service, port):
    """Some policy lets `caller` pods out to the Service's pods on `port`, and some lets them in."""
    target = service["spec"]["selector"]
    target_port = next(p["targetPort"] for p in service["spec"]["ports"] if p["port"] == port)
    target_port = port if isinstance(target_port, str) else target_port
    out = any(selects(n["spec"]["podSelector"], caller) and peer_matches(rule.get("to"), target) and port_matches(rule.get("ports"), target_port)
              for n in policies for rule in n["spec"].get("egress", []))
    into = any(selects(n["spec"]["podSelector"], target) and peer_matches(rule.get("from"), caller) and port_matches(rule.get("ports"), target_port)
               for n in policies for rule in n["spec"].get("ingress", []))
    return out and into


def check_rendered(path):
    objects = [o for o in yaml.safe_load_all(Path(path).read_text()) if o]
    where = lambda o: f"{path}: {o['kind']}/{o['metadata']['name']}"  # noqa: E731
    by_kind = {}
    for obj in objects:
        by_kind.setdefault(obj["kind"], []).append(obj)
    configmaps = {o["metadata"]["name"]: o.get("data", {}) for o in by_kind.get("ConfigMap", [])}
    secrets = {o["metadata"]["name"] for o in by_kind.get("Secret", [])}
    known, health = cli_env_vars(), health_services()
    deny = [n for n in by_kind.get("NetworkPolicy", []) if set(n["spec"].get("policyTypes", [])) == {"Ingress", "Egress"}
            and not n["spec"].get("ingress") and not n["spec"].get("egress")]
    if not deny:
        fail(path, "no default-deny NetworkPolicy")
    namespaces = {o["metadata"].get("namespace") for o in objects if o["kind"] != "Namespace"}
    if len(namespaces) != 1 or None in namespaces:
        fail(path, f"every object should sit in one namespace, found {namespaces}")

    services_by_port = {}
    for svc in by_kind.get("Service", []):
        for port in svc["spec"]["ports"]:
            services_by_port[(svc["metadata"]["name"], port["port"])] = svc

    for obj in objects:
        spec = pod_spec(obj)
        if spec is None:
            continue
        labels = obj["spec"]["template"]["metadata"]["labels"]
        if not any(selects(n["spec"]["podSelector"], labels) for n in deny):
            fail(where(obj), "its pods escape the default-deny NetworkPolicy")
        security = spec.get("securityContext", {})
        if not security.get("runAsNonRoot") or spec.get("automountServiceAccountToken") is not False:
            fail(where(obj), "pods run as non-root without a service account token")
        for container in spec["containers"]:
            sc = container.get("securityContext", {})
            if not sc.get("readOnlyRootFilesystem") or sc.get("allowPrivilegeEscalation") is not False \
                    or "ALL" not in sc.get("capabilities", {}).get("drop", []):
                fail(where(obj), "the container needs a read-only root, no privilege escalation, all capabilities dropped")
            env = {e["name"]: e.get("value") for e in container.get("env", [])}
            for source in container.get("envFrom", []):
                if "configMapRef" in source:
                    name = source["configMapRef"]["name"]
                    if name not in configmaps:
                        fail(where(obj), f"reads the missing ConfigMap {name}")
                    env.update(configmaps.get(name, {}))
                if "secretRef" in source and source["secretRef"]["name"] not in secrets:
                    fail(where(obj), f"reads the missing Secret {source['secretRef']['name']}")
            uses_database = any(s.get("secretRef", {}).get("name", "").startswith("certctl-database")
                                for s in container.get("envFrom", []))
            if uses_database and not any(
                    selects(n["spec"]["podSelector"], labels) and rule.get("to") is None
                    and port_matches(rule.get("ports"), 5432)
                    for n in by_kind.get("NetworkPolicy", []) for rule in n["spec"].get("egress", [])):
                fail(where(obj), "it connects to PostgreSQL, but no NetworkPolicy lets it out on port 5432")
            for volume in spec.get("volumes", []):
                if "secret" in volume and volume["secret"]["secretName"] not in secrets:
                    fail(where(obj), f"mounts the missing Secret {volume['secret']['secretName']}")
            check_env(where(obj), env, known)
            if obj["kind"] != "Deployment":
                continue
            roles = check_roles(where(obj), env)
            port = listen_port(where(obj), env)
            declared = {p["containerPort"] for p in container.get("ports", [])}
            if port not in declared:
                fail(where(obj), f"listens on {port} but declares ports {sorted(declared)}")
            if "readinessProbe" not in container or "livenessProbe" not in container:
                fail(where(obj), "needs a readiness and a liveness probe")
            readiness = container.get("readinessProbe", {})
            if "gateway" in roles or "all" in roles:
                if readiness.get("httpGet", {}).get("path") != "/readyz":
                    fail(where(obj), "a gateway is ready when /readyz says so")
            elif readiness.get("grpc", {}).get("service") not in health:
                fail(where(obj), f"its gRPC readiness probe should name one of {sorted(health)}")
            if roles & {"issuance", "notification", "all"} and "CERTCTL_MASTER_KEY_FILE" not in env:
                fail(where(obj), "issuance and notification need CERTCTL_MASTER_KEY_FILE")
            if "issuance" in roles or "all" in roles:
                if "CERTCTL_PUBLIC_URL" not in env:
                    fail(where(obj), "issuance needs CERTCTL_PUBLIC_URL (the gateway's URL)")
            if obj["spec"].get("replicas", 1) > 1:
                pdbs = [p for p in by_kind.get("PodDisruptionBudget", [])
                        if labels_match(p["spec"]["selector"]["matchLabels"], labels)]
                if len(pdbs) != 1:
                    fail(where(obj), f"a Deployment with replicas needs one PodDisruptionBudget, found {len(pdbs)}")
            # Every peer URL is a Service of this layout that selects pods of that role.
            for key, value in env.items():
                match = re.fullmatch(r"CERTCTL_([A-Z]+)_URL", key)
                if not match or match.group(1) in ("DATABASE", "PUBLIC"):
                    continue
                url = urlparse(value)
                svc = services_by_port.get((url.hostname, url.port))
                role = match.group(1).lower()
                if svc is None:
                    fail(where(obj), f"{key}={value}: no Service {url.hostname} with port {url.port}")
                elif svc["spec"]["selector"].get("app.kubernetes.io/component") != role:
                    fail(where(obj), f"{key}={value}: that Service does not select the {role} pods")
                elif role in set().union(*(CALLS.get(r, set()) for r in roles)) - roles \
                        and not flow_allowed(by_kind.get("NetworkPolicy", []), labels, svc, url.port):
                    fail(where(obj), f"the NetworkPolicies do not let it call {url.hostname}:{url.port}")

    for monitor in by_kind.get("ServiceMonitor", []):
        selector = monitor["spec"]["selector"]["matchLabels"]
        matched = [s for s in by_kind.get("Service", []) if labels_match(selector, s["metadata"].get("labels", {}))]
        if len(matched) != len(by_kind.get("Service", [])):
            fail(where(monitor), "should select every certctl Service")
        if monitor["metadata"].get("namespace") not in namespaces:
            fail(where(monitor), "should sit in certctl's namespace")


def main(argv):
    kind, paths = argv[1], argv[2:]
    check = {"dockerfile": check_dockerfile, "compose": check_compose, "k8s": check_rendered}[kind]
    for path in paths:
        check(path)
    for failure in failures:
        print(f"FAIL {failure}")
    print(f"{kind}: {len(paths)} file(s) checked, {len(failures)} problem(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
