#!/usr/bin/env python3
"""Runs the README's grpcurl walkthroughs, as written, against the one
command (the binary the README's first command builds, started with no flag
in an empty directory, demo included), then against the control-plane and
data-plane binaries started on their own the way the README starts them.

grpcurl cannot be installed here, so each `grpcurl` command of the README's
walkthrough blocks is executed by a small equivalent built only on server
reflection (grpcio + grpcio-reflection from PyPI): like grpcurl it has no
.proto files and learns every message type from the server.

usage: readme_walkthrough.py README.md ONE_COMMAND_BINARY CONTROL_PLANE_BINARY DATA_PLANE_BINARY
"""

import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone

import grpc
from google.protobuf import descriptor_pool, json_format, message_factory
from grpc_reflection.v1alpha import reflection_pb2
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)

ADMIN_TOKEN = "dev-admin-token"
NODE_TOKEN = "dev-node-token"
INGEST_TOKEN = "dev-ingest-token"
PASSED = 0
FAILED = 0


def check(condition, what):
    global PASSED, FAILED
    if condition:
        PASSED += 1
        print(f"ok   {what}")
    else:
        FAILED += 1
        print(f"FAIL {what}")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def walkthrough_commands(readme_path, marker="walkthrough"):
    """The grpcurl commands of the README block marked `<!-- marker -->`."""
    text = open(readme_path, encoding="utf-8").read()
    match = re.search(r"<!-- " + re.escape(marker) + r" -->\s*```sh\n(.*?)```", text, re.S)
    if not match:
        raise SystemExit(f"README.md has no ```sh block after <!-- {marker} -->")
    tokens = shlex.split(match.group(1).replace("\\\n", " "), comments=True)
    commands, current = [], None
    for token in tokens:
        if token == "grpcurl":
            current = []
            commands.append(current)
        elif re.match(r"^[A-Z_]+=", token):
            # A shell assignment (FROM=...) starts another command: the
            # variables it sets are given to the grpcurl equivalent.
            current = None
        elif current is not None:
            current.append(token)
    return commands


class Grpcurl:
    """The part of grpcurl the walkthrough uses: -plaintext, -H, -d,
    `list`, `describe`, and calling Service/Method with JSON."""

    def __init__(self, variables):
        self.variables = variables

    def expand(self, token):
        return re.sub(r"\$\{?(\w+)\}?", lambda m: self.variables[m.group(1)], token)

    def run(self, argv):
        argv = [self.expand(a) for a in argv]
        headers, data, positional = [], None, []
        i = 0
        while i < len(argv):
            if argv[i] == "-plaintext":
                i += 1
            elif argv[i] == "-H":
                name, value = argv[i + 1].split(":", 1)
                headers.append((name.strip().lower(), value.strip()))
                i += 2
            elif argv[i] == "-d":
                data = argv[i + 1]
                i += 2
            else:
                positional.append(argv[i])
                i += 1
        address, verb = positional[0], positional[1:]
        channel = grpc.insecure_channel(address)
        database = ProtoReflectionDescriptorDatabase(channel)
        pool = descriptor_pool.DescriptorPool(database)
        if verb == ["list"]:
            return {"services": sorted(database.get_services())}
        if verb[0] == "describe":
            return {"service": pool.FindServiceByName(verb[1]).full_name}
        service_name, method_name = verb[0].rsplit("/", 1)
        method = pool.FindServiceByName(service_name).FindMethodByName(method_name)
        request_class = message_factory.GetMessageClass(method.input_type)
        response_class = message_factory.GetMessageClass(method.output_type)
        request = json_format.Parse(data or "{}", request_class())
        call = channel.unary_unary(
            f"/{service_name}/{method_name}",
            request_serializer=request_class.SerializeToString,
            response_deserializer=response_class.FromString,
        )
        response = call(request, metadata=headers, timeout=10)
        return json_format.MessageToDict(response, preserving_proto_field_name=True)


def wait_until_serving(port, process, what="control plane"):
    deadline = time.time() + 30
    while time.time() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{what} exited early with {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"{what} did not start listening within 30 s")


