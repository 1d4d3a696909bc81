"""The production-like stack (docker-compose.yml, Dockerfile, deploy/) is wired the way it claims.

No Docker engine is needed: docker-compose.yml is parsed and validated with compose-spec
(``PyCompose.from_yaml`` then ``validate*``). compose-spec does not interpolate variables, so
this module applies Compose's own rules (``${VAR}``, ``${VAR:?err}``, ``${VAR:-default}``,
``$$``) first, with the environment an operator would export.
"""

from __future__ import annotations

import csv
import http.server
import json
import re
import shlex
import shutil
import subprocess
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from compose_spec import PyCompose

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
REALM_FILE = ROOT / "deploy" / "keycloak" / "lead-realm.json"
PROVIDERS_FILE = ROOT / "deploy" / "oidc-providers.json"
ROLE_MAPPING = ROOT / "policies" / "role_mapping.csv"

# What an operator exports (deploy/README.md); none of these values may end up with defaults.
OPERATOR_ENV = {
    "POSTGRES_PASSWORD": "0123456789abcdef0123456789abcdef",
    "PORTAL_SECRET_KEY": "s" * 48,
    "PORTAL_OIDC_KEYCLOAK_SECRET": "client-secret-from-keycloak",
    "KC_BOOTSTRAP_ADMIN_USERNAME": "admin",
    "KC_BOOTSTRAP_ADMIN_PASSWORD": "bootstrap-admin-password",
}

# The groups the brief names, used when policies/role_mapping.csv does not exist yet.
EXPECTED_GROUPS = {
    "lead-case-managers",
    "lead-counselors",
    "lead-clinicians",
    "lead-housing-navigators",
    "lead-police",
    "lead-prosecutors",
    "lead-probation",
    "lead-court-liaisons",
    "lead-defenders",
    "lead-compliance",
    "lead-org-admins",
}

_VARIABLE = re.compile(
    r"\$(?:(?P<escaped>\$)"
    r"|\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:\?|\?|:-|-)(?P<arg>[^}]*))?\}"
    r"|(?P<named>[A-Za-z_][A-Za-z0-9_]*))"
)


class MissingVariableError(LookupError):
    """A ``${VAR:?message}`` (or ``${VAR?message}``) variable is unset: compose would refuse."""


def interpolate(text: str, env: Mapping[str, str]) -> str:
    """Substitute variables the way `docker compose` does (the subset Compose files use)."""

    def substitute(match: re.Match[str]) -> str:
        if match["escaped"]:
            return "$"
        name = match["braced"] or match["named"]
        value = env.get(name)
        op, arg = match["op"], match["arg"] or ""
        if op in (":?", "?") and (value is None or (op == ":?" and value == "")):
            raise MissingVariableError(f"{name}: {arg}")
        if op in (":-", "-") and (value is None or (op == ":-" and value == "")):
            return arg
        return value or ""

    return _VARIABLE.sub(substitute, text)


def load_compose(env: Mapping[str, str] = OPERATOR_ENV) -> PyCompose:
    compose = PyCompose.from_yaml(interpolate(COMPOSE_FILE.read_text(), env))
    compose.validate()
    return compose


@pytest.fixture(scope="module")
def compose() -> PyCompose:
    return load_compose()


@pytest.fixture(scope="module")
def raw() -> dict[str, Any]:
    """The interpolated file as plain data (lists stay lists, unlike the pydantic models)."""
    return load_compose().to_dict()


def environment(raw: dict[str, Any], service: str) -> dict[str, str]:
    env = raw["services"][service].get("environment", {})
    if isinstance(env, list):  # the KEY=VALUE list form
        env = dict(item.split("=", 1) for item in env)
    return {key: "" if value is None else str(value) for key, value in env.items()}


def healthcheck_command(raw: dict[str, Any], service: str) -> str:
    test = raw["services"][service]["healthcheck"]["test"]
    return test if isinstance(test, str) else " ".join(test)


