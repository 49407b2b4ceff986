#!/usr/bin/env bash
# Headless Chromium for the browser tests: `chromium.sh up|down|status`.
#
# Nothing runs between tests (each test starts and stops its own browser), so `up` installs
# Debian's chromium (and a font, so that pages render text) when missing, checks that it
# renders a page headless, and writes its path as SEROTINY_CHROMIUM to the env file.
# `down` only forgets that path. The flags below are the ones this machine needs: as root
# Chromium wants --no-sandbox, and with no network it must not try to reach Google.
source "$(dirname "$0")/lib.sh"

CHROMIUM="${SEROTINY_CHROMIUM_BIN:-/usr/bin/chromium}"
FLAGS=(--headless --no-sandbox --disable-gpu --disable-quic --no-first-run
  --disable-background-networking --disable-component-update --disable-sync)

renders() {
  local profile
  profile="$(mktemp -d)"
  # shellcheck disable=SC2064
  trap "rm -rf '$profile'" RETURN
  timeout 60 "$CHROMIUM" "${FLAGS[@]}" --user-data-dir="$profile" --dump-dom \
    'data:text/html,<p id="serotiny">rendered</p>' 2>/dev/null | grep -q 'id="serotiny"'
}

up() {
  need_root
  ensure_packages ${SERVICE_PACKAGES[chromium]}
  renders || die "$CHROMIUM did not render a page headless"
  env_set SEROTINY_CHROMIUM "$CHROMIUM"
  say "chromium: ready ($("$CHROMIUM" --version 2>/dev/null | head -1))"
}

down() { env_unset_prefix SEROTINY_CHROMIUM; }

status() { [ -x "$CHROMIUM" ] && renders; }

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) if status; then echo "chromium: ready"; else echo "chromium: missing"; exit 1; fi ;;
  *) echo "usage: $0 up|down|status" >&2; exit 2 ;;
esac
