#!/usr/bin/env python3
"""Validates the Kubernetes manifests offline, against the binaries they run.

No cluster or schema download is needed: it parses deploy/base with PyYAML and
checks what a cluster would reject or what would break at run time:
- kustomization resources exist and parse; every object has apiVersion, kind
  and metadata.name; names are unique per kind;
- each Deployment's selector matches its pod labels, and a Service selects
  some Deployment's pods on a port that container exposes;
- every container runs a binary built by the workspace, sets resource
  requests and a memory limit, and has readiness and liveness probes on a
  declared port;
- every environment variable a container sets is one its binary reads
  (from the binary's own `--help`), so a renamed flag cannot silently leave a
  manifest setting nothing.

usage: check_manifests.py DEPLOY_DIR BIN_DIR
"""

import os
import re
import subprocess
import sys

import yaml

PASSED = 0
FAILED = 0


def check(condition, what):
    global PASSED, FAILED
    if condition:
        PASSED += 1
    else:
        FAILED += 1
        print(f"FAIL {what}")


def binary_env_vars(bin_dir, binary):
    """The env vars `binary --help` documents, and those of its required
    flags (named in the usage line, whose value names are the env names)."""
    path = os.path.join(bin_dir, binary)
    if not os.path.exists(path):
        return None, set()
    help_text = subprocess.run([path, "--help"], capture_output=True, text=True, check=True).stdout
    known = set(re.findall(r"\[env: ([A-Z0-9_]+)[=\]]", help_text))
    usage = next((line for line in help_text.splitlines() if line.startswith("Usage:")), "")
    required = set(re.findall(r"--[a-z0-9-]+ <([A-Z0-9_]+)>", usage)) & known
    return known, required


def seconds(duration):
    """Seconds in a humantime duration such as `20s` or `1m`."""
    match = re.fullmatch(r"(\d+)(ms|s|m)", duration)
    if not match:
        return None
    value, unit = int(match.group(1)), match.group(2)
    return value / 1000 if unit == "ms" else value * (60 if unit == "m" else 1)