# ── docker-compose.yml ────────────────────────────────────────────────────────


def test_compose_file_validates_and_has_the_three_services(
    compose: PyCompose, raw: dict[str, Any]
) -> None:
    compose.validate_volumes()
    compose.validate_secrets()
    assert {"db", "keycloak", "portal"} <= set(compose.service_names())
    # The database outlives its container: its data directory is a declared named volume.
    volume = next(v for v in raw["services"]["db"]["volumes"]
                  if v.endswith(":/var/lib/postgresql/data"))
    assert compose.volumes is not None and volume.split(":")[0] in compose.volumes


@pytest.mark.parametrize("variable", sorted(OPERATOR_ENV))
def test_compose_refuses_to_start_without_each_secret(variable: str) -> None:
    env = {key: value for key, value in OPERATOR_ENV.items() if key != variable}
    with pytest.raises(MissingVariableError, match=variable):
        load_compose(env)


def test_no_secret_variable_has_a_default() -> None:
    defaults = re.findall(r"\$\{(\w+):?-", COMPOSE_FILE.read_text())
    assert not set(defaults) & set(OPERATOR_ENV), defaults


def test_every_service_others_wait_for_has_a_healthcheck(raw: dict[str, Any]) -> None:
    """Waiting on a healthcheck that does not exist would hang the stack; services built from
    the Dockerfile get its HEALTHCHECK (tested below) unless they disable it."""
    services = raw["services"]
    awaited = {name for service in services.values()
               for name, dependency in (service.get("depends_on") or {}).items()
               if dependency.get("condition") == "service_healthy"}
    assert awaited
    for name in awaited:
        check = services[name].get("healthcheck") or {}
        assert not check.get("disable"), name
        assert check.get("test") or "build" in services[name], name


def test_portal_waits_for_healthy_db_and_keycloak(raw: dict[str, Any]) -> None:
    depends_on = raw["services"]["portal"]["depends_on"]
    assert isinstance(depends_on, dict), "a plain list would not wait for health"
    assert depends_on["db"]["condition"] == "service_healthy"
    assert depends_on["keycloak"]["condition"] == "service_healthy"
    # Waiting on a healthcheck that does not exist would hang the stack.
    assert raw["services"]["db"].get("healthcheck")
    assert raw["services"]["keycloak"].get("healthcheck")


def test_portal_keys_are_compose_secrets_kept_out_of_git(
    compose: PyCompose, raw: dict[str, Any]
) -> None:
    env = environment(raw, "portal")
    secrets = raw["services"]["portal"]["secrets"]
    mounted = {s if isinstance(s, str) else s["source"] for s in secrets}
    assert mounted == {"audit_signing_key", "audit_retired_keys", "data_key"}
    assert env["PORTAL_AUDIT_SIGNING_KEY_FILE"] == "/run/secrets/audit_signing_key"
    # The public keys of rotated signing keys, so that older checkpoints still verify; the
    # file is the one `portal keys generate-audit-key` makes next to the key.
    assert env["PORTAL_AUDIT_RETIRED_KEYS_FILE"] == "/run/secrets/audit_retired_keys"
    assert compose.secrets is not None
    assert compose.secrets["audit_retired_keys"].file == \
        f"{compose.secrets['audit_signing_key'].file}.retired.jsonl"
    assert env["PORTAL_DATA_KEY_FILE"] == "/run/secrets/data_key"
    assert compose.secrets is not None
    for name in mounted:
        source = compose.secrets[name].file
        assert source is not None
        assert (ROOT / source).parent == ROOT / "deploy" / "secrets"
    ignore = (ROOT / "deploy" / "secrets" / ".gitignore").read_text().split()
    assert ignore == ["*", "!.gitignore"]


