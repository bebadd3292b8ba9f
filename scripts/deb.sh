#!/usr/bin/env bash
# Builds the Debian packages (debian/) into build/deb/: "make deb".
#
# dpkg-buildpackage runs in a copy of the checkout, build/deb/src, so that
# "debian/rules clean" and the build never touch the working tree.  The
# copy holds the files git tracks or would track, as they are in the
# working tree (uncommitted changes are packaged, ignored outputs are
# not), less t/, test/, bench/, demo/ and .ci/.  The packages land in
# build/deb/.  A second run with the same inputs only says so; rm -rf
# build/deb forces a rebuild.
#
#   JOBS=2                    parallel jobs (dpkg-buildpackage -J)
#   ENT_DEB_VERSION=0.1.0+1   package version (a changelog entry is added
#                             in the copy; default: debian/changelog's)
#   DEB_BUILD_OPTIONS=nocheck skip the load test of the built modules
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
out="$top/build/deb"
src="$out/src"
jobs=${JOBS:-2}

mkdir -p "$top/build"
exec 9>"$top/build/.deb.lock"
flock 9

# the files that make the packages, NUL-separated: the tree without its
# tests, benchmarks, demo and CI (which no package ships or builds from)
files() {
    if git -C "$top" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
        git -C "$top" ls-files -z -co --exclude-standard -- . \
                ':!t/' ':!test/' ':!bench/' ':!demo/' ':!.ci/' |
            while IFS= read -r -d '' f; do
                [ -e "$top/$f" ] || [ -L "$top/$f" ] || continue
                printf '%s\0' "$f"
            done
    else
        (cd "$top" && find . \( -path ./.git -o -path ./build -o \
             -path ./bin -o -path ./.state -o -path ./t -o -path ./test \
             -o -path ./bench -o -path ./demo -o -path ./.ci \) -prune \
             -o \( -type f -o -type l \) ! -name '*.so' ! -name '*.o' \
             -printf '%P\0')
    fi
}

new="$top/build/.deb-src.new"
rm -rf "$new"
mkdir -p "$new"
(cd "$top" && files | tar --null -T - -cf -) | tar -C "$new" -xf -

# what the packages are made of: the copy, the nginx they are for, the
# version and build options
stamp=$( {
    (cd "$new" && find . -type f -print0 | sort -z | xargs -0 sha256sum)
    echo "${ENT_DEB_VERSION:-} ${DEB_BUILD_OPTIONS:-}"
    dpkg-query -W -f='${Version}\n' nginx-dev 2>/dev/null || true
} | sha256sum | cut -d' ' -f1)

if [ -f "$out/.stamp" ] && [ "$(cat "$out/.stamp")" = "$stamp" ] \
   && ls "$out"/*.deb >/dev/null 2>&1; then
    rm -rf "$new"
    echo "deb: build/deb is up to date"
    ls "$out"/*.deb
    exit 0
fi

rm -rf "$out"
mkdir -p "$out"
mv "$new" "$src"

if [ -n "${ENT_DEB_VERSION:-}" ]; then
    cl="$src/debian/changelog"
    {
        printf 'ngx-ent (%s) UNRELEASED; urgency=medium\n\n' \
            "$ENT_DEB_VERSION"
        printf '  * Built by make deb from %s.\n\n' \
            "$(git -C "$top" describe --always --dirty 2>/dev/null \
               || echo 'a source tree')"
        printf ' -- %s  %s\n\n' \
            "$(sed -n 's/^ -- \(.*>\)  .*/\1/p' "$cl" | head -1)" \
            "$(date -R)"
        cat "$cl"
    } > "$cl.new"
    mv "$cl.new" "$cl"
fi

# the build dependencies (debhelper, nginx-dev for dh-sequence-nginx, the
# libraries): scripts/deps.sh installs them when something is missing
if ! (cd "$src" && dpkg-checkbuilddeps >/dev/null 2>&1); then
    bash "$top/scripts/deps.sh" >&2
fi

log="$out/build.log"
echo "deb: dpkg-buildpackage in build/deb/src (log: build/deb/build.log)"
if ! (cd "$src" && dpkg-buildpackage -us -uc -b -J"$jobs") >"$log" 2>&1
then
    tail -40 "$log" >&2
    echo "deb: dpkg-buildpackage failed, see $log" >&2
    exit 1
fi

echo "$stamp" > "$out/.stamp"
ls "$out"/*.deb
