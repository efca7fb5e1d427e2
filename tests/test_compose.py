"""The container setup, checked without Docker: docker-compose.yml, .env.example, Dockerfile,
.dockerignore.

Docker cannot run where the suite runs, so these tests read the files and check what a
broken deployment would get wrong first: the services and their healthchecks, the shared
data volume, start-up order, the job's profile, the secrets every container needs, and that
every command the containers run is a command of this project's CLI with options it accepts.
`docker-compose config` (Debian's docker-compose, which the Makefile installs) checks that the
compose file interpolates with the example env file and refuses to without a required variable.
"""

from __future__ import annotations

import fnmatch
import json
import re
import shlex
import shutil
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest
import typer.core
import typer.main
import yaml

from console.main import app as cli_app
from recommender.ingest.formats.web_sources import check_web_source, is_web_source
from tests.support.helpers import REPO

COMPOSE = REPO / "docker-compose.yml"
ENV_EXAMPLE = REPO / ".env.example"
#: What the containers cannot do without: the compose file refuses to start without each one.
REQUIRED = (
    "POSTGRES_PASSWORD",
    "RECOMMENDER_EDITOR_PASSWORD",
    "RECOMMENDER_ADMIN_TOKEN",
    "RECOMMENDER_SESSION_SECRET",
)
DOCKERFILE = REPO / "Dockerfile"
DOCKERIGNORE = REPO / ".dockerignore"
TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"


def project() -> dict[str, Any]:
    """The [project] table of pyproject.toml."""
    found: dict[str, Any] = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))[
        "project"
    ]
    return found


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    return loaded


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = compose["services"]
    return found


def docker_compose_config(directory: Path, env: str) -> subprocess.CompletedProcess[str]:
    """`docker-compose config` of the compose file with `env` as its .env, run in `directory`."""
    program = shutil.which("docker-compose")
    assert program, "docker-compose is missing: `make test` installs Debian's docker-compose"
    shutil.copy(COMPOSE, directory / "docker-compose.yml")
    (directory / ".env").write_text(env, encoding="utf-8")
    return subprocess.run(
        [program, "config"], cwd=directory, capture_output=True, text=True, timeout=60, check=False
    )


