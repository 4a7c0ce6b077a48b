"""Static checks of docker/ and collector/otelcol/ (no Docker engine needed).

The compose file, the Dockerfiles, the OpenTelemetry Collector config and the Collector Builder
manifest must agree with each other: build contexts and COPY sources exist, images are pinned,
host ports are unique, endpoints name real services and ports, credentials match on both sides,
and every collector module belongs to one release.
"""

from __future__ import annotations

import fnmatch
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
DOCKER = ROOT / "docker"
COMPOSE = DOCKER / "compose.yaml"
OTELCOL = ROOT / "collector" / "otelcol"
MANIFEST = OTELCOL / "builder-config.yaml"
CONFIG = OTELCOL / "config.yaml"
BUILD_SH = OTELCOL / "build.sh"

DOCKERFILE_KEYWORDS = {
    "FROM", "RUN", "CMD", "LABEL", "MAINTAINER", "EXPOSE", "ENV", "ADD", "COPY", "ENTRYPOINT",
    "VOLUME", "USER", "WORKDIR", "ARG", "ONBUILD", "STOPSIGNAL", "HEALTHCHECK", "SHELL",
}  # fmt: skip
COMPOSE_VAR = re.compile(r"\$\{(\w+)(?::?-([^}]*))?\}")
SEMVER = re.compile(r"^v(\d+)\.(\d+)\.(\d+)$")


# --- helpers -----------------------------------------------------------------------------------


def resolve(value: Any) -> str:
    """A compose value with ``${VAR:-default}`` replaced by its default ('' when none)."""
    return COMPOSE_VAR.sub(lambda m: m.group(2) or "", str(value)).replace("$$", "$")


def env_of(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {str(k): str(v) for k, v in env.items()}


def port_pairs(service: dict[str, Any]) -> list[tuple[str | None, str]]:
    """(host port or None, container port) for each ``ports`` entry of a service."""
    pairs: list[tuple[str | None, str]] = []
    for entry in service.get("ports") or []:
        if isinstance(entry, dict):
            published = entry.get("published")
            pairs.append((str(published) if published else None, str(entry["target"])))
            continue
        parts = str(entry).split("/")[0].split(":")
        pairs.append((parts[-2] if len(parts) >= 2 else None, parts[-1]))
    return pairs


def container_ports(service: dict[str, Any]) -> set[str]:
    ports = {c for _, c in port_pairs(service)}
    ports |= {str(p).split("/")[0] for p in service.get("expose") or []}
    return ports


def dockerfile_instructions(path: Path) -> list[tuple[str, str]]:
    """(KEYWORD, arguments) per instruction: comments dropped, continuation lines joined."""
    out: list[tuple[str, str]] = []
    current = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not current and (not line or line.startswith("#")):
            continue
        if current and line.startswith("#"):
            continue
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        current += line
        keyword, _, args = current.strip().partition(" ")
        out.append((keyword.upper(), args.strip()))
        current = ""
    assert not current, f"{path}: the last instruction ends with a line continuation"
    return out


def copy_sources(args: str) -> list[str] | None:
    """The source paths of a COPY/ADD (None when copied from another stage or image)."""
    words = args.split()
    flags = [w for w in words if w.startswith("--")]
    if any(f.startswith("--from=") for f in flags):
        return None
    rest = [w for w in words if not w.startswith("--")]
    if rest and rest[0].startswith("["):
        rest = [w.strip('[]",') for w in rest]
    return rest[:-1]


def dockerignore_patterns(dockerfile: Path, context: Path) -> list[str]:
    for candidate in (Path(f"{dockerfile}.dockerignore"), context / ".dockerignore"):
        if candidate.exists():
            return [
                ln.strip()
                for ln in candidate.read_text().splitlines()
                if ln.strip() and not ln.strip().startswith("#")
            ]
    return []


def ignored(rel: str, patterns: list[str]) -> bool:
    """Docker's .dockerignore rules, simplified: last matching pattern wins, ``!`` re-includes."""
    rel = rel.rstrip("/")
    result = False
    for pat in patterns:
        negate = pat.startswith("!")
        pat = pat.lstrip("!").strip("/")
        if fnmatch.fnmatch(rel, pat) or rel.startswith(pat + "/"):
            result = not negate
    return result


def image_tag(image: str) -> str | None:
    name = image.split("@")[0]
    last = name.rsplit("/", 1)[-1]
    return last.split(":", 1)[1] if ":" in last else None


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(data, dict) and isinstance(data.get("services"), dict)
    return data


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]