def wait_until_ready(port):
    """Readiness as Kubernetes probes it: gRPC health of service ""."""
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    check_call = channel.unary_unary(
        "/grpc.health.v1.Health/Check",
        request_serializer=lambda _: b"",
        response_deserializer=lambda data: data,
    )
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            # HealthCheckResponse{status: SERVING} is field 1 = 1.
            if check_call(None, timeout=2) == b"\x08\x01":
                return True
        except grpc.RpcError:
            pass
        time.sleep(0.1)
    return False


def stop(process, what):
    process.send_signal(signal.SIGTERM)
    try:
        code = process.wait(timeout=30)
        check(code == 0, f"{what}: SIGTERM, graceful exit with 0 (got {code})")
    except subprocess.TimeoutExpired:
        process.kill()
        check(False, f"{what}: exited within 30 s of SIGTERM")


def ingest_walkthrough(readme, port):
    """The README's ingest block as written, against a node on `port`."""
    commands = walkthrough_commands(readme, "walkthrough: data-plane")
    check(len(commands) >= 2, f"README data-plane walkthrough has {len(commands)} grpcurl commands")
    grpcurl = Grpcurl({"INGEST_TOKEN": INGEST_TOKEN})
    results = []
    for argv in commands:
        argv = [a.replace("localhost:50061", f"127.0.0.1:{port}") for a in argv]
        result = grpcurl.run(argv)
        print(f"$ grpcurl ... {argv[-1]}\n{json.dumps(result, indent=2)}")
        results.append(result)
    check(results[0].get("accepted") == 1, "Ingest: the hand-written event is accepted")
    rejected = results[1].get("rejected", [])
    check(
        results[1].get("accepted") == 1
        and results[1].get("sequence") == "2"
        and [(r.get("index", 0), r.get("reason")) for r in rejected] == [(1, "MISSING_FIELD")],
        "Ingest: the event without a type is rejected as MISSING_FIELD, by index",
    )
    try:
        grpcurl.run(["-plaintext", "-d", "{}", f"127.0.0.1:{port}", "eventconnectors.v1.IngestService/Ingest"])
        check(False, "ingest without the token is refused")
    except grpc.RpcError as error:
        check(error.code() == grpc.StatusCode.UNAUTHENTICATED, "ingest without the token is UNAUTHENTICATED")


def data_plane_walkthrough(binary, readme, control_plane_port):
    """The node started as the README starts it (its tokens, following the
    control plane), then the README's ingest block as written."""
    port = free_port()
    env = dict(
        os.environ,
        NODE_TOKEN=NODE_TOKEN,
        INGEST_TOKEN=INGEST_TOKEN,
        LISTEN_ADDR=f"127.0.0.1:{port}",
        METRICS_ADDR=f"127.0.0.1:{free_port()}",
        CONTROL_PLANE_URLS=f"http://127.0.0.1:{control_plane_port}",
    )
    env.pop("STATS_URL", None)
    process = subprocess.Popen([binary], env=env, stdout=sys.stderr, stderr=sys.stderr)
    try:
        wait_until_serving(port, process, "data-plane node")
        check(wait_until_ready(port), "the node is ready once it has the configuration")
        ingest_walkthrough(readme, port)
    finally:
        stop(process, "data-plane node")


def reflection_v1_lists(address):
    """grpcurl asks grpc.reflection.v1 first: check it answers, using the
    v1alpha messages (the two versions share their wire format)."""
    channel = grpc.insecure_channel(address)
    call = channel.stream_stream(
        "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
        request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
        response_deserializer=reflection_pb2.ServerReflectionResponse.FromString,
    )
    responses = call(iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=10)
    return sorted(s.name for r in responses for s in r.list_services_response.service)


