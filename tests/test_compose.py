"""docker-compose.yml and the Dockerfile as an operator meets them on a fresh machine.

The compose file is rendered the way Compose does it (YAML with merge keys, then
`${NAME:-default}` interpolation from the project's .env), with and without a .env;
where a Docker CLI with Compose exists, `docker compose config` renders it too and must
agree. Then every Easel role's health command is asked of real processes.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.procs import EaselProcesses, free_port, wait_until

ROOT = Path(__file__).resolve().parent.parent
EASEL_ROLES = ("gateway", "worker", "web")
_VAR = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?-([^}]*))?\}")


def _dotenv(path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            name, sep, value = line.partition("=")
            if sep and not line.lstrip().startswith("#"):
                values[name.strip()] = value.strip()
    return values


def _interpolate(value: Any, env: dict[str, str]) -> Any:
    if isinstance(value, dict):
        return {k: _interpolate(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [_interpolate(v, env) for v in value]
    if not isinstance(value, str):
        return value

    def one(match: re.Match[str]) -> str:
        if match[0] == "$$":
            return "$"
        return env.get(match[1]) or (match[2] or "")

    return _VAR.sub(one, value)


def render(project: Path) -> dict[str, Any]:
    """What Compose makes of the project folder (its own variables come from .env only)."""
    raw = yaml.safe_load((project / "docker-compose.yml").read_text())
    config: dict[str, Any] = _interpolate(raw, _dotenv(project / ".env"))
    return config


def _project(tmp_path: Path, dotenv: str | None) -> Path:
    shutil.copy(ROOT / "docker-compose.yml", tmp_path / "docker-compose.yml")
    shutil.copy(ROOT / ".env.example", tmp_path / ".env.example")
    if dotenv is not None:
        (tmp_path / ".env").write_text(dotenv)
    return tmp_path


def _has_compose() -> bool:
    if shutil.which("docker") is None:
        return False
    return subprocess.run(["docker", "compose", "version"], capture_output=True,
                          check=False).returncode == 0


def test_without_a_dotenv_every_role_has_its_settings_health_and_ports(tmp_path: Path) -> None:
    config = render(_project(tmp_path, None))
    services = config["services"]
    assert set(services) == {"postgres", "s3", "s3-init", "gateway", "worker", "web"}
    assert re.fullmatch(r"chrislusf/seaweedfs:\d+\.\d+", services["s3"]["image"])  # one version
    for role in EASEL_ROLES:
        service = services[role]
        assert service["command"] == ["easel", role]
        assert service["healthcheck"]["test"] == ["CMD", "easel", "health"]
        assert service["env_file"] == [{"path": ".env", "required": False}]
        env = service["environment"]
        assert env["EASEL_HEALTH_PORT"] == "8081" and env["EASEL_WAIT_FOR_CONFIG"] == "true"
        assert env["EASEL_SECRET_KEY"] and env["PUBLIC_URL"] == "http://localhost:8080"
        assert env["S3_PUBLIC_URL"] == "http://localhost:8333"
        assert env["DATABASE_URL"].endswith("@postgres:5432/easel")
        assert service["depends_on"]["s3-init"] == {"condition": "service_completed_successfully"}
    assert services["web"]["ports"] == ["8080:8080"]
    assert services["gateway"]["ports"] == ["3000:8080"]  # Slack's HTTP mode reaches it
    assert services["s3"]["ports"] == ["8333:8333"]
    assert services["worker"]["deploy"] == {"replicas": 2}
    assert "$AWS_SECRET_ACCESS_KEY" in services["s3"]["command"][0]  # `$$` reaches the shell
    assert services["postgres"]["environment"]["POSTGRES_PASSWORD"] in (
        services["web"]["environment"]["DATABASE_URL"])


def test_dotenv_values_win_over_the_compose_defaults(tmp_path: Path) -> None:
    config = render(_project(tmp_path, (
        "DATABASE_URL=postgresql://me:secret@db.example:5432/mine\nS3_BUCKET=my-bucket\n"
        "PUBLIC_URL=https://easel.example.org\nEASEL_WAIT_FOR_CONFIG=false\n"
        "SLACK_EVENTS_PORT=3999\n")))
    for role in (*EASEL_ROLES, "s3-init"):
        env = config["services"][role]["environment"]
        assert env["DATABASE_URL"] == "postgresql://me:secret@db.example:5432/mine"
        assert env["S3_BUCKET"] == "my-bucket"
        assert env["PUBLIC_URL"] == "https://easel.example.org"
    assert config["services"]["worker"]["environment"]["EASEL_WAIT_FOR_CONFIG"] == "false"
    assert config["services"]["gateway"]["ports"] == ["3999:8080"]


def test_the_example_env_starts_as_it_is(tmp_path: Path) -> None:
    """`cp .env.example .env && docker compose up`: every line is a comment or a setting."""
    copied = render(_project(tmp_path, (ROOT / ".env.example").read_text()))
    (tmp_path / "bare").mkdir()
    assert copied == render(_project(tmp_path / "bare", None))


@pytest.mark.skipif(not _has_compose(), reason="no Docker CLI with Compose here")
@pytest.mark.parametrize("dotenv", [None, "DATABASE_URL=postgresql://me@db/mine\n"])
def test_docker_compose_config_agrees(tmp_path: Path, dotenv: str | None) -> None:
    project = _project(tmp_path, dotenv)
    rendered = subprocess.run(["docker", "compose", "config", "--format", "json"], cwd=project,
                              capture_output=True, text=True, check=True)
    theirs = json.loads(rendered.stdout)["services"]
    ours = render(project)["services"]
    for role in EASEL_ROLES:
        for name in ("DATABASE_URL", "S3_BUCKET", "EASEL_HEALTH_PORT"):
            assert theirs[role]["environment"][name] == ours[role]["environment"][name]


def test_the_image_installs_dependencies_in_their_own_layer_without_pgserver() -> None:
    steps = [line for line in (ROOT / "Dockerfile").read_text().splitlines()
             if re.match(r"(COPY|RUN|FROM)\b", line)]
    first_code = next(i for i, step in enumerate(steps) if step.startswith("COPY core"))
    deps = next(i for i, step in enumerate(steps) if step.startswith("RUN"))
    assert steps[1] == "COPY pyproject.toml ./" and deps < first_code
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "not d.startswith('pgserver')" in dockerfile and "pip install --no-deps ." in dockerfile
    assert 'CMD ["easel", "health"]' in dockerfile


async def test_each_role_answers_easel_health(tmp_path: Path, database_url: str) -> None:
    """A worker waiting for its configuration is unhealthy and says why; web and a worker
    with a platform are healthy; nothing listening is a plain sentence, exit 1."""
    procs = EaselProcesses(tmp_path / "logs", {
        "DATABASE_URL": database_url, "EASEL_DATA_DIR": str(tmp_path / "data"),
        "EASEL_WEB_HOST": "127.0.0.1"})
    try:
        nobody = await procs.run("health", env={"EASEL_HEALTH_PORT": str(free_port())})
        assert nobody.returncode == 1 and "no Easel process answers" in nobody.stdout
        waiting_port = str(free_port())
        procs.start("waiting", "worker", env={"EASEL_WAIT_FOR_CONFIG": "true",
                                              "EASEL_HEALTH_PORT": waiting_port})

        async def answered() -> Any:
            probe = await procs.run("health", env={"EASEL_HEALTH_PORT": waiting_port})
            return probe if "no Easel process" not in probe.stdout else None

        waiting = await wait_until(answered, timeout_s=30, what="the waiting worker's health")
        print(waiting.stdout)
        assert waiting.returncode == 1 and "DISCORD_TOKEN or SLACK_BOT_TOKEN" in waiting.stdout
        web_port, health_port = free_port(), free_port()
        await procs.start_web("web", web_port, env={"EASEL_HEALTH_PORT": str(health_port)})
        ready = await procs.run("health", env={"EASEL_HEALTH_PORT": str(health_port)})
        print(ready.stdout)
        assert ready.returncode == 0 and '"database":"ok"' in ready.stdout
    finally:
        await procs.stop_all()
        procs.kill_all()


async def test_presigned_links_are_signed_for_the_public_endpoint(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """S3_PUBLIC_URL: the link names the address people open, signed for that host."""
    from adapters.storage.s3 import S3ObjectStore

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "easel")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "easel-change-me")
    inside = S3ObjectStore("easel", endpoint_url="http://s3:8333", region="us-east-1",
                           path_style=True)
    public = S3ObjectStore("easel", endpoint_url="http://s3:8333", region="us-east-1",
                           path_style=True, public_url="https://images.example.org")
    assert (await inside.url("sessions/1/a.png", 60)).startswith("http://s3:8333/easel/")
    link = await public.url("sessions/1/a.png", 60)
    assert link.startswith("https://images.example.org/easel/sessions/1/a.png?")
    assert "X-Amz-Signature=" in link and "host" in link.lower()