def builds(services: dict[str, dict[str, Any]]) -> list[tuple[str, Path, Path]]:
    """(service, context dir, Dockerfile) for each service with a build section."""
    out = []
    for name, svc in services.items():
        build = svc.get("build")
        if build is None:
            continue
        if isinstance(build, str):
            build = {"context": build}
        context = (COMPOSE.parent / build.get("context", ".")).resolve()
        out.append((name, context, context / build.get("dockerfile", "Dockerfile")))
    return out


def dockerfiles() -> list[Path]:
    return sorted(p for p in DOCKER.iterdir() if p.name.endswith("Dockerfile"))


# --- compose -----------------------------------------------------------------------------------


def test_compose_has_the_stack(services: dict[str, dict[str, Any]]) -> None:
    assert {"monetdb", "neo4j", "otelcol", "dlprov-collector"} <= set(services)
    for name, svc in services.items():
        assert svc.get("image") or svc.get("build"), f"service {name} has neither image nor build"


def test_build_contexts_and_dockerfiles_exist(services: dict[str, dict[str, Any]]) -> None:
    found = builds(services)
    assert {name for name, _, _ in found} >= {"otelcol", "dlprov-collector"}
    for name, context, dockerfile in found:
        assert context.is_dir(), f"{name}: build context {context} does not exist"
        assert dockerfile.is_file(), f"{name}: Dockerfile {dockerfile} does not exist"
        assert dockerfile.parent == DOCKER, f"{name}: {dockerfile} is not under docker/"


def test_images_are_pinned(services: dict[str, dict[str, Any]]) -> None:
    images = [svc["image"] for svc in services.values() if "image" in svc]
    for path in dockerfiles():
        stages: set[str] = set()
        for kw, args in dockerfile_instructions(path):
            if kw != "FROM":
                continue
            words = [w for w in args.split() if not w.startswith("--")]
            if words[0].lower() not in stages:
                images.append(words[0])
            if len(words) == 3 and words[1].upper() == "AS":
                stages.add(words[2].lower())
    assert images
    for image in images:
        tag = image_tag(resolve(image))
        assert tag or "@sha256:" in image, f"image {image} has no tag"
        if tag:
            assert tag != "latest" and not tag.endswith("-latest"), f"image {image} is not pinned"


def test_published_ports_are_unique(services: dict[str, dict[str, Any]]) -> None:
    published = [
        (name, host) for name, svc in services.items() for host, _ in port_pairs(svc) if host
    ]
    hosts = [h for _, h in published]
    dupes = {h for h in hosts if hosts.count(h) > 1}
    assert not dupes, f"host ports published twice: {sorted(dupes)} in {published}"
    assert {"4317", "4318", "14318", "7474", "7687"} <= set(hosts)


def test_otelcol_forwards_to_the_dlprov_collector(services: dict[str, dict[str, Any]]) -> None:
    otel_env = env_of(services["otelcol"])
    url = urlsplit(resolve(otel_env["DLPROV_COLLECTOR_ENDPOINT"]))
    assert url.scheme == "http"
    assert url.hostname in services, f"{url.hostname} is not a compose service"
    assert url.hostname == "dlprov-collector"
    target = services["dlprov-collector"]
    assert str(url.port) in container_ports(target), (
        f"otelcol forwards to port {url.port}; dlprov-collector has {container_ports(target)}"
    )
    # The collector's Dockerfile exposes that port too.
    exposed = {
        p.split("/")[0]
        for kw, args in dockerfile_instructions(DOCKER / "Dockerfile")
        if kw == "EXPOSE"
        for p in args.split()
    }
    assert str(url.port) in exposed
    # The otelcol image's default endpoint is the same URL.
    image_env = " ".join(
        args for kw, args in dockerfile_instructions(DOCKER / "otelcol.Dockerfile") if kw == "ENV"
    )
    assert (
        f"DLPROV_COLLECTOR_ENDPOINT={resolve(otel_env['DLPROV_COLLECTOR_ENDPOINT'])}" in image_env
    )
    # The token is passed to both sides from the same variable.
    token = env_of(target).get("DLPROV_TOKEN")
    assert token is not None and otel_env.get("DLPROV_TOKEN") == token


def test_otelcol_environment_is_used_by_the_config(services: dict[str, dict[str, Any]]) -> None:
    text = CONFIG.read_text()
    for key in env_of(services["otelcol"]):
        assert f"${{env:{key}" in text, f"compose sets {key}, which config.yaml never reads"
    grpc, http = (
        env_of(services["otelcol"])[k] for k in ("OTELCOL_GRPC_PORT", "OTELCOL_HTTP_PORT")
    )
    assert {grpc, http} <= container_ports(services["otelcol"])