def test_the_audit_checkpointer_signs_with_the_portals_settings_and_keys(
        raw: dict[str, Any]) -> None:
    checkpointer, portal = raw["services"]["audit-checkpointer"], raw["services"]["portal"]
    assert checkpointer["build"] == portal["build"]
    assert environment(raw, "audit-checkpointer") == environment(raw, "portal")
    assert checkpointer["secrets"] == portal["secrets"]
    assert checkpointer["depends_on"]["portal"]["condition"] == "service_healthy"
    # The command is one the portal's CLI accepts.
    from click.testing import CliRunner

    from portal.cli import main

    command = checkpointer["command"]
    assert command[0] == "portal"
    usage = CliRunner().invoke(main, [*command[1:], "--help"])
    assert usage.exit_code == 0, usage.output
    assert int(command[command.index("--every") + 1]) > 0


def test_checkpoints_are_exported_to_a_volume_the_database_cannot_write(
        compose: PyCompose, raw: dict[str, Any]) -> None:
    services = raw["services"]
    exporter, portal = services["audit-exporter"], services["portal"]
    assert exporter["build"] == portal["build"]
    assert environment(raw, "audit-exporter") == environment(raw, "portal")
    assert exporter["secrets"] == portal["secrets"]
    assert exporter["depends_on"]["portal"]["condition"] == "service_healthy"
    [mount] = exporter["volumes"]
    volume, target = mount.split(":")[:2]
    assert compose.volumes is not None and volume in compose.volumes
    # No other service (the database above all) mounts the volume, nor anything under it.
    for name, service in services.items():
        if name != "audit-exporter":
            assert not any(str(v).split(":")[0] == volume for v in service.get("volumes", [])), \
                name
    command = exporter["command"]
    assert command[:4] == ["portal", "audit", "checkpoints", "export"]
    assert Path(command[-1]).parent == Path(target)
    assert int(command[command.index("--every") + 1]) > 0
    from click.testing import CliRunner

    from portal.cli import main

    usage = CliRunner().invoke(main, [*command[1:-1], "--help"])
    assert usage.exit_code == 0, usage.output
    # The image makes the mount point owned by its user, so that a new volume is writable.
    dockerfile = DOCKERFILE.read_text()
    assert f"mkdir -p /app/var {target}" in dockerfile
    assert f"chown portal:portal /app/var {target}" in dockerfile


def test_portal_environment_passes_the_production_settings_checks(raw: dict[str, Any]) -> None:
    from portal.config import Settings

    settings = Settings.from_env(environment(raw, "portal"))
    assert settings.is_production
    assert not settings.is_sqlite
    # The database is the stack's own, reached by service name, with the operator's password.
    url = urlsplit(settings.database_url)
    assert url.hostname in raw["services"] and url.hostname != "portal"
    assert url.password == OPERATOR_ENV["POSTGRES_PASSWORD"]
    assert "ports" not in raw["services"][url.hostname]  # not published on the host
    # The published port is the one the image serves on, and the base URL uses it.
    exposed = [args for keyword, args in dockerfile_instructions() if keyword == "EXPOSE"]
    assert raw["services"]["portal"]["ports"] == [f"{exposed[0]}:{exposed[0]}"]
    assert urlsplit(settings.base_url).port == int(exposed[0])


class _FakeManagementPort(http.server.BaseHTTPRequestHandler):
    """Answers /health/ready like Keycloak's management interface, with a chosen status."""

    protocol_version = "HTTP/1.1"
    status = 200

    def do_GET(self) -> None:
        body = b'{"status": "UP"}' if self.status == 200 else b'{"status": "DOWN"}'
        self.send_response(self.status if self.path == "/health/ready" else 404)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


class _QuietServer(http.server.ThreadingHTTPServer):
    def handle_error(self, request: object, client_address: object) -> None:
        pass  # the probe hangs up after the status line; that is expected