def connectors_walkthrough(readme, port):
    """The README's connector block as written, against a control plane on
    `port`: every call answers as the README says."""
    commands = walkthrough_commands(readme)
    check(len(commands) >= 6, f"README walkthrough has {len(commands)} grpcurl commands")
    grpcurl = Grpcurl({"ADMIN_TOKEN": ADMIN_TOKEN})
    for argv in commands:
        argv = [a.replace("localhost:50051", f"127.0.0.1:{port}") for a in argv]
        target = argv[-1]
        result = grpcurl.run(argv)
        print(f"$ grpcurl ... {target}\n{json.dumps(result, indent=2)}")
        if target == "list":
            expected = {
                "eventconnectors.v1.ApiKeyService",
                "eventconnectors.v1.ConnectorService",
                "eventconnectors.v1.ConfigService",
                "eventconnectors.v1.StatsService",
                "grpc.health.v1.Health",
                "grpc.reflection.v1.ServerReflection",
                "grpc.reflection.v1alpha.ServerReflection",
            }
            check(set(result["services"]) == expected, f"list shows exactly {sorted(expected)}")
        elif target.endswith("/ListPartners"):
            ids = [p["id"] for p in result["partners"]]
            check(ids == ["ga4", "meta_capi", "pinterest", "snapchat", "tiktok", "webhook"], "ListPartners shows the catalog")
        elif target.endswith("/CreateConnector"):
            check(result.get("status") == "ACTIVE", "CreateConnector: ACTIVE at once")
            check("secrets" not in result, "CreateConnector returns no secrets")
            check(result.get("secret_names") == ["signing_secret"], "CreateConnector names the secret set")
            grpcurl.variables["CONNECTOR_ID"] = result["id"]
        elif target.endswith("/PreviewTransformation"):
            request = result.get("request", {})
            check(
                result.get("matches_filter") is True
                and request.get("url") == "https://example.com/hooks/orders"
                and request.get("headers", {}).get("webhook-id") == "e1"
                and json.loads(request.get("body", "{}")).get("id") == "e1",
                "PreviewTransformation shows the signed request for the sample event",
            )
            check("whsec_" not in json.dumps(result), "PreviewTransformation hides the secret")
        elif target.endswith("/ListConnectors"):
            ids = [c["id"] for c in result.get("connectors", [])]
            check(ids == [grpcurl.variables["CONNECTOR_ID"]], "ListConnectors shows the new connector")
        elif target.endswith("/DeactivateConnector"):
            check(result.get("status") == "INACTIVE", "DeactivateConnector: INACTIVE")
        elif target.endswith("/DeleteConnector"):
            check(result == {}, "DeleteConnector answers {}")
        elif target.endswith("/GetConnector"):
            check(result.get("id") == grpcurl.variables["CONNECTOR_ID"], "GetConnector finds it")

    try:
        grpcurl.run(["-plaintext", f"127.0.0.1:{port}", "eventconnectors.v1.ConnectorService/ListConnectors"])
        check(False, "a call without the admin token is refused")
    except grpc.RpcError as error:
        check(error.code() == grpc.StatusCode.UNAUTHENTICATED, "a call without the admin token is UNAUTHENTICATED")
    try:
        grpcurl.run(
            [
                "-plaintext",
                "-H",
                f"authorization: Bearer {ADMIN_TOKEN}",
                "-d",
                json.dumps({"id": grpcurl.variables["CONNECTOR_ID"]}),
                f"127.0.0.1:{port}",
                "eventconnectors.v1.ConnectorService/GetConnector",
            ]
        )
        check(False, "the deleted connector is gone")
    except grpc.RpcError as error:
        check(error.code() == grpc.StatusCode.NOT_FOUND, "the deleted connector is NOT_FOUND")
    check(
        "eventconnectors.v1.ConnectorService" in reflection_v1_lists(f"127.0.0.1:{port}"),
        "reflection v1 answers too",
    )