def test_monetdb_credentials_match_the_store_url(services: dict[str, dict[str, Any]]) -> None:
    mdb = env_of(services["monetdb"])
    store_urls = [
        v for svc in services.values() for v in env_of(svc).values() if v.startswith("monetdb://")
    ]
    store_urls += [
        str(a)
        for svc in services.values()
        for a in (svc.get("command") or [])
        if "monetdb://" in str(a)
    ]
    assert store_urls, "no service uses the MonetDB server"
    for raw in store_urls:
        url = urlsplit(resolve(raw[raw.index("monetdb://") :].split()[0]))
        assert url.hostname == "monetdb" and url.hostname in services
        assert str(url.port) in container_ports(services["monetdb"])
        assert url.username == "monetdb"  # the admin user of the monetdb/monetdb image
        assert raw.count("${") == 0 or url.password is not None
        # Same password expression on both sides (same variable, same default).
        pw_expr = raw.split("://", 1)[1].split("@", 1)[0].split(":", 1)[1]
        assert pw_expr == mdb["MDB_DB_ADMIN_PASS"], (pw_expr, mdb["MDB_DB_ADMIN_PASS"])
        assert url.path.lstrip("/") in mdb["MDB_CREATE_DBS"].split(",")


def test_neo4j_credentials_match_their_users(services: dict[str, dict[str, Any]]) -> None:
    user, _, password = env_of(services["neo4j"])["NEO4J_AUTH"].partition("/")
    assert (user, resolve(password)) == ("neo4j", "dlprovdlprov")
    users = {n: env_of(s) for n, s in services.items() if n != "neo4j"}
    users = {n: e for n, e in users.items() if any(k.startswith("NEO4J_") for k in e)}
    assert users, "no service is configured for Neo4j"
    for name, env in users.items():
        assert env.get("NEO4J_USERNAME") == user, name
        assert env.get("NEO4J_PASSWORD") == password, name
        uri = urlsplit(env["NEO4J_URI"])
        assert uri.hostname == "neo4j" and str(uri.port) in container_ports(services["neo4j"])


def test_volumes_are_declared(compose: dict[str, Any]) -> None:
    declared = set(compose.get("volumes") or {})
    for name, svc in compose["services"].items():
        for vol in svc.get("volumes") or []:
            source = str(vol).split(":")[0]
            if not source.startswith((".", "/", "~")):
                assert source in declared, f"{name} mounts undeclared volume {source}"
    assert "otelcol-queue" in declared
    queue_mounts = [str(v) for v in compose["services"]["otelcol"].get("volumes") or []]
    storage = env_of(compose["services"]["otelcol"])["OTELCOL_STORAGE_DIR"]
    assert any(storage.startswith(m.split(":")[1]) for m in queue_mounts), (
        "the persistent queue directory is not on a volume"
    )


# --- Dockerfiles -------------------------------------------------------------------------------


@pytest.mark.parametrize("path", dockerfiles(), ids=lambda p: p.name)
def test_dockerfile_parses_and_copies_existing_files(path: Path) -> None:
    instructions = dockerfile_instructions(path)
    keywords = [kw for kw, _ in instructions]
    assert "FROM" in keywords
    assert all(kw == "ARG" for kw in keywords[: keywords.index("FROM")]), "FROM must come first"
    unknown = sorted(set(keywords) - DOCKERFILE_KEYWORDS)
    assert not unknown, f"unknown instructions {unknown}"
    patterns = dockerignore_patterns(path, ROOT)
    copied = 0
    for kw, args in instructions:
        if kw not in ("COPY", "ADD"):
            continue
        sources = copy_sources(args)
        if sources is None:
            continue
        assert sources, f"{kw} {args}: no source"
        for src in sources:
            matches = (
                list(ROOT.glob(src.rstrip("/"))) if any(c in src for c in "*?[") else [ROOT / src]
            )
            assert matches and all(m.exists() for m in matches), f"{kw} {src}: not in the repo"
            assert not ignored(src, patterns), f"{kw} {src}: excluded by the .dockerignore"
            copied += 1
    assert copied, "the image copies nothing from the repository"


def test_dlprov_dockerfile_installs_through_bootstrap() -> None:
    instructions = dockerfile_instructions(DOCKER / "Dockerfile")
    assert instructions[0][0] == "FROM" and instructions[0][1].startswith("python:3.11-slim")
    runs = " ".join(args for kw, args in instructions if kw == "RUN")
    assert "scripts/bootstrap.sh" in runs and "graphviz" in runs
    copied = " ".join(args for kw, args in instructions if kw == "COPY")
    for needed in ("scripts/", "pyproject.toml", "dlprov_otel/"):
        assert needed in copied
    cmd = " ".join(args for kw, args in instructions if kw == "CMD")
    assert "dlprov collector serve" in cmd and "0.0.0.0" in cmd


