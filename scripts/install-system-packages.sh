#!/usr/bin/env bash
# Debian packages the tests and `data synth` need: TTS engines (espeak-ng, flite, festival
# with three English voices), sox, Asterisk's English prompts (real speech, test only), and
# the Python headers pip needs to build ttspico (SVOX Pico) from source. Skips apt-get when everything is already there.
set -euo pipefail
PKGS=(espeak-ng flite festival festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts sox asterisk-core-sounds-en-wav python3-dev)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "system packages: all present"
  exit 0
fi
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
echo "system packages: installing ${missing[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