@pytest.fixture(scope="module")
def resolved(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """The services as `docker compose` runs them with the example env file."""
    example = ENV_EXAMPLE.read_text(encoding="utf-8")
    done = docker_compose_config(tmp_path_factory.mktemp("compose"), example)
    assert done.returncode == 0, done.stderr
    found: dict[str, dict[str, Any]] = yaml.safe_load(done.stdout)["services"]
    return found


def dockerfile_instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, with continuation lines joined and comments dropped."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for line in text.splitlines():
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if stripped.startswith("#"):  # a comment inside a continued instruction
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        keyword, _, arguments = (pending + stripped).partition(" ")
        instructions.append((keyword.upper(), arguments.strip()))
        pending = ""
    assert not pending, "the Dockerfile ends inside a continued instruction"
    return instructions


@pytest.fixture(scope="module")
def dockerfile() -> list[tuple[str, str]]:
    return dockerfile_instructions(DOCKERFILE.read_text(encoding="utf-8"))


def arguments_of(instructions: list[tuple[str, str]], keyword: str) -> list[str]:
    return [arguments for name, arguments in instructions if name == keyword]


def image_command(instructions: list[tuple[str, str]]) -> list[str]:
    (cmd,) = arguments_of(instructions, "CMD")
    command: list[str] = json.loads(cmd)  # exec form: no shell between Docker and the app
    return command


def command_of(service: dict[str, Any], instructions: list[tuple[str, str]]) -> list[str]:
    """What the service's container runs: its own command, else the image's CMD."""
    command = service.get("command")
    if command is None:
        return image_command(instructions)
    return shlex.split(command) if isinstance(command, str) else [str(c) for c in command]


def mounts(service: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The service's volumes by target, short syntax turned into the long one."""
    found = {}
    for volume in service.get("volumes", []):
        if isinstance(volume, str):
            source, target, *options = volume.split(":")
            mode = options[0].split(",") if options else []
            volume = {"source": source, "target": target, "read_only": "ro" in mode}
        found[volume["target"]] = volume
    return found


def check_cli_command(argv: list[str]) -> dict[str, Any]:
    """Parse `argv` with the real CLI, as the console script would; return the parameters."""
    scripts = project()["scripts"]
    assert argv[0] in scripts, f"{argv[0]!r} is not a console script of this project"
    assert scripts[argv[0]] == "console.main:main"
    group = typer.main.get_command(cli_app)
    assert isinstance(group, typer.core.TyperGroup)
    name, *rest = argv[1:]
    commands = group.commands
    assert name in commands, f"`{argv[0]} {name}` is not a command (have {sorted(commands)})"
    # Unknown options, missing required ones and bad values raise here, as they would at run time.
    context = commands[name].make_context(name, rest)
    params: dict[str, Any] = context.params
    return params


def test_compose_has_the_four_services(services: dict[str, dict[str, Any]]) -> None:
    assert set(services) == {"postgres", "redis", "api", "reindex"}
    assert services["redis"]["image"].startswith("redis:7")
    assert services["postgres"]["image"].startswith("postgres:")


def test_postgres_is_healthchecked_and_keeps_its_data_in_a_volume(
    compose: dict[str, Any], services: dict[str, dict[str, Any]]
) -> None:
    postgres = services["postgres"]
    test = postgres["healthcheck"]["test"]
    assert test[0] == "CMD" and test[1] == "pg_isready"
    assert mounts(postgres)["/var/lib/postgresql/data"]["source"] == "postgres"
    assert "postgres" in compose["volumes"]


def test_api_and_reindex_share_the_database_once_it_is_healthy(
    services: dict[str, dict[str, Any]],
) -> None:
    postgres = services["postgres"]["environment"]
    for name in ("api", "reindex"):
        service = services[name]
        assert service["depends_on"]["postgres"]["condition"] == "service_healthy"
        url = service["environment"]["RECOMMENDER_DATABASE_URL"]
        assert url.startswith("postgresql://") and "@postgres:5432/" in url
        assert url.endswith("/" + postgres["POSTGRES_DB"])
        assert f"//{postgres['POSTGRES_USER']}:" in url


def test_redis_has_a_healthcheck_that_pings(services: dict[str, dict[str, Any]]) -> None:
    test = services["redis"]["healthcheck"]["test"]
    assert test[0] in {"CMD", "CMD-SHELL"}
    assert "redis-cli" in test[1] and "ping" in " ".join(test[1:])


def test_redis_evicts_cache_entries_never_counters(services: dict[str, dict[str, Any]]) -> None:
    """Cache entries carry a TTL and counters do not: a volatile-* policy spares the counters."""
    command = services["redis"]["command"]
    policy = command[command.index("--maxmemory-policy") + 1]
    assert policy.startswith("volatile-")
    assert "--maxmemory" in command


def test_redis_keeps_counters_across_restarts(
    compose: dict[str, Any], services: dict[str, dict[str, Any]]
) -> None:
    """Counters have no TTL and no copy elsewhere: an append-only file on a volume keeps them."""
    redis = services["redis"]
    command = [str(word) for word in redis["command"]]
    assert command[command.index("--appendonly") + 1] == "yes"
    assert "--dir" not in command, "the volume is mounted on the image's working directory"
    assert mounts(redis)["/data"]["source"] == "redis"
    assert "redis" in compose["volumes"]


def test_the_example_env_file_passes_docker_compose_config(
    resolved: dict[str, dict[str, Any]],
) -> None:
    example = dict(
        line.split("=", 1)
        for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines()
        if line and not line.startswith("#")
    )
    for name in ("api", "reindex"):
        environment = resolved[name]["environment"]
        for variable in REQUIRED[1:]:
            assert environment[variable] == example[variable], f"{variable} does not reach {name}"
        password = example["POSTGRES_PASSWORD"]
        assert f"related:{password}@postgres" in environment["RECOMMENDER_DATABASE_URL"]
    assert resolved["postgres"]["environment"]["POSTGRES_PASSWORD"] == example["POSTGRES_PASSWORD"]


@pytest.mark.parametrize("missing", REQUIRED)
def test_docker_compose_refuses_to_start_without_a_required_variable(
    tmp_path: Path, missing: str
) -> None:
    env = "".join(
        line + "\n"
        for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines()
        if not line.startswith(f"{missing}=")
    )
    done = docker_compose_config(tmp_path, env)
    assert done.returncode != 0
    assert f"set {missing} in .env" in done.stderr


def test_settings_reach_the_containers_from_the_env_file_kept_out_of_git(
    services: dict[str, dict[str, Any]],
) -> None:
    for name in ("api", "reindex"):
        assert services[name]["env_file"] == ".env", f"{name} does not read .env"
    assert ".env" in (REPO / ".gitignore").read_text(encoding="utf-8").splitlines()
    assert ".env" in DOCKERIGNORE.read_text(encoding="utf-8").splitlines()


def test_the_example_env_file_shows_web_sources_for_the_reindex_job() -> None:
    """Commented alternatives: an RSS/Atom feed, a sitemap, a WordPress site."""
    examples = re.findall(r"^#?\s*REINDEX_SOURCE=(\S+)", ENV_EXAMPLE.read_text(), re.MULTILINE)
    web = [source for source in examples if is_web_source(source)]
    for source in web:
        check_web_source(source)
    assert any(source.startswith("wordpress+https://") for source in web)
    assert any("sitemap" in source for source in web)
    assert any(source.endswith("feed.xml") for source in web)


def test_api_starts_after_a_healthy_redis_and_uses_it(services: dict[str, dict[str, Any]]) -> None:
    api = services["api"]
    assert api["depends_on"]["redis"]["condition"] == "service_healthy"
    assert api["environment"]["REDIS_URL"] == "redis://redis:6379/0"
    assert api["build"] == "."
    assert any(str(port).endswith(":8000") for port in api["ports"])


def test_api_healthcheck_asks_readyz_without_curl(services: dict[str, dict[str, Any]]) -> None:
    healthcheck = services["api"]["healthcheck"]
    test = healthcheck["test"]
    assert test[0] == "CMD", "exec form: a failing probe must not depend on a shell"
    assert test[1] == "python", "python:slim images have no curl or wget"
    assert "http://127.0.0.1:8000/readyz" in test[-1]
    assert "curl" not in json.dumps(test) and "wget" not in json.dumps(test)
    compile(test[-1], "<healthcheck>", "exec")  # the probe is valid Python
    # Loading an index takes a while: give it a start period before failures count.
    assert "start_period" in healthcheck


def test_api_and_reindex_share_the_data_volume(
    compose: dict[str, Any], services: dict[str, dict[str, Any]], dockerfile: list[tuple[str, str]]
) -> None:
    assert "data" in compose["volumes"]
    data_dir = next(
        value.split("=", 1)[1]
        for env in arguments_of(dockerfile, "ENV")
        for value in env.split()
        if value.startswith("RECOMMENDER_DATA_DIR=")
    )
    for name in ("api", "reindex"):
        service = services[name]
        assert mounts(service)[data_dir]["source"] == "data", f"{name} does not mount data"
        assert service["environment"].get("RECOMMENDER_DATA_DIR", data_dir) == data_dir
        assert service["image"] == services["api"]["image"], "one image for api and job"


def test_reindex_is_a_one_shot_job_under_a_profile(services: dict[str, dict[str, Any]]) -> None:
    job = services["reindex"]
    assert job["profiles"] == ["jobs"], "`docker compose up` must not start the job"
    assert job["restart"] == "no"
    assert "ports" not in job and "healthcheck" not in job
    feeds = mounts(job)["/feeds"]
    assert feeds["read_only"] is True, "the job only reads the feeds"


def test_reindex_command_is_the_cli_reindex_of_the_mounted_feeds(
    resolved: dict[str, dict[str, Any]], dockerfile: list[tuple[str, str]]
) -> None:
    services = resolved
    argv = command_of(services["reindex"], dockerfile)
    assert argv[:2] == ["recommender", "reindex"]
    params = check_cli_command(argv)
    feeds = mounts(services["reindex"])["/feeds"]["target"]
    assert params["source"], "reindex needs --source"
    for source in params["source"]:
        assert Path(feeds) in [Path(source), *Path(source).parents], f"{source} is not in {feeds}"


def test_api_command_is_the_cli_serve_on_all_interfaces(
    services: dict[str, dict[str, Any]], dockerfile: list[tuple[str, str]]
) -> None:
    argv = command_of(services["api"], dockerfile)
    assert argv[:2] == ["recommender", "serve"]
    params = check_cli_command(argv)
    assert params["host"] == "0.0.0.0", "inside a container, 127.0.0.1 is unreachable"
    assert params["port"] == 8000
    assert "8000" in arguments_of(dockerfile, "EXPOSE")


def test_the_kubernetes_cronjob_follows_the_documented_multi_host_recipe() -> None:
    """docs/operations.md: the job shares the version store and the database with the API hosts,
    in a data volume of its own; its command is a command of the CLI."""
    text = (REPO / "docs" / "operations.md").read_text(encoding="utf-8")
    (block,) = [b for b in re.findall(r"```yaml\n(.*?)```", text, re.DOTALL) if "CronJob" in b]
    pod = yaml.safe_load(block)["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    env = {variable["name"] for variable in container["env"]}
    assert {"RECOMMENDER_STORE_URL", "RECOMMENDER_DATABASE_URL", "RECOMMENDER_DATA_DIR"} <= env
    check_cli_command(container["command"])
    data = next(volume for volume in pod["volumes"] if volume["name"] == "data")
    assert "reindex" in data["persistentVolumeClaim"]["claimName"], "the job's own data volume"
    recipe = text[text.index("**Several hosts.**") :]
    assert "RECOMMENDER_STORE_URL" in recipe and "RECOMMENDER_DATABASE_URL" in recipe
    assert "ReadWriteMany" not in text


def test_the_cli_check_refuses_what_the_cli_refuses() -> None:
    with pytest.raises(AssertionError, match="not a command"):
        check_cli_command(["recommender", "index", "--source", "/feeds"])
    with pytest.raises(Exception, match="--sources"):
        check_cli_command(["recommender", "reindex", "--sources", "/feeds"])
    with pytest.raises(Exception, match="integer"):
        check_cli_command(["recommender", "serve", "--port", "http"])


def test_dockerfile_installs_the_pinned_cpu_torch_before_the_project(
    dockerfile: list[tuple[str, str]],
) -> None:
    (base,) = arguments_of(dockerfile, "FROM")
    assert base == "python:3.11-slim"
    (torch_pin,) = [d for d in project()["dependencies"] if re.match(r"torch\s*==", d)]
    runs = arguments_of(dockerfile, "RUN")
    torch_step = next(i for i, run in enumerate(runs) if "torch==" in run)
    project_step = next(i for i, run in enumerate(runs) if re.search(r"pip install \.(\s|$)", run))
    assert torch_step < project_step, "torch must come from the CPU index, before the project"
    assert f"--index-url {TORCH_CPU_INDEX}" in runs[torch_step]
    assert torch_pin.replace(" ", "") in runs[torch_step].split(), "the same torch as pyproject"


def test_dockerfile_bakes_the_model_in_and_checks_it_offline(
    dockerfile: list[tuple[str, str]],
) -> None:
    runs = arguments_of(dockerfile, "RUN")
    project_step = next(i for i, run in enumerate(runs) if re.search(r"pip install \.(\s|$)", run))
    check_step = next(i for i, run in enumerate(runs) if "SentenceTransformerEncoder" in run)
    assert check_step > project_step
    check = runs[check_step]
    assert check.startswith("HF_HUB_OFFLINE=1 python -c")
    assert "'all-MiniLM-L6-v2'" in check and ".encode(" in check


def test_dockerfile_runs_the_api_as_a_user_with_data_in_a_volume(
    dockerfile: list[tuple[str, str]],
) -> None:
    users = arguments_of(dockerfile, "USER")
    assert users and users[-1] not in {"root", "0", "0:0"}
    envs = " ".join(arguments_of(dockerfile, "ENV")).split()
    assert "RECOMMENDER_DATA_DIR=/data" in envs
    serve = ["recommender", "serve", "--host", "0.0.0.0", "--port", "8000"]
    assert image_command(dockerfile) == serve


def test_build_context_has_what_the_dockerfile_copies_and_no_local_state(
    dockerfile: list[tuple[str, str]],
) -> None:
    patterns = [
        line.strip()
        for line in DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]

    def ignored(path: str) -> bool:
        return any(fnmatch.fnmatch(path, p) or path.startswith(p + "/") for p in patterns)

    for must_stay_out in (".venv", ".git", ".recommender"):
        assert ignored(must_stay_out), f"{must_stay_out} would be sent to the Docker daemon"
    for copy in arguments_of(dockerfile, "COPY"):
        *sources, _target = copy.split()
        for source in sources:
            assert (REPO / source).exists(), f"COPY {source}: no such file"
            assert not ignored(source), f"COPY {source}: excluded by .dockerignore"
    assert not ignored(project()["readme"]), "pip install . needs the readme pyproject names"