# --- OpenTelemetry Collector -------------------------------------------------------------------


def ocb_version() -> str:
    m = re.search(r"^OCB_VERSION=(v[\d.]+)", BUILD_SH.read_text(), re.M)
    assert m, "build.sh does not pin OCB_VERSION"
    return m.group(1)


def test_manifest_modules_are_one_release() -> None:
    manifest = yaml.safe_load(MANIFEST.read_text())
    ocb = SEMVER.match(ocb_version())
    assert ocb and ocb.group(1) == "0"
    minor = int(ocb.group(2))
    modules: list[tuple[str, str]] = []
    for section in (
        "receivers",
        "processors",
        "exporters",
        "extensions",
        "connectors",
        "providers",
    ):
        for entry in manifest.get(section) or []:
            module, version = entry["gomod"].split()
            modules.append((module, version))
    assert len(modules) >= 7
    for module, version in modules:
        m = SEMVER.match(version)
        assert m, f"{module} {version} is not an exact version"
        major, mod_minor = int(m.group(1)), int(m.group(2))
        if module.startswith("go.opentelemetry.io/collector"):
            if major == 0:
                assert version == ocb_version(), f"{module} {version} != builder {ocb_version()}"
            else:  # the stable v1 modules are released together with v0.(x+94)
                assert (major, mod_minor + 94) == (1, minor), (
                    f"{module} {version} vs {ocb_version()}"
                )
        elif module.startswith("github.com/open-telemetry/opentelemetry-collector-contrib/"):
            assert (major, mod_minor) == (0, minor), f"{module} {version} vs {ocb_version()}"
    names = {module.rsplit("/", 1)[-1] for module, _ in modules}
    assert {
        "otlpreceiver", "memorylimiterprocessor", "batchprocessor", "otlphttpexporter",
        "debugexporter", "filestorage", "healthcheckextension", "envprovider",
    } <= names  # fmt: skip
    out = Path(manifest["dist"]["output_path"])
    assert (OTELCOL / out / manifest["dist"]["name"]).resolve() == (
        OTELCOL / "build" / "otelcol-dlprov"
    ).resolve()


def test_dockerfile_builds_with_the_pinned_builder() -> None:
    text = (DOCKER / "otelcol.Dockerfile").read_text()
    m = re.search(r"^ARG OCB_VERSION=(\S+)", text, re.M)
    assert m and m.group(1) == ocb_version()
    assert "collector/otelcol/builder-config.yaml" in text
    assert "collector/otelcol/config.yaml" in text


def test_otelcol_config_pipeline() -> None:
    cfg = yaml.safe_load(CONFIG.read_text())
    traces = cfg["service"]["pipelines"]["traces"]
    assert traces["receivers"] == ["otlp"]
    assert traces["processors"][0] == "memory_limiter" and "batch" in traces["processors"]
    (exporter,) = traces["exporters"]
    assert exporter.split("/")[0] in ("otlp_http", "otlphttp")
    exp = cfg["exporters"][exporter]
    assert exp["endpoint"] == "${env:DLPROV_COLLECTOR_ENDPOINT:-http://127.0.0.1:14318}"
    assert "${env:DLPROV_TOKEN" in exp["headers"]["Authorization"]
    storage = exp["sending_queue"]["storage"]
    assert storage in cfg["extensions"] and storage in cfg["service"]["extensions"]
    assert storage.split("/")[0] == "file_storage"
    assert "${env:OTELCOL_STORAGE_DIR" in cfg["extensions"][storage]["directory"]
    retry = exp["retry_on_failure"]
    assert retry.get("enabled", True)
    elapsed = resolve(str(retry["max_elapsed_time"]).replace("env:", ""))
    m = re.fullmatch(r"(\d+)([hms])", elapsed)
    assert m, f"max_elapsed_time {elapsed} is not a duration"
    seconds = int(m.group(1)) * {"h": 3600, "m": 60, "s": 1}[m.group(2)]
    assert seconds == 0 or seconds >= 24 * 3600, f"max_elapsed_time {elapsed} is too short"
    health = [e for e in cfg["service"]["extensions"] if e.split("/")[0] == "health_check"]
    assert health and "${env:OTELCOL_HEALTH_PORT" in cfg["extensions"][health[0]]["endpoint"]
    protocols = cfg["receivers"]["otlp"]["protocols"]
    assert "${env:OTELCOL_GRPC_PORT:-4317}" in protocols["grpc"]["endpoint"]
    assert "${env:OTELCOL_HTTP_PORT:-4318}" in protocols["http"]["endpoint"]