def keys_walkthrough(readme, port, node_port):
    """The README's API-key block as written, against the one command: keys
    are shown once, scoped, and a revoked one is refused by the node."""
    commands = walkthrough_commands(readme, "walkthrough: keys")
    check(len(commands) == 6, f"README keys walkthrough has {len(commands)} grpcurl commands")
    grpcurl = Grpcurl({"ADMIN_TOKEN": ADMIN_TOKEN})
    created = []
    for argv in commands:
        argv = [
            a.replace("localhost:50051", f"127.0.0.1:{port}").replace("localhost:50061", f"127.0.0.1:{node_port}")
            for a in argv
        ]
        target = argv[-1]
        result = grpcurl.run(argv)
        print(f"$ grpcurl ... {target}\n{json.dumps(result, indent=2)}")
        if target.endswith("/CreateApiKey"):
            key, secret = result["api_key"], result["secret"]
            check(secret.startswith("eck_") and key["prefix"] == secret[:12], "CreateApiKey shows the key once, and its prefix")
            if not created:
                check(key["scope"] == "workspace:acme:admin", "the first key is acme's admin key")
                grpcurl.variables["ACME_ADMIN_KEY"] = secret
            else:
                check(key["scope"] == "workspace:acme:ingest", "acme's admin made acme's ingest key")
                grpcurl.variables["ACME_INGEST_KEY"] = secret
                grpcurl.variables["KEY_ID"] = key["id"]
            created.append(secret)
        elif target.endswith("/ListConnectors"):
            workspaces = {c["workspace_id"] for c in result.get("connectors", [])}
            check(workspaces <= {"acme"}, f"the acme admin key lists acme's connectors only ({workspaces})")
        elif target.endswith("/ListApiKeys"):
            scopes = sorted(k["scope"] for k in result.get("api_keys", []))
            check(scopes == ["workspace:acme:admin", "workspace:acme:ingest"], f"ListApiKeys shows acme's keys ({scopes})")
            check(not any(secret in json.dumps(result) for secret in created), "ListApiKeys shows no key")
            admin_key = [k for k in result["api_keys"] if k["scope"].endswith(":admin")][0]
            check("last_used_time" in admin_key, "the admin key's use is recorded")
        elif target.endswith("/Ingest"):
            rejected = [(r.get("index", 0), r.get("reason")) for r in result.get("rejected", [])]
            check(
                result.get("accepted") == 1 and rejected == [(1, "WRONG_WORKSPACE")],
                f"the ingest key ingests into acme only ({result})",
            )
        elif target.endswith("/RevokeApiKey"):
            check("revoke_time" in result, "RevokeApiKey answers the revoked key")

    event = json.dumps({"events": ['{"id":"evt-k3","type":"order_completed"}']})
    ingest = ["-plaintext", "-H", f"authorization: Bearer {grpcurl.variables['ACME_INGEST_KEY']}", "-d", event,
              f"127.0.0.1:{node_port}", "eventconnectors.v1.IngestService/Ingest"]
    deadline, refused = time.time() + 1, False
    while not refused and time.time() < deadline:
        try:
            grpcurl.run(ingest)
        except grpc.RpcError as error:
            refused = error.code() == grpc.StatusCode.UNAUTHENTICATED
    check(refused, "the node refuses the revoked key within a second")
    try:
        grpcurl.run(["-plaintext", "-H", f"authorization: Bearer {grpcurl.variables['ACME_ADMIN_KEY']}",
                     "-d", '{"workspace_id": "demo"}', f"127.0.0.1:{port}",
                     "eventconnectors.v1.ConnectorService/ListConnectors"])
        check(False, "the acme admin key is refused on another workspace")
    except grpc.RpcError as error:
        check(error.code() == grpc.StatusCode.PERMISSION_DENIED, "the acme admin key on workspace demo: PERMISSION_DENIED")


def admin(method, body, port):
    """One admin call, as grpcurl would make it."""
    return Grpcurl({}).run(
        [
            "-plaintext",
            "-H",
            f"authorization: Bearer {ADMIN_TOKEN}",
            "-d",
            json.dumps(body),
            f"127.0.0.1:{port}",
            method,
        ]
    )


def demo_connectors():
    """Every connector of workspace demo, as (name, id), in creation order."""
    result = admin("eventconnectors.v1.ConnectorService/ListConnectors", {"workspace_id": "demo"}, 50051)
    return [(c["name"], c["id"]) for c in result.get("connectors", [])]


