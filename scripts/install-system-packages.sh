#!/usr/bin/env bash
# Debian packages the tests and `data synth` need: TTS engines (espeak-ng, flite, festival
# with three English voices; RHVoice's English voices and four MBROLA voices, from Debian's
# non-free component), sox, Asterisk's English prompts (real speech, test only), and
# the Python headers pip needs to build ttspico (SVOX Pico) from source. Skips apt-get when everything is already there.
set -euo pipefail
PKGS=(espeak-ng flite festival festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts sox asterisk-core-sounds-en-wav python3-dev
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
echo "system packages: installing ${missing[*]}"
$SUDO apt-get update -qq
# RHVoice's voices and MBROLA's are in Debian's non-free component (mbrola itself in
# contrib), which a stock Debian image does not list: add both for this release.
if ! apt-cache show mbrola-us1 >/dev/null 2>&1; then
  codename=$(. /etc/os-release && echo "$VERSION_CODENAME")
  echo "system packages: adding Debian $codename contrib and non-free to apt's sources"
  printf 'Types: deb\nURIs: http://deb.debian.org/debian\nSuites: %s\nComponents: contrib non-free\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
    "$codename" | $SUDO tee /etc/apt/sources.list.d/edge-asr-nonfree.sources >/dev/null
  $SUDO apt-get update -qq
fi
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
