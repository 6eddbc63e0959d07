"""scripts/debian-components.py: the apt entry that adds Debian's contrib and non-free is
made from the machine's own entry (same archive, suites, keyring), never from a host name
of ours."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "debian-components.py"


def _machine(tmp_path: Path, sources: dict[str, str], codename: str = "bookworm") -> Path:
    (tmp_path / "etc/apt/sources.list.d").mkdir(parents=True)
    (tmp_path / "etc/os-release").write_text(f'PRETTY_NAME="Debian"\nVERSION_CODENAME={codename}\nID=debian\n')
    for name, text in sources.items():
        (tmp_path / "etc/apt" / name).write_text(text)
    return tmp_path


def _run(root: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), "contrib", "non-free", "--root", str(root)],
                          capture_output=True, text=True)


DEB822 = {"sources.list.d/debian.sources": (
    "Types: deb\n# a snapshot comment\nURIs: http://mirror.invalid/debian\nSuites: bookworm bookworm-updates\n"
    "Components: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n\n"
    "Types: deb\nURIs: http://mirror.invalid/debian-security\nSuites: bookworm-security\nComponents: main\n")}
ONE_LINE = {"sources.list": (
    "# deb http://old.invalid/debian bookworm main\n"
    "deb http://mirror.invalid/debian-security bookworm-security main\n"
    "deb [arch=amd64 signed-by=/etc/keys/debian.gpg] http://mirror.invalid/debian bookworm main\n")}


@pytest.mark.parametrize("sources, entry", [
    (DEB822, "Types: deb\nURIs: http://mirror.invalid/debian\nSuites: bookworm bookworm-updates\n"
             "Components: contrib non-free\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n"),
    (ONE_LINE, "Types: deb\nURIs: http://mirror.invalid/debian\nSuites: bookworm\n"
               "Components: contrib non-free\nSigned-By: /etc/keys/debian.gpg\n"),
], ids=["deb822", "one-line"])
def test_the_machines_entry_is_copied_with_other_components(tmp_path, sources, entry):
    r = _run(_machine(tmp_path, sources))
    assert r.returncode == 0, r.stderr
    assert r.stdout == entry


@pytest.mark.parametrize("sources", [
    {},                                                                              # no entry at all
    {"sources.list": "deb http://mirror.invalid/debian trixie main\n"},              # another release
    {"sources.list.d/d.sources": "Enabled: no\nTypes: deb\nURIs: http://m.invalid/debian\nSuites: bookworm\n"
                                 "Components: main\n"},                               # switched off
])
def test_no_entry_of_the_release_is_one_line_and_exit_1(tmp_path, sources):
    r = _run(_machine(tmp_path, sources))
    assert r.returncode == 1 and r.stdout == "" and r.stderr.count("\n") == 1 and "bookworm" in r.stderr


def test_no_host_name_is_written_into_the_repository():
    for path in (ROOT / "scripts").iterdir():
        assert "debian.org" not in path.read_text(), path
