#!/usr/bin/env bash
# Puts bubblewrap (Debian's `bubblewrap` package) at .venv/bin/bwrap for the Lite UDF sandbox,
# without installing it system-wide: `apt-get download` the .deb and unpack only the binary.
# Idempotent: does nothing when .venv/bin/bwrap is there already. Usage: scripts/fetch-bwrap.sh [VENV]
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
venv="${1:-$root/.venv}"
target="$venv/bin/bwrap"

if [ -x "$target" ]; then
  exit 0
fi
command -v apt-get >/dev/null || { echo "error: apt-get not found: install bubblewrap (bwrap) yourself" >&2; exit 1; }
mkdir -p "$venv/bin"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
chmod 0755 "$work"  # apt-get downloads as the _apt user
(cd "$work" && apt-get download -q bubblewrap >/dev/null)
deb="$(ls "$work"/bubblewrap_*.deb)"
dpkg-deb -x "$deb" "$work/root"
install -m 0755 "$work/root/usr/bin/bwrap" "$target.partial"
mv "$target.partial" "$target"
echo "bwrap: $("$target" --version) at $target"