def main():
    deploy_dir, bin_dir = sys.argv[1], sys.argv[2]
    base = os.path.join(deploy_dir, "base")
    kustomization = yaml.safe_load(open(os.path.join(base, "kustomization.yaml")))
    objects = []
    for resource in kustomization["resources"]:
        path = os.path.join(base, resource)
        check(os.path.exists(path), f"kustomization resource {resource} exists")
        for doc in yaml.safe_load_all(open(path)):
            if doc is not None:
                objects.append((resource, doc))
    dockerfile = os.path.join(deploy_dir, "Dockerfile")
    check(os.path.exists(dockerfile), "deploy/Dockerfile exists")
    # The workspace root is a package too (the one command): a build that
    # does not say --workspace builds that binary alone.
    builds = [line for line in open(dockerfile) if "cargo build" in line]
    check(
        len(builds) == 1 and "--workspace" in builds[0],
        "deploy/Dockerfile builds every binary of the workspace (cargo build --workspace)",
    )

    seen = set()
    for resource, obj in objects:
        for key in ("apiVersion", "kind", "metadata"):
            check(key in obj, f"{resource}: object has {key}")
        name = (obj["kind"], obj["metadata"].get("name"))
        check(name[1], f"{resource}: {obj['kind']} has a name")
        check(name not in seen, f"{resource}: {name} is unique")
        seen.add(name)

    deployments = [o for _, o in objects if o["kind"] == "Deployment"]
    check(len(deployments) > 0, "at least one Deployment")
    for deployment in deployments:
        name = deployment["metadata"]["name"]
        spec = deployment["spec"]
        pod_labels = spec["template"]["metadata"]["labels"]
        selector = spec["selector"]["matchLabels"]
        check(all(pod_labels.get(k) == v for k, v in selector.items()), f"{name}: selector matches pod labels")
        for container in spec["template"]["spec"]["containers"]:
            where = f"{name}/{container['name']}"
            binary = container["command"][0]
            known_env, required_env = binary_env_vars(bin_dir, binary)
            check(known_env is not None, f"{where}: runs a workspace binary ({binary})")
            ports = {p["containerPort"] for p in container.get("ports", [])}
            for probe in ("readinessProbe", "livenessProbe"):
                handler = container.get(probe, {})
                port = (handler.get("grpc") or handler.get("httpGet") or handler.get("tcpSocket") or {}).get("port")
                check(port in ports, f"{where}: {probe} on a declared port")
            resources = container.get("resources", {})
            check("cpu" in resources.get("requests", {}), f"{where}: cpu request")
            check("memory" in resources.get("limits", {}), f"{where}: memory limit")
            for env in container.get("env", []):
                check(
                    known_env is not None and env["name"] in known_env,
                    f"{where}: env {env['name']} is read by {binary}",
                )
            given = {env["name"]: env.get("value") for env in container.get("env", [])}
            for name in sorted(required_env):
                check(name in given, f"{where}: required {name} is set")
            grace = seconds(given.get("SHUTDOWN_GRACE") or "10s")
            termination = spec["template"]["spec"].get("terminationGracePeriodSeconds", 30)
            pre_stop = (
                container.get("lifecycle", {}).get("preStop", {}).get("sleep", {}).get("seconds", 0)
            )
            # A node's whole shutdown: the preStop wait, in-flight ingest
            # calls (SHUTDOWN_GRACE), the drain or hand-back (SHUTDOWN_GRACE
            # again, plus the last pull from the event log), the outcome
            # flush (10 s).
            needed = pre_stop + (2 * grace + 1 + 10 if binary == "data-plane" else grace) if grace else None
            check(
                needed is not None and termination > needed,
                f"{where}: terminationGracePeriodSeconds {termination} outlasts the shutdown ({needed} s)",
            )
            if binary == "data-plane":
                check(
                    pre_stop >= 1,
                    f"{where}: a preStop wait lets the Service stop routing producers before SIGTERM",
                )
                check(
                    bool(given.get("EVENT_LOG")),
                    f"{where}: the durable mode (EVENT_LOG) is on",
                )

    for _, service in [(r, o) for r, o in objects if o["kind"] == "Service"]:
        name = service["metadata"]["name"]
        selector = service["spec"]["selector"]
        targets = [
            d
            for d in deployments
            if all(d["spec"]["template"]["metadata"]["labels"].get(k) == v for k, v in selector.items())
        ]
        check(len(targets) == 1, f"service {name} selects one Deployment")
        for port in service["spec"]["ports"]:
            named = {
                p.get("name")
                for d in targets
                for c in d["spec"]["template"]["spec"]["containers"]
                for p in c.get("ports", [])
            }
            check(port["targetPort"] in named, f"service {name}: targetPort {port['targetPort']} exists")

    services = {o["metadata"]["name"]: o for _, o in objects if o["kind"] == "Service"}
    for _, ingress in [(r, o) for r, o in objects if o["kind"] == "Ingress"]:
        name = ingress["metadata"]["name"]
        hosts = {rule.get("host") for rule in ingress["spec"].get("rules", [])}
        covered = {host for tls in ingress["spec"].get("tls", []) for host in tls.get("hosts", [])}
        # Browsers send an API key with every call: never in clear text.
        check(hosts and hosts <= covered, f"ingress {name}: every host is served over TLS")
        for rule in ingress["spec"].get("rules", []):
            for path in rule["http"]["paths"]:
                # The console's page and the services it calls, nothing else
                # of the port (the node feed, API keys, reflection).
                check(
                    path["path"] in ("/console", "/eventconnectors.v1.ConnectorService", "/eventconnectors.v1.StatsService"),
                    f"ingress {name}: path {path['path']} is one the console needs",
                )
                backend = path["backend"]["service"]
                service = services.get(backend["name"])
                check(service is not None, f"ingress {name}: service {backend['name']} exists")
                ports = {p.get("name") for p in (service or {}).get("spec", {}).get("ports", [])}
                check(backend["port"].get("name") in ports, f"ingress {name}: port {backend['port']} of {backend['name']} exists")

    deployment_names = {d["metadata"]["name"] for d in deployments}
    for _, obj in objects:
        if obj["kind"] == "HorizontalPodAutoscaler":
            target = obj["spec"]["scaleTargetRef"]
            check(
                target["kind"] == "Deployment" and target["name"] in deployment_names,
                f"HPA {obj['metadata']['name']} scales an existing Deployment",
            )
            check(obj["spec"]["minReplicas"] <= obj["spec"]["maxReplicas"], "HPA min <= max")
        if obj["kind"] == "PodDisruptionBudget":
            selector = obj["spec"]["selector"]["matchLabels"]
            check(
                any(
                    all(d["spec"]["template"]["metadata"]["labels"].get(k) == v for k, v in selector.items())
                    for d in deployments
                ),
                f"PDB {obj['metadata']['name']} selects a Deployment's pods",
            )

    print(f"manifests: {PASSED} passed, {FAILED} failed")
    return 1 if FAILED else 0


if __name__ == "__main__":
    sys.exit(main())