def demo_statistics_show_everything(connectors):
    """Waits (at most a minute, as the README promises) until each demo
    connector's statistics show delivered and failed calls, both error
    tabs, invalid credentials among the connector errors, and a series."""
    deadline = time.time() + 60
    missing = {}
    while time.time() < deadline:
        missing = {}
        for name, connector_id in connectors.items():
            stats = admin(
                "eventconnectors.v1.StatsService/GetConnectorStats",
                {"connector_id": connector_id, "preset": "LAST_7_DAYS"},
                50071,
            )
            totals = stats.get("totals", {})
            categories = {e.get("category") for e in stats.get("connector_errors", [])}
            lacks = [
                what
                for what, present in [
                    ("delivered", int(totals.get("delivered", 0)) > 0),
                    ("failed", int(totals.get("failed", 0)) > 0),
                    ("transformation errors", int(totals.get("transformation_errors", 0)) > 0),
                    ("the connector-errors tab", bool(stats.get("connector_errors"))),
                    ("the transformation-errors tab", bool(stats.get("transformation_errors"))),
                    ("INVALID_CREDENTIALS", "INVALID_CREDENTIALS" in categories),
                    ("PARTNER_ERROR", "PARTNER_ERROR" in categories),
                    ("a series", any(int(p.get("totals", {}).get("delivered", 0)) > 0 for p in stats.get("series", []))),
                ]
                if not present
            ]
            if lacks:
                missing[name] = lacks
        if not missing:
            return True, {}
        time.sleep(1)
    return False, missing


