"""deploy/: the env file example and the compose file name exactly the variables the bot
reads (bot/config.py, found by asking Settings itself), the compose stack migrates once before
any bot starts, and the systemd units pass `systemd-analyze verify`."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.config import Settings
from bot.org import SAMPLE, load_org

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"
BOT_SERVICES = ("migrate", "bot", "callback")


class Recording(Mapping[str, str]):
    """An environment in which every variable is set, remembering which were looked up."""

    def __init__(self) -> None:
        self.read: set[str] = set()

    def __getitem__(self, key: str) -> str:
        self.read.add(key)
        return f"/x/{key}"

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0


def settings_variables() -> set[str]:
    env = Recording()
    settings = Settings.from_env(environ=env)
    # The custom robots' secrets: whatever names the org file gives (the sample's, here).
    settings.with_robot_secrets(load_org(SAMPLE).secret_envs, env)
    return env.read


def env_file_names(path: Path) -> set[str]:
    names = set()
    for line in path.read_text(encoding="utf-8").splitlines():
        m = re.match(r"^([A-Z][A-Z0-9_]*)=", line)
        if m:
            names.add(m.group(1))
    return names


def compose() -> dict[str, Any]:
    loaded = yaml.safe_load((DEPLOY / "compose.yaml").read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return loaded


def test_the_recording_sees_what_settings_reads() -> None:
    names = settings_variables()
    assert {"DATABASE_URL", "DINGTALK_CLIENT_SECRET", "LIANDONG_PHOTOS_DIR", "LIANDONG_CATEGORY_FILE"} <= names


def test_the_env_file_example_names_every_variable_settings_reads_and_nothing_else() -> None:
    assert env_file_names(DEPLOY / "liandong.env.example") == settings_variables()


def test_the_bot_services_set_only_variables_settings_reads() -> None:
    services = compose()["services"]
    for name in BOT_SERVICES:
        service = services[name]
        assert service["env_file"] == ["liandong.env"]
        assert set(service["environment"]) <= settings_variables(), name
        assert any(v.endswith(":/etc/liandong/org.yaml:ro") for v in service["volumes"])


def test_compose_variables_are_all_in_its_env_example() -> None:
    text = (DEPLOY / "compose.yaml").read_text(encoding="utf-8")
    used = set(re.findall(r"\$\{([A-Z_]+)", text))
    assert used and used == env_file_names(DEPLOY / ".env.example")
    assert not env_file_names(DEPLOY / ".env.example") & settings_variables()  # two files, two audiences


def test_compose_migrates_once_before_the_bots_and_keeps_the_database() -> None:
    c = compose()
    services = c["services"]
    assert services["migrate"]["command"] == ["migrate"] and services["migrate"]["restart"] == "no"
    assert services["migrate"]["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    for name in ("bot", "callback"):
        assert services[name]["command"][0] == "run"
        assert services[name]["depends_on"] == {"migrate": {"condition": "service_completed_successfully"}}
    assert "/healthz" in " ".join(services["bot"]["healthcheck"]["test"])
    assert "--http" in services["callback"]["command"] and services["callback"]["profiles"] == ["callback"]
    assert "pgdata:/var/lib/postgresql/data" in services["postgres"]["volumes"] and "pgdata" in c["volumes"]
    assert "443:443" in services["caddy"]["ports"]
    assert all(services[n]["stop_grace_period"] == "60s" for n in BOT_SERVICES)  # room for a clean stop


def test_the_image_runs_as_a_user_and_the_proxy_hides_metrics() -> None:
    dockerfile = (DEPLOY / "Dockerfile").read_text(encoding="utf-8")
    assert dockerfile.startswith("#") and "\nFROM python:3.11-slim\n" in dockerfile
    assert re.search(r"^USER liandong$", dockerfile, re.M) and 'ENTRYPOINT ["liandong"]' in dockerfile
    caddy = (DEPLOY / "Caddyfile").read_text(encoding="utf-8")
    assert "respond /metrics 404" in caddy and "reverse_proxy callback:9000" in caddy


def _verify(units: Path, *names: str) -> list[str]:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("no systemd-analyze on this machine")
    done = subprocess.run([analyze, "verify", *names], cwd=units, capture_output=True, text=True, timeout=60)
    # The units name the installed program, which this machine does not have.
    missing = "Command /opt/liandong/.venv/bin/liandong is not executable"
    return [line for line in (done.stdout + done.stderr).splitlines() if line.strip() and missing not in line]


@pytest.fixture
def units(tmp_path: Path) -> Path:
    for unit in (DEPLOY / "systemd").glob("*.service"):
        shutil.copy(unit, tmp_path / unit.name)
    # A template is verified through an instance of it.
    shutil.copy(tmp_path / "liandong@.service", tmp_path / "liandong@1.service")
    return tmp_path


def test_the_systemd_units_verify(units: Path) -> None:
    assert _verify(units, "./liandong-migrate.service", "./liandong@1.service") == []
    text = (units / "liandong@1.service").read_text(encoding="utf-8")
    assert "Requires=liandong-migrate.service" in text and "ExecStart=/opt/liandong/.venv/bin/liandong run" in text
    for hardening in ("NoNewPrivileges=yes", "ProtectSystem=strict", "CapabilityBoundingSet=", "User=liandong"):
        assert hardening in text


def test_the_verification_sees_a_bad_unit(units: Path) -> None:
    unit = units / "liandong@1.service"
    unit.write_text(unit.read_text(encoding="utf-8").replace("TimeoutStopSec=60", "TimeoutStopSex=60"))
    assert any("TimeoutStopSex" in line for line in _verify(units, "./liandong@1.service"))
