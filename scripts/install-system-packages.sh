#!/usr/bin/env bash
# Debian packages the tests and `data synth` need: TTS engines (espeak-ng, flite, festival
# with three English voices; RHVoice's English voices and four MBROLA voices, from Debian's
# contrib and non-free components), sox, Asterisk's English prompts (real speech, test only),
# the Python headers pip needs to build ttspico (SVOX Pico) from source, and Yosys (`edge-asr
# synth`: technology mapping of the RTL kernels). Skips apt-get
# when everything is already there.
set -euo pipefail
PKGS=(espeak-ng flite festival festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts sox asterisk-core-sounds-en-wav python3-dev yosys
      rhvoice rhvoice-english mbrola mbrola-us1 mbrola-us2 mbrola-us3 mbrola-en1)
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
here=$(cd "$(dirname "$0")" && pwd)
echo "system packages: installing ${missing[*]}"
$SUDO apt-get update -qq
# RHVoice's voices and MBROLA's are in Debian's non-free component (mbrola itself in
# contrib), which a stock Debian image does not list. The entry that adds them is made from
# the machine's own Debian entry (same archive, suites and keyring), never from an address
# of ours: scripts/debian-components.py prints it.
if ! apt-cache show mbrola-us1 >/dev/null 2>&1; then
  entry=$(python3 "$here/debian-components.py" contrib non-free)
  echo "system packages: adding Debian's contrib and non-free components to apt's sources, from the machine's own entry"
  printf '%s\n' "$entry" | $SUDO tee /etc/apt/sources.list.d/edge-asr-nonfree.sources >/dev/null
  $SUDO apt-get update -qq
fi
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
