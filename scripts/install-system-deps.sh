#!/usr/bin/env bash
# Installs the Debian packages the test suite drives for real: Chromium for
# the browser test project and ffmpeg/ffprobe for media fixtures. Idempotent:
# does nothing when every binary is already on PATH.
set -euo pipefail

need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v ffmpeg >/dev/null 2>&1 || need+=(ffmpeg)
command -v ffprobe >/dev/null 2>&1 || need+=(ffmpeg)
for extra in "$@"; do
  command -v "$extra" >/dev/null 2>&1 || need+=("$extra")
done

if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi

sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then
  sudo_cmd=(sudo)
fi

# Deduplicate while keeping order.
mapfile -t pkgs < <(printf '%s\n' "${need[@]}" | awk '!seen[$0]++')
echo "installing Debian packages: ${pkgs[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -qq
"${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null
