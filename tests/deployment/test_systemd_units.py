"""The shipped systemd units (deploy/systemd/) are valid for systemd itself, hardening
included, and start the installed `lngate` with the port of their instance name."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.deployment.nginx import REPO

UNITS = REPO / "deploy" / "systemd"
INSTALLED = "/opt/lngate/.venv/bin/lngate"


@pytest.mark.parametrize("unit, name", [("lngate@.service", "lngate@8001.service"),
                                        ("lngate-migrate.service", "lngate-migrate.service")])
def test_systemd_accepts_the_unit_without_a_warning(unit: str, name: str,
                                                     tmp_path: Path) -> None:
    """`systemd-analyze verify` reports nothing for the unit (an unknown or misspelt directive
    would be a warning), once its lngate path points at a real executable."""
    analyze = shutil.which("systemd-analyze")
    assert analyze, "systemd-analyze (the systemd package) is needed to check the units"
    text = (UNITS / unit).read_text()
    assert INSTALLED in text
    lngate = Path(sys.executable).with_name("lngate")
    (tmp_path / name).write_text(text.replace(INSTALLED, str(lngate)))
    result = subprocess.run([analyze, "verify", "--man=no", str(tmp_path / name)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert not (result.stdout + result.stderr).strip(), result.stdout + result.stderr


def test_each_instance_serves_on_the_port_of_its_name() -> None:
    """`lngate@8001` runs `lngate serve` on 127.0.0.1:8001, as nginx's upstream expects."""
    text = (UNITS / "lngate@.service").read_text()
    assert f"ExecStart={INSTALLED} serve --host 127.0.0.1 --port %i" in text
    assert "127.0.0.1:8001" in (REPO / "deploy" / "nginx" / "lngate.conf").read_text()