def stats_walkthrough(readme, webhook_id):
    """The README's statistics block as written (the shell assignments of
    FROM and TO made here alike)."""
    commands = walkthrough_commands(readme, "walkthrough: stats")
    check(len(commands) == 5, f"README stats walkthrough has {len(commands)} grpcurl commands")
    now = datetime.now(timezone.utc).replace(microsecond=0)
    grpcurl = Grpcurl(
        {
            "ADMIN_TOKEN": ADMIN_TOKEN,
            "FROM": (now - timedelta(hours=6)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "TO": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
    )
    results = []
    for argv in commands:
        argv = [a.replace("localhost:", "127.0.0.1:") for a in argv]
        if argv[-1].endswith(("/GetConnectorStats", "/ListRecentFailures")):
            grpcurl.variables.setdefault("CONNECTOR_ID", webhook_id)
        result = grpcurl.run(argv)
        print(f"$ grpcurl ... {argv[-1]}\n{json.dumps(result, indent=2)[:2000]}")
        results.append(result)
    listed = {c["name"]: c["id"] for c in results[0].get("connectors", [])}
    check(listed.get("Orders webhook (demo)") == webhook_id, "ListConnectors shows the demo webhook")
    week, hours, paris, failures = results[1], results[2], results[3], results[4]
    check(
        week.get("granularity") == "DAY" and len(week.get("series", [])) == 7 and int(week["totals"].get("delivered", 0)) > 0,
        "GetConnectorStats LAST_7_DAYS: 7 daily points, events delivered",
    )
    check(
        hours.get("granularity") == "HOUR" and len(hours.get("series", [])) in (6, 7) and int(hours["totals"].get("delivered", 0)) > 0,
        "GetConnectorStats from/to: hourly points over the 6 hours, events delivered",
    )
    check(
        paris.get("granularity") == "DAY"
        and len(paris.get("series", [])) == 7
        and paris.get("from", "").endswith(("T22:00:00Z", "T23:00:00Z")),
        "GetConnectorStats with Europe/Paris: 7 days from Paris midnight",
    )
    listed = failures.get("failures", [])

    def instant(failure):
        # RFC 3339 with 0 to 9 fractional digits: compared as numbers.
        whole, _, fraction = failure["at"].rstrip("Z").partition(".")
        return whole, fraction.ljust(9, "0")

    check(
        0 < len(listed) <= 10
        and all(f.get("event_id") and f.get("at") for f in listed)
        and listed == sorted(listed, key=instant, reverse=True),
        "ListRecentFailures: the demo webhook's failed events, newest first, ten at most",
    )


BANNER_END = "Ctrl-C stops everything."


def start_one_command(binary, workdir, banner_path, starts):
    """Starts the one command (its `starts`th start in `workdir`) and waits
    until its start-up message is printed: the demo is then set up."""
    env = {k: v for k, v in os.environ.items() if k not in ONE_COMMAND_SETTINGS}
    with open(banner_path, "a") as banner:
        process = subprocess.Popen([binary], cwd=workdir, env=env, stdout=banner, stderr=sys.stderr)
    deadline = time.time() + 60
    while open(banner_path).read().count(BANNER_END) < starts:
        if process.poll() is not None:
            raise SystemExit(f"the one command exited early with {process.returncode}")
        if time.time() > deadline:
            raise SystemExit("the one command printed no start-up message within 60 s")
        time.sleep(0.1)
    return process


# Settings the one command reads, left out so it runs with its defaults,
# exactly as the README's first command.
ONE_COMMAND_SETTINGS = {
    "ADMIN_TOKEN", "NODE_TOKEN", "INGEST_TOKEN", "DATABASE_URL", "SECRETS_KEY", "SECRETS_KEY_FILE",
    "REDIS_URL", "PARTNER_BASE_URLS", "META_BASE_URL", "GA4_BASE_URL", "TIKTOK_BASE_URL", "NO_DEMO",
    "CONTROL_PLANE_LISTEN", "INGEST_LISTEN", "STATS_LISTEN", "METRICS_ADDR", "DEMO_PARTNER_LISTEN",
    "DEMO_EVENTS_PER_SECOND", "STATS_URL", "LISTEN_ADDR",
}


def one_command(readme, binary):
    """The README's first command, as written: the built binary, no flag,
    an empty directory, default ports."""
    workdir = tempfile.mkdtemp(prefix="eventconnectors-")
    banner_path = os.path.join(workdir, "banner.txt")
    process = start_one_command(binary, workdir, banner_path, 1)
    try:
        check(wait_until_ready(50061), "the one command's node is ready")
        connectors = demo_connectors()
        names = [name for name, _ in connectors]
        check(
            sorted(names) == ["Meta pixel (demo)", "Orders webhook (demo)"],
            f"the demo created its two connectors ({names})",
        )
        shown, missing = demo_statistics_show_everything(dict(connectors))
        check(shown, f"within a minute the demo's statistics show everything (missing: {missing})")
        text = open(banner_path).read()
        check(
            all(f'"connector_id": "{i}"' in text for _, i in connectors)
            and "StatsService/GetConnectorStats" in text
            and "dev-admin-token" in text,
            "start-up prints the tokens and each demo connector's grpcurl command",
        )
        connectors_walkthrough(readme, 50051)
        ingest_walkthrough(readme, 50061)
        keys_walkthrough(readme, 50051, 50061)
        stats_walkthrough(readme, dict(connectors).get("Orders webhook (demo)", ""))
    finally:
        stop(process, "the one command")
    check(os.path.exists(os.path.join(workdir, "control-plane.db")), "embedded SQLite store created by default")

    process = start_one_command(binary, workdir, banner_path, 2)
    try:
        again = demo_connectors()
        check(again == connectors, f"a second start finds the demo connectors, adds none ({again})")
    finally:
        stop(process, "the one command, started again")


def separate_services(readme, control_plane, data_plane):
    """The control plane and a node, each its own binary, started with the
    environment the README gives them, on free ports."""
    port = free_port()
    workdir = tempfile.mkdtemp(prefix="control-plane-")
    env = dict(os.environ, ADMIN_TOKEN=ADMIN_TOKEN, NODE_TOKEN=NODE_TOKEN, LISTEN_ADDR=f"127.0.0.1:{port}")
    env.pop("DATABASE_URL", None)
    env.pop("SECRETS_KEY", None)
    env.pop("STATS_URL", None)
    process = subprocess.Popen([control_plane], cwd=workdir, env=env, stdout=sys.stderr, stderr=sys.stderr)
    try:
        wait_until_serving(port, process)
        check(os.path.exists(os.path.join(workdir, "control-plane.key")), "secrets key file created by default")
        connectors_walkthrough(readme, port)
        data_plane_walkthrough(data_plane, readme, port)
    finally:
        stop(process, "control plane")


def main():
    readme = sys.argv[1]
    one, control_plane, data_plane = (os.path.abspath(binary) for binary in sys.argv[2:5])
    one_command(readme, one)
    separate_services(readme, control_plane, data_plane)
    print(f"{PASSED} passed, {FAILED} failed")
    return 1 if FAILED else 0


if __name__ == "__main__":
    sys.exit(main())
