#!/usr/bin/env python3
"""Print an apt sources entry (deb822) for more components of this machine's Debian release.

    debian-components.py contrib non-free [--root /]

The entry is made from the machine's own: the deb822 stanza (sources.list.d/*.sources) or
one-line entry (sources.list, sources.list.d/*.list) that serves the release's main suite
(VERSION_CODENAME in os-release), with the same URIs, suites (the release and its updates,
not security) and keyring; only the components are ours. Nothing is invented, so no host
name is written into the repository. Exit 1 with one line when no such entry exists.
Standard library only: it runs before any virtual environment exists.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def codename(root: Path) -> str:
    for line in (root / "etc/os-release").read_text().splitlines():
        key, _, value = line.partition("=")
        if key == "VERSION_CODENAME":
            return value.strip().strip('"')
    raise SystemExit("debian-components: no VERSION_CODENAME in /etc/os-release; is this Debian?")


def deb822_stanzas(text: str) -> list[dict[str, str]]:
    stanzas, cur, last = [], {}, None
    for line in text.splitlines() + [""]:
        if not line.strip():
            if cur:
                stanzas.append(cur)
            cur, last = {}, None
        elif line.startswith("#"):
            continue
        elif line[0] in " \t" and last:
            cur[last] += " " + line.strip()
        else:
            key, _, value = line.partition(":")
            last = key.strip()
            cur[last] = value.strip()
    return stanzas


def one_line_entries(text: str) -> list[dict[str, str]]:
    """`deb [signed-by=K] URI SUITE COMPONENT...` lines as deb822-like dicts."""
    out = []
    for line in text.splitlines():
        words = line.split("#", 1)[0].split()
        if len(words) < 4 or words[0] != "deb":
            continue
        options = {}
        if words[1].startswith("["):
            end = next(i for i, w in enumerate(words) if w.endswith("]"))
            for opt in " ".join(words[1:end + 1]).strip("[]").split():
                k, _, v = opt.partition("=")
                options[k] = v
            words = [words[0]] + words[end + 1:]
        entry = {"Types": "deb", "URIs": words[1], "Suites": words[2], "Components": " ".join(words[3:])}
        if "signed-by" in options:
            entry["Signed-By"] = options["signed-by"]
        out.append(entry)
    return out


def entries(root: Path) -> list[dict[str, str]]:
    apt = root / "etc/apt"
    found = []
    for path in sorted((apt / "sources.list.d").glob("*.sources")):
        found += deb822_stanzas(path.read_text())
    for path in [apt / "sources.list"] + sorted((apt / "sources.list.d").glob("*.list")):
        if path.is_file():
            found += one_line_entries(path.read_text())
    return [e for e in found if e.get("Enabled", "yes").lower() != "no"]


def entry_for(root: Path, components: list[str]) -> str:
    release = codename(root)
    for e in entries(root):
        suites = e.get("Suites", "").split()
        if release in suites and "main" in e.get("Components", "").split() and "deb" in e.get("Types", "").split():
            keep = [s for s in suites if s == release or s == f"{release}-updates"]
            lines = ["Types: deb", f"URIs: {e['URIs']}", f"Suites: {' '.join(keep)}",
                     f"Components: {' '.join(components)}"]
            if e.get("Signed-By"):
                lines.append(f"Signed-By: {e['Signed-By']}")
            return "\n".join(lines) + "\n"
    raise SystemExit(f"debian-components: no apt entry serves Debian {release}'s main component; "
                     "add contrib and non-free to apt's sources by hand")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("components", nargs="+")
    p.add_argument("--root", default="/", help="where /etc is (for tests)")
    a = p.parse_args()
    sys.stdout.write(entry_for(Path(a.root), a.components))


if __name__ == "__main__":
    main()
