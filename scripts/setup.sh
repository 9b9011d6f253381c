#!/usr/bin/env bash
# Installs what OriginLink's tests and demo need, idempotently, on Debian with Rust:
# apt packages (xmllint, xmlsec1; poppler-utils and zbar-tools for the printed certificate; iproute2 for the network-namespace test; curl and jq for README's walkthrough; chromium and
# chromium-driver for the console's browser tests), axe-core from npm, Python's jsonschema,
# jwcrypto, openapi-spec-validator, schemathesis and aiosmtpd (the SMTP server the
# notification tests send to), cargo-nextest, PostgreSQL.
# Safe to run again: each step checks first and does nothing when the tool is there.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v xmllint >/dev/null 2>&1 || need_apt+=(libxml2-utils)
command -v xmlsec1 >/dev/null 2>&1 || need_apt+=(xmlsec1)
command -v openssl >/dev/null 2>&1 || need_apt+=(openssl)
command -v curl >/dev/null 2>&1 || need_apt+=(curl)
command -v jq >/dev/null 2>&1 || need_apt+=(jq)
command -v python3 >/dev/null 2>&1 || need_apt+=(python3 python3-pip)
# Debian's chromium and chromedriver drive the console's browser tests (crates/console-tests).
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
command -v chromedriver >/dev/null 2>&1 || need_apt+=(chromium-driver)
command -v npm >/dev/null 2>&1 || need_apt+=(npm)
# pdftotext and pdftoppm read the printed certificate; zbarimg decodes its QR code.
command -v pdftotext >/dev/null 2>&1 || need_apt+=(poppler-utils)
command -v zbarimg >/dev/null 2>&1 || need_apt+=(zbar-tools)
command -v ip >/dev/null 2>&1 || need_apt+=(iproute2)
# Khmer and Thai fonts, so that the browser tests' screenshots show names in those scripts
# (Vietnamese is covered by the default fonts).
[ -d /usr/share/fonts/truetype/khmeros ] || need_apt+=(fonts-khmeros)
[ -d /usr/share/fonts/truetype/tlwg ] || need_apt+=(fonts-thai-tlwg)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "setup: installing ${need_apt[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

if ! python3 -c 'import jsonschema, referencing' >/dev/null 2>&1; then
  echo "setup: installing Python jsonschema"
  python3 -m pip install --quiet jsonschema 2>/dev/null \
    || python3 -m pip install --quiet --break-system-packages jsonschema 2>/dev/null \
    || { SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"; $SUDO apt-get install -y -qq python3-jsonschema >/dev/null; }
fi

if ! python3 -c 'import jwcrypto' >/dev/null 2>&1; then
  echo "setup: installing Python jwcrypto"
  python3 -m pip install --quiet jwcrypto 2>/dev/null \
    || python3 -m pip install --quiet --break-system-packages jwcrypto 2>/dev/null \
    || { SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"; $SUDO apt-get install -y -qq python3-jwcrypto >/dev/null; }
fi

# A real SMTP server for the notification tests (the e-mails must reach one).
if ! python3 -c 'import aiosmtpd' >/dev/null 2>&1; then
  echo "setup: installing Python aiosmtpd"
  python3 -m pip install --quiet aiosmtpd 2>/dev/null \
    || python3 -m pip install --quiet --break-system-packages aiosmtpd 2>/dev/null \
    || { SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"; $SUDO apt-get install -y -qq python3-aiosmtpd >/dev/null; }
fi

if ! cargo nextest --version >/dev/null 2>&1; then
  echo "setup: installing cargo-nextest"
  cargo install --locked cargo-nextest
fi

# PostgreSQL for the storage contract tests (user `postgres`, trust auth on 127.0.0.1:5432).
# Uses a running server that lets `postgres` in; otherwise installs Debian's, trusts 127.0.0.1
# and starts (or reloads) it.
if ! psql -h 127.0.0.1 -p 5432 -U postgres -d postgres -tAc 'select 1' >/dev/null 2>&1; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  if ! ls /etc/postgresql/*/main/pg_hba.conf >/dev/null 2>&1; then
    echo "setup: installing PostgreSQL"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq postgresql >/dev/null
  fi
  ver="$(ls /etc/postgresql | sort -V | tail -n1)"
  hba="/etc/postgresql/$ver/main/pg_hba.conf"
  if ! $SUDO grep -Eq '^host[[:space:]]+all[[:space:]]+all[[:space:]]+127\.0\.0\.1/32[[:space:]]+trust' "$hba"; then
    echo "setup: trusting 127.0.0.1 in $hba"
    { echo "host all all 127.0.0.1/32 trust"; echo "local all all trust"; $SUDO cat "$hba"; } > /tmp/pg_hba.conf.new
    $SUDO mv /tmp/pg_hba.conf.new "$hba"
    $SUDO chown postgres:postgres "$hba" 2>/dev/null || true
  fi
  echo "setup: starting PostgreSQL $ver"
  $SUDO pg_ctlcluster --skip-systemctl-redirect "$ver" main start 2>/dev/null \
    || $SUDO pg_ctlcluster --skip-systemctl-redirect "$ver" main reload
  for _ in $(seq 1 60); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 0.5; done
  psql -h 127.0.0.1 -p 5432 -U postgres -d postgres -tAc 'select 1' >/dev/null
fi

# openapi-spec-validator: the node's OpenAPI document is checked by a validator we did not write
# (crates/node/tests/it/api.rs).
if ! python3 -c 'import openapi_spec_validator' >/dev/null 2>&1; then
  echo "setup: installing openapi-spec-validator"
  python3 -m pip install --quiet openapi-spec-validator 2>/dev/null \
    || python3 -m pip install --quiet --break-system-packages openapi-spec-validator
fi

# schemathesis: the node's API is fuzzed against its OpenAPI document (crates/cli/tests/it/node.rs).
if ! command -v schemathesis >/dev/null 2>&1; then
  echo "setup: installing schemathesis"
  python3 -m pip install --quiet schemathesis 2>/dev/null \
    || python3 -m pip install --quiet --break-system-packages schemathesis
fi

# axe-core (npm): the accessibility checker the browser tests run on every console page.
# Installed into tools/axe (package.json + package-lock.json committed), read from there.
if [ ! -f tools/axe/node_modules/axe-core/axe.min.js ]; then
  echo "setup: installing axe-core"
  (cd tools/axe && npm ci --silent --no-audit --no-fund)
fi
