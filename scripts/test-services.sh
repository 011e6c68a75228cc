#!/usr/bin/env bash
# Sets up what the tests need besides cargo, and exports where to find it. Source it from
# scripts/test.sh; it starts a PostgreSQL server and registers a trap that stops it.
#
#   AGNES_TEST_EXTENSION_DIR  DuckDB extension folder with the postgres extension for 1.4.4,
#                             unpacked from the PyPI package duckdb-ext-postgres
#   AGNES_TEST_PG_URL         libpq connection string of a throwaway PostgreSQL server
#   AGNES_TEST_PG_PASSWORD    the password of its user
#   AGNES_TEST_CHROMIUM       headless Chromium for the setup wizard test, Debian's chromium
#   AGNES_TEST_NODE_PATH      a node_modules folder with playwright-core, at the version that
#                             tests/browser/package-lock.json pins
#
# Tests that need one of these fail when it is missing and CI=true, and skip otherwise.

cache="${AGNES_CI_CACHE:-$HOME/.cache/agnes}"
mkdir -p "$cache"

# DuckDB extensions, installed offline from PyPI wheels so no test downloads at run time.
ext_version="1.4.4.20260205"
ext_dir="$cache/extensions"
if [[ ! -f "$ext_dir/v1.4.4/linux_amd64/postgres_scanner.duckdb_extension" ]]; then
    echo "== installing the DuckDB postgres extension $ext_version"
    wheel_dir=$(mktemp -d)
    python3 -m pip download --quiet --no-deps --dest "$wheel_dir" "duckdb-ext-postgres==$ext_version"
    python3 - "$wheel_dir" "$ext_dir" <<'PY'
import pathlib, sys, zipfile
wheels, target = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
for wheel in wheels.glob("*.whl"):
    with zipfile.ZipFile(wheel) as archive:
        for name in archive.namelist():
            if name.endswith(".duckdb_extension"):
                out = target / pathlib.Path(name).relative_to("duckdb_ext/extensions")
                out.parent.mkdir(parents=True, exist_ok=True)
                out.write_bytes(archive.read(name))
PY
    rm -rf "$wheel_dir"
fi
export AGNES_TEST_EXTENSION_DIR="$ext_dir"

# PostgreSQL from Debian's package, started on a private port and socket folder.
pg_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
if [[ -z "$pg_bin" ]]; then
    echo "== installing PostgreSQL (Debian package postgresql)"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
    pg_bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
fi

pg_root=$(mktemp -d)
pg_port=${AGNES_TEST_PG_PORT:-}
if [[ -z "$pg_port" ]]; then
    # The first free port from 55432 on, so that a server left by another run does not collide.
    pg_port=55432
    while (exec 3<>"/dev/tcp/127.0.0.1/$pg_port") 2>/dev/null; do
        pg_port=$((pg_port + 1))
    done
fi
pg_password="agnes-test-$RANDOM$RANDOM"
as_pg=()
if [[ $(id -u) -eq 0 ]]; then
    # PostgreSQL refuses to run as root; the Debian package created the postgres user.
    chown postgres "$pg_root"
    as_pg=(runuser -u postgres --)
fi
echo "$pg_password" > "$pg_root/pwfile"
chmod 600 "$pg_root/pwfile"
[[ ${#as_pg[@]} -gt 0 ]] && chown postgres "$pg_root/pwfile"
"${as_pg[@]}" "$pg_bin/initdb" --pgdata="$pg_root/data" --username=agnes --pwfile="$pg_root/pwfile" \
    --auth=scram-sha-256 >"$pg_root/initdb.log" 2>&1 || { cat "$pg_root/initdb.log"; exit 1; }
"${as_pg[@]}" "$pg_bin/pg_ctl" --pgdata="$pg_root/data" --log="$pg_root/server.log" --wait \
    --options="-p $pg_port -k $pg_root -c listen_addresses=127.0.0.1" start >/dev/null \
    || { cat "$pg_root/server.log"; exit 1; }
stop_postgres() {
    "${as_pg[@]}" "$pg_bin/pg_ctl" --pgdata="$pg_root/data" --mode=fast stop >/dev/null 2>&1 || true
    rm -rf "$pg_root"
}
trap stop_postgres EXIT
export AGNES_TEST_PG_URL="host=127.0.0.1 port=$pg_port dbname=postgres user=agnes"
export AGNES_TEST_PG_PASSWORD="$pg_password"
echo "== PostgreSQL running on 127.0.0.1:$pg_port"

# Chromium and playwright-core for the browser test of the setup wizard. Playwright drives
# Debian's Chromium and never downloads a browser of its own. Its npm package goes into the cache
# folder, outside the checkout.
if [[ ! -x /usr/bin/chromium ]]; then
    if [[ $(id -u) -eq 0 ]]; then
        echo "== installing Chromium (Debian package chromium)"
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
    else
        echo "== Chromium is missing and only root can install it; the browser test skips (fails with CI=true)"
    fi
fi
if [[ -x /usr/bin/chromium ]]; then
    export AGNES_TEST_CHROMIUM=/usr/bin/chromium
fi

browser_src="$(cd "$(dirname "${BASH_SOURCE[0]}")/../tests/browser" && pwd)"
browser_dir="$cache/browser"
if command -v npm >/dev/null; then
    if ! cmp -s "$browser_src/package-lock.json" "$browser_dir/package-lock.json" \
        || [[ ! -f "$browser_dir/node_modules/playwright-core/package.json" ]]; then
        echo "== installing playwright-core from tests/browser/package-lock.json"
        rm -rf "$browser_dir"
        mkdir -p "$browser_dir"
        cp "$browser_src/package.json" "$browser_src/package-lock.json" "$browser_dir/"
        (cd "$browser_dir" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
    fi
    export AGNES_TEST_NODE_PATH="$browser_dir/node_modules"
else
    echo "== npm is missing; the browser test skips (fails with CI=true)"
fi