@pytest.mark.parametrize(("status", "healthy"), [(200, True), (503, False), (404, False)])
def test_keycloak_healthcheck_is_healthy_only_on_a_200(
    raw: dict[str, Any], status: int, healthy: bool
) -> None:
    bash = shutil.which("bash")
    assert bash is not None, "bash is needed to run the Keycloak healthcheck"
    # Keycloak serves /health/ready only when asked to.
    assert environment(raw, "keycloak")["KC_HEALTH_ENABLED"] == "true"
    test = raw["services"]["keycloak"]["healthcheck"]["test"]
    assert test[:3] == ["CMD", "bash", "-c"]
    handler = type("Handler", (_FakeManagementPort,), {"status": status})
    with _QuietServer(("127.0.0.1", 0), handler) as server:
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            # The same script, pointed at this test's port instead of Keycloak's 9000.
            script = test[3].replace("/127.0.0.1/9000", f"/127.0.0.1/{server.server_port}")
            assert script != test[3]
            result = subprocess.run(
                [bash, "-c", script], capture_output=True, text=True, timeout=10, check=False
            )
        finally:
            server.shutdown()
            thread.join()
    assert (result.returncode == 0) is healthy, result.stderr


# ── deploy/oidc-providers.json ─────────────────────────────────────────────────


def test_portal_oidc_provider_points_at_the_keycloak_realm(raw: dict[str, Any]) -> None:
    env = environment(raw, "portal")
    assert env["PORTAL_OIDC_PROVIDERS"] == "/app/" + PROVIDERS_FILE.relative_to(ROOT).as_posix()
    # Keycloak imports the realm file at start-up.
    keycloak = raw["services"]["keycloak"]
    assert "--import-realm" in keycloak["command"]
    assert (f"./{REALM_FILE.parent.relative_to(ROOT).as_posix()}:/opt/keycloak/data/import:ro"
            in keycloak["volumes"])
    providers = json.loads(PROVIDERS_FILE.read_text())
    assert [p["id"] for p in providers] == ["keycloak"]
    provider = providers[0]
    realm = json.loads(REALM_FILE.read_text())
    # The issuer is what Keycloak advertises and puts in tokens (KC_HOSTNAME), over https, on
    # the port published for browsers.
    kc_env = environment(raw, "keycloak")
    assert provider["issuer"] == f"{kc_env['KC_HOSTNAME']}/realms/{realm['realm']}"
    issuer = urlsplit(provider["issuer"])
    assert issuer.scheme == "https"
    assert keycloak["ports"] == [f"{issuer.port}:{kc_env['KC_HTTPS_PORT']}"]
    # The portal reaches Keycloak by service name, over https too; the back-channel URLs in
    # the discovery document follow that address (the issuer does not).
    internal = urlsplit(provider["discovery_url"])
    assert (internal.scheme, internal.hostname, internal.port, internal.path) == (
        "https", "keycloak", int(kc_env["KC_HTTPS_PORT"]), issuer.path)
    assert kc_env["KC_HOSTNAME_BACKCHANNEL_DYNAMIC"] == "true"
    assert provider["client_id"] in {client["clientId"] for client in realm["clients"]}
    assert provider["client_secret_env"] in env
    assert env[provider["client_secret_env"]] == OPERATOR_ENV["PORTAL_OIDC_KEYCLOAK_SECRET"]
    assert provider["groups_claim"] == "groups"
    assert provider["organization_claim"] == "organization"


