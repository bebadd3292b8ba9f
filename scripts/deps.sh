#!/usr/bin/env bash
# Installs, with apt, everything ngx_ent needs to build, run and test.
# Idempotent: a second run installs nothing and takes a second.
#
#   scripts/deps.sh            build + run + test dependencies
#   scripts/deps.sh --source   also the nginx source tree (SANITIZE=1, NGINX_SRC=)
set -euo pipefail

pkgs=(
    nginx nginx-dev
    build-essential pkg-config clang libclang-rt-dev
    libpq-dev libhiredis-dev libjansson-dev libxml2-dev libxmlsec1-dev
    libssl-dev zlib1g-dev libpcre2-dev xmlsec1
    simplesamlphp php-cli php-xml php-mbstring
    postgresql redis-server redis-tools
    perl libio-socket-ssl-perl openssl
    wrk curl procps psmisc iproute2 dpkg-dev ca-certificates valgrind
    gnuplot-nox apache2 libapache2-mod-auth-openidc libapache2-mod-auth-mellon
    debhelper
)

# the tests' OpenID Provider runs on node: Debian's (18) when there is none
# (a newer one, e.g. from nodesource, is kept)
if ! command -v node >/dev/null 2>&1; then
    pkgs+=(nodejs npm)
fi

missing=()
for p in "${pkgs[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null \
         | grep -q 'install ok installed'; then
        missing+=("$p")
    fi
done

if [ "$(id -u)" -ne 0 ]; then
    SUDO=sudo
else
    SUDO=
fi

if [ ${#missing[@]} -gt 0 ]; then
    echo "deps: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -qq
    # the distribution's nginx must not start a system instance on port 80
    # that outlives the install; policy-rc.d keeps services down.
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
        $SUDO chmod +x /usr/sbin/policy-rc.d
        trap '$SUDO rm -f /usr/sbin/policy-rc.d' EXIT
    fi
    $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

top=$(cd "$(dirname "$0")/.." && pwd)

# the node modules of the tests' OpenID Provider (t/lib/op), as locked
op="$top/t/lib/op"
want=$(sed -n 's/.*"oidc-provider": *"\([^"]*\)".*/\1/p' "$op/package.json")
have=$(sed -n 's/^  "version": *"\([^"]*\)".*/\1/p' \
       "$op/node_modules/oidc-provider/package.json" 2>/dev/null || true)
if [ "$want" != "$have" ]; then
    echo "deps: installing oidc-provider $want into t/lib/op" >&2
    (cd "$op" && npm ci --omit=dev --no-audit --no-fund --loglevel=error \
        >/dev/null)
fi

if [ "${1:-}" = "--source" ]; then
    dir="$top/build/src"
    ver=$(dpkg-query -W -f='${Version}' nginx | sed 's/-.*//')
    if [ ! -f "$dir/nginx-$ver/src/core/nginx.h" ]; then
        mkdir -p "$dir"
        if ! grep -rqs '^Types:.*deb-src' /etc/apt/sources.list.d/ \
           && ! grep -qs '^deb-src' /etc/apt/sources.list; then
            sed -e 's/^Types: deb$/Types: deb-src/' \
                /etc/apt/sources.list.d/debian.sources \
                | $SUDO tee /etc/apt/sources.list.d/ent-deb-src.sources >/dev/null
            $SUDO apt-get update -qq
        fi
        # only the upstream tarball is needed; the Debian parts of the
        # source package may 404 on the security pool, which is harmless.
        (cd "$dir" && apt-get source --download-only nginx >/dev/null 2>&1) \
            || true
        if [ ! -f "$dir/nginx_$ver.orig.tar.gz" ]; then
            echo "deps: could not fetch nginx_$ver.orig.tar.gz" >&2
            exit 1
        fi
        tar -C "$dir" -xzf "$dir/nginx_$ver.orig.tar.gz"
    fi
    echo "$dir/nginx-$ver"
fi