def test_the_stacks_providers_pass_the_production_https_check(
        raw: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from dataclasses import replace

    from portal.auth.oidc import load_providers
    from portal.config import Settings, SettingsError

    env = environment(raw, "portal")
    monkeypatch.setenv("PORTAL_OIDC_KEYCLOAK_SECRET", env["PORTAL_OIDC_KEYCLOAK_SECRET"])
    settings = Settings.from_env({**env, "PORTAL_OIDC_PROVIDERS": str(PROVIDERS_FILE)})
    assert settings.is_production
    [provider] = load_providers(settings)
    assert provider.issuer.startswith("https://")
    assert provider.discovery_url and provider.discovery_url.startswith("https://")
    # The stack's former http address would stop the portal.
    entries = json.loads(PROVIDERS_FILE.read_text())
    entries[0]["discovery_url"] = "http://keycloak:8080/realms/lead"
    (tmp_path / "providers.json").write_text(json.dumps(entries))
    with pytest.raises(SettingsError, match="provider keycloak: discovery_url must be an https"):
        load_providers(replace(settings, oidc_providers_file=tmp_path / "providers.json"))


def _mounts(service: dict[str, Any]) -> dict[str, tuple[str, bool]]:
    """target -> (volume, read-only) for a service's named-volume mounts."""
    mounts = {}
    for entry in service.get("volumes", []):
        source, target, *mode = str(entry).split(":")
        mounts[target] = (source, mode == ["ro"])
    return mounts


def test_keycloak_serves_https_with_the_certificate_tls_init_makes(
        raw: dict[str, Any], compose: PyCompose, tmp_path: Path) -> None:
    from click.testing import CliRunner
    from cryptography import x509

    from portal.cli import main

    services = raw["services"]
    init, keycloak, portal = services["tls-init"], services["keycloak"], services["portal"]
    kc_env, portal_env = environment(raw, "keycloak"), environment(raw, "portal")
    assert init["build"] == portal["build"]
    command = init["command"]
    assert command[:3] == ["portal", "keys", "local-tls"]
    ca_dir = command[command.index("--ca-dir") + 1]
    server_dir = command[command.index("--server-dir") + 1]
    names = [arg for arg in command[3:] if arg not in ("--ca-dir", ca_dir, "--server-dir",
                                                        server_dir)]
    # Valid for the name browsers use (the issuer's) and the one the portal uses.
    provider = json.loads(PROVIDERS_FILE.read_text())[0]
    assert {urlsplit(provider["issuer"]).hostname,
            urlsplit(provider["discovery_url"]).hostname} <= set(names)
    # Keycloak and the portal start only after it; both mount what it wrote, read-only.
    for service in (keycloak, portal):
        assert service["depends_on"]["tls-init"]["condition"] == \
            "service_completed_successfully"
    init_mounts = _mounts(init)
    ca_volume, _ = init_mounts[ca_dir]
    server_volume, _ = init_mounts[server_dir]
    assert compose.volumes is not None
    assert {ca_volume, server_volume} <= set(compose.volumes)
    kc_tls = {target: volume for target, (volume, ro) in _mounts(keycloak).items() if ro}
    [kc_dir] = [target for target, volume in kc_tls.items() if volume == server_volume]
    [portal_ca_dir] = [target for target, (volume, ro) in _mounts(portal).items()
                       if volume == ca_volume and ro]
    # Keycloak's key is mounted by Keycloak alone (and the service that makes it).
    for name, service in services.items():
        if name not in ("tls-init", "keycloak"):
            assert server_volume not in {v for v, _ in _mounts(service).values()}, name
    # The image's user (with group 0, Keycloak's group) writes the files; the Dockerfile makes
    # the mount points its own so that the new volumes are writable.
    assert init["user"] == "10001:0"
    dockerfile = DOCKERFILE.read_text()
    for target in (ca_dir, server_dir):
        assert re.search(rf"mkdir -p [^\n]*{target}\b", dockerfile), target
        assert re.search(rf"chown portal:portal [^\n]*{target}\b", dockerfile), target
    # Run the service's own command into this test's directories, and check that the files
    # Keycloak and the portal are pointed at are the ones it makes and that they agree.
    local = {ca_dir: tmp_path / "ca", server_dir: tmp_path / "keycloak"}
    result = CliRunner().invoke(main, [*command[1:3], *(str(local.get(a, a))
                                                         for a in command[3:])])
    assert result.exit_code == 0, result.output

    def on_host(path: str, mount: str, volume_dir: str) -> Path:
        assert Path(path).parent == Path(mount), path
        return local[volume_dir] / Path(path).name

    cert = x509.load_pem_x509_certificate(
        on_host(kc_env["KC_HTTPS_CERTIFICATE_FILE"], kc_dir, server_dir).read_bytes())
    assert on_host(kc_env["KC_HTTPS_CERTIFICATE_KEY_FILE"], kc_dir, server_dir).exists()
    ca = x509.load_pem_x509_certificate(
        on_host(portal_env["PORTAL_OIDC_CA_FILE"], portal_ca_dir, ca_dir).read_bytes())
    cert.verify_directly_issued_by(ca)
    # HTTPS only; the management port (healthcheck, not published) stays plain http, which
    # is what the healthcheck speaks.
    assert kc_env["KC_HTTP_ENABLED"] == "false"
    assert kc_env["KC_HTTP_MANAGEMENT_SCHEME"] == "http"
    assert "/dev/tcp/127.0.0.1/9000" in healthcheck_command(raw, "keycloak")


# ── Dockerfile and .dockerignore ──────────────────────────────────────────────


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs with continuation lines joined and comments dropped."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for line in DOCKERFILE.read_text().splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        keyword, _, arguments = (pending + stripped).partition(" ")
        instructions.append((keyword.upper(), arguments.strip()))
        pending = ""
    return instructions


def exec_form(arguments: str) -> list[str]:
    return json.loads(arguments) if arguments.startswith("[") else ["sh", "-c", arguments]


def test_dockerfile_runs_unprivileged() -> None:
    users = [args for keyword, args in dockerfile_instructions() if keyword == "USER"]
    assert users, "the image would run as root"
    assert users[-1].split(":")[0] not in ("root", "0")


def test_dockerfile_healthcheck_polls_healthz() -> None:
    checks = [args for keyword, args in dockerfile_instructions() if keyword == "HEALTHCHECK"]
    assert len(checks) == 1
    assert "http://127.0.0.1:8000/healthz" in checks[0]
    assert "urllib" in checks[0]


def test_dockerfile_migrates_then_serves_with_workers() -> None:
    cmds = [args for keyword, args in dockerfile_instructions() if keyword == "CMD"]
    assert cmds, "no default command"
    command = exec_form(cmds[-1])
    assert command[:2] == ["sh", "-c"]
    script = command[2]
    upgrade, serve = script.find("portal db upgrade"), script.find("portal serve")
    assert 0 <= upgrade < serve, script
    assert "&&" in script[upgrade:serve], "serve must not start when the migration fails"
    serve_args = shlex.split(script[serve:])
    # Inside a container the server must listen beyond loopback to be reachable at all.
    assert serve_args[serve_args.index("--host") + 1] == "0.0.0.0"  # noqa: S104
    assert serve_args[serve_args.index("--port") + 1] == "8000"
    assert int(serve_args[serve_args.index("--workers") + 1]) > 1


def test_dockerignore_keeps_local_state_and_secrets_out_of_the_image() -> None:
    patterns = {
        line.strip().rstrip("/")
        for line in DOCKERIGNORE.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {".venv", "node_modules", "var", ".git", "deploy/secrets"} <= patterns
    # The image needs these at the top level next to portal/.
    for needed in ("portal", "templates", "migrations", "policies", "deploy", "pyproject.toml"):
        assert needed not in patterns


# ── deploy/keycloak/lead-realm.json ───────────────────────────────────────────


@pytest.fixture(scope="module")
def realm() -> dict[str, Any]:
    return json.loads(REALM_FILE.read_text())


@pytest.fixture(scope="module")
def portal_client(realm: dict[str, Any]) -> dict[str, Any]:
    clients = [client for client in realm["clients"] if client["clientId"] == "lead-portal"]
    assert len(clients) == 1
    return clients[0]


def test_realm_client_is_confidential_code_flow_with_pkce(
    realm: dict[str, Any], portal_client: dict[str, Any]
) -> None:
    assert realm["realm"] == "lead"
    assert realm["enabled"] is True
    assert realm.get("registrationAllowed") is not True
    assert portal_client["publicClient"] is False
    assert portal_client["clientAuthenticatorType"] == "client-secret"
    assert portal_client["standardFlowEnabled"] is True
    for other_flow in (
        "implicitFlowEnabled",
        "directAccessGrantsEnabled",
        "serviceAccountsEnabled",
    ):
        assert portal_client[other_flow] is False, other_flow
    assert portal_client["attributes"]["pkce.code.challenge.method"] == "S256"
    assert "change-me" in portal_client["description"]  # the placeholder is flagged as one


def test_realm_client_redirects_only_to_the_portal(
    raw: dict[str, Any], portal_client: dict[str, Any]
) -> None:
    base_url = environment(raw, "portal")["PORTAL_BASE_URL"]
    assert set(portal_client["redirectUris"]) == {
        f"{base_url}/auth/callback/*",
        f"{base_url}/auth/callback",
    }
    assert portal_client["attributes"]["post.logout.redirect.uris"] == f"{base_url}/*"
    assert "*" not in portal_client.get("webOrigins", [])


def mapper(client: dict[str, Any], kind: str, claim: str) -> dict[str, str]:
    found = [
        m["config"]
        for m in client["protocolMappers"]
        if m["protocolMapper"] == kind and m["config"].get("claim.name") == claim
    ]
    assert len(found) == 1, f"one {kind} for claim {claim!r}"
    return found[0]


@pytest.mark.parametrize(
    ("kind", "claim"),
    [
        ("oidc-group-membership-mapper", "groups"),
        ("oidc-usermodel-attribute-mapper", "organization"),
    ],
)
def test_realm_client_puts_claims_in_every_token(
    portal_client: dict[str, Any], kind: str, claim: str
) -> None:
    config = mapper(portal_client, kind, claim)
    for token in ("id.token.claim", "access.token.claim", "userinfo.token.claim"):
        assert config[token] == "true", token


def test_groups_claim_carries_bare_group_names(portal_client: dict[str, Any]) -> None:
    # role_mapping.csv names groups without a leading "/"; full paths would match nothing.
    assert mapper(portal_client, "oidc-group-membership-mapper", "groups")["full.path"] == "false"
    organization = mapper(portal_client, "oidc-usermodel-attribute-mapper", "organization")
    assert organization["user.attribute"] == "organization"


def mapped_groups() -> set[str]:
    if not ROLE_MAPPING.exists():
        return EXPECTED_GROUPS
    lines = [
        line
        for line in ROLE_MAPPING.read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    rows = list(csv.DictReader(lines))
    assert rows, f"{ROLE_MAPPING} has no rows"
    return {row["group"].strip() for row in rows}


def test_realm_defines_every_mapped_group(realm: dict[str, Any]) -> None:
    defined = {group["name"] for group in realm["groups"]}
    missing = mapped_groups() - defined
    assert not missing, f"groups in the role mapping but not in the realm: {sorted(missing)}"


def test_realm_example_users_must_change_their_passwords(realm: dict[str, Any]) -> None:
    defined = {group["path"] for group in realm["groups"]}
    users = realm["users"]
    assert len(users) >= 2
    for user in users:
        assert user["requiredActions"] == ["UPDATE_PASSWORD"], user["username"]
        assert all(c["temporary"] is True for c in user["credentials"]), user["username"]
        assert user["attributes"]["organization"] == ["harbor-lead"], user["username"]
        assert set(user["groups"]) <= defined, user["username"]
    memberships = {path for user in users for path in user["groups"]}
    assert {"/lead-case-managers", "/lead-compliance"} <= memberships


def test_realm_lets_only_administrators_set_a_users_organization(realm: dict[str, Any]) -> None:
    # Keycloak drops attributes the user profile does not declare; a user who could edit their
    # own organization could read another agency's records.
    (component,) = realm["components"]["org.keycloak.userprofile.UserProfileProvider"]
    (profile_json,) = component["config"]["kc.user.profile.config"]
    attributes = {a["name"]: a for a in json.loads(profile_json)["attributes"]}
    assert {"username", "email", "firstName", "lastName"} <= set(attributes)
    assert attributes["organization"]["permissions"]["edit"] == ["admin"]
