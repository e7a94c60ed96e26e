#!/usr/bin/env bash
# Fahrbahn: install the Autobahn|Testsuite conformance tool `wstest`.
#
# Called by `cargo xtask autobahn` when no `wstest` is on PATH; it can also be
# run by hand:
#
#     bash xtask/scripts/install-wstest.sh [PREFIX]
#
# PREFIX defaults to ${XDG_CACHE_HOME:-~/.cache}/fahrbahn/wstest. Progress goes
# to stderr; the only line on stdout is the path of the installed `wstest`.
# When PREFIX already holds a complete install, the script just prints that
# path. FAHRBAHN_WSTEST_FORCE=1 reinstalls (downloads stay cached).
#
# wstest (PyPI: autobahntestsuite) needs Python 2.7, which Debian 12 no longer
# ships. So this script
#   1. fetches the Debian 11 (bullseye) python2.7 packages with `apt-get
#      download`, using a sources.list and apt state private to PREFIX (the
#      system apt configuration is not touched, nothing is installed into /),
#   2. unpacks them with `dpkg-deb -x` into PREFIX/root,
#   3. bootstraps pip 20.3.4 from hash-checked wheels,
#   4. installs autobahntestsuite 25.10.1 with pinned, hash-checked
#      dependencies (wsaccel is compiled with gcc when available),
#   5. writes PREFIX/bin/wstest, which binds every listening socket to
#      127.0.0.1 (set WSTEST_LISTEN=0.0.0.0 to listen on all interfaces).
#
# Requires: Debian/amd64 with apt-get, dpkg-deb, sha256sum, the Debian archive
# keyring, curl, wget or python3 for downloads, network access to a Debian
# mirror and PyPI. Optional: gcc + libc6-dev (for wsaccel, ~4x faster runs).
set -euo pipefail

readonly STAMP="fahrbahn-wstest 2: autobahntestsuite 25.10.1, autobahn 0.10.9, Twisted 19.10.0, python2.7 bullseye"
readonly DEBS=(python2.7 python2.7-minimal libpython2.7 libpython2.7-minimal
               libpython2.7-stdlib libpython2.7-dev python2.7-dev libssl1.1 libffi7)
readonly KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg
readonly PYPI_FILES=https://files.pythonhosted.org/packages

say()  { echo "[install-wstest] $*" >&2; }
fail() { echo "[install-wstest] error: $*" >&2; exit 1; }

PREFIX="${1:-${XDG_CACHE_HOME:-${HOME:?set HOME or pass PREFIX}/.cache}/fahrbahn/wstest}"

installed() {
    [ "$(cat "$PREFIX/.stamp" 2>/dev/null)" = "$STAMP" ] && [ -x "$PREFIX/bin/wstest" ]
}

if [ -z "${FAHRBAHN_WSTEST_FORCE:-}" ] && installed; then
    echo "$PREFIX/bin/wstest"
    exit 0
fi

# Never take over a directory that is not ours.
if [ -d "$PREFIX" ] && [ ! -e "$PREFIX/.fahrbahn-wstest" ] && [ -n "$(ls -A "$PREFIX")" ]; then
    fail "$PREFIX is not empty and was not created by this script"
fi
mkdir -p "$PREFIX"
PREFIX="$(cd "$PREFIX" && pwd -P)"
[ "$PREFIX" != / ] || fail "refusing to install into /"
touch "$PREFIX/.fahrbahn-wstest"

# Serialise concurrent installs into the same prefix.
exec 8>"$PREFIX/.lock"
command -v flock >/dev/null && flock 8
if [ -z "${FAHRBAHN_WSTEST_FORCE:-}" ] && installed; then
    echo "$PREFIX/bin/wstest"
    exit 0
fi
rm -f "$PREFIX/.stamp"

readonly CACHE="$PREFIX/cache"
readonly ROOT="$PREFIX/root"
readonly PY="$PREFIX/bin/python2.7"
STARTED=$SECONDS

# Download URL to FILE with whatever is available.
download() {
    local url=$1 file=$2
    if command -v curl >/dev/null; then
        curl -fsSL --retry 3 -o "$file" "$url"
    elif command -v wget >/dev/null; then
        wget -q -O "$file" "$url"
    else
        python3 - "$url" "$file" <<'EOF'
import sys, urllib.request
with urllib.request.urlopen(sys.argv[1], timeout=60) as r, open(sys.argv[2], "wb") as f:
    f.write(r.read())
EOF
    fi
}

sha256_is() { [ -f "$1" ] && [ "$(sha256sum "$1" | cut -d' ' -f1)" = "$2" ]; }

preflight() {
    local tool
    for tool in apt-get dpkg dpkg-deb sha256sum; do
        command -v "$tool" >/dev/null || fail "'$tool' is required"
    done
    [ "$(dpkg --print-architecture)" = amd64 ] || fail "only amd64 is supported"
    [ -r "$KEYRING" ] || fail "$KEYRING is missing (install debian-archive-keyring)"
    command -v curl >/dev/null || command -v wget >/dev/null || command -v python3 >/dev/null \
        || fail "curl, wget or python3 is required for downloads"

    # pip 20.3.4 bundles certificates from 2020; prefer the system store.
    CA_BUNDLE=""
    local ca
    for ca in "${PIP_CERT:-}" "${SSL_CERT_FILE:-}" /etc/ssl/certs/ca-certificates.crt; do
        if [ -n "$ca" ] && [ -r "$ca" ]; then CA_BUNDLE=$ca; break; fi
    done

    # wsaccel (C speed-ups for UTF-8 validation and masking) needs a compiler.
    CC_FOR_ACCEL=""
    if [ -z "${FAHRBAHN_WSTEST_NO_ACCEL:-}" ] && command -v gcc >/dev/null && [ -e /usr/include/stdio.h ]; then
        CC_FOR_ACCEL=gcc
    else
        say "no usable gcc: skipping wsaccel (wstest will be slower)"
    fi
}

have_debs() {
    local p
    for p in "${DEBS[@]}"; do
        compgen -G "$CACHE/debs/${p}_*.deb" >/dev/null || return 1
    done
}

fetch_debs() {
    if have_debs; then
        say "1/5 bullseye packages: cached"
        return
    fi
    local apt="$CACHE/apt" mirror
    rm -rf "$apt" "$CACHE/debs"
    mkdir -p "$apt/lists/partial" "$apt/archives/partial" "$CACHE/debs"
    local opts=(-q
        -o "Dir::Etc::SourceList=$apt/sources.list" -o "Dir::Etc::SourceParts=/dev/null"
        -o "Dir::State::Lists=$apt/lists" -o "Dir::Cache=$apt"
        -o "Dir::Cache::pkgcache=" -o "Dir::Cache::srcpkgcache=" -o "Acquire::Languages=none")
    if [ "$(id -u)" = 0 ]; then opts+=(-o "APT::Sandbox::User=root"); fi

    for mirror in ${FAHRBAHN_DEBIAN_MIRROR:-http://deb.debian.org/debian http://archive.debian.org/debian}; do
        say "1/5 bullseye packages: apt-get download from $mirror"
        echo "deb [arch=amd64 signed-by=$KEYRING] $mirror bullseye main" >"$apt/sources.list"
        if apt-get "${opts[@]}" update >"$apt/log" 2>&1 &&
            (cd "$CACHE/debs" && apt-get "${opts[@]}" download "${DEBS[@]}") >>"$apt/log" 2>&1 &&
            have_debs; then
            rm -rf "$apt/lists"
            return
        fi
        tail -n 5 "$apt/log" >&2
    done
    fail "could not download the bullseye packages (log: $apt/log)"
}

unpack() {
    say "2/5 unpacking into $ROOT"
    rm -rf "$ROOT" "$ROOT.tmp"
    mkdir -p "$ROOT.tmp" "$PREFIX/bin"
    local deb
    for deb in "$CACHE"/debs/*.deb; do dpkg-deb -x "$deb" "$ROOT.tmp"; done
    mv "$ROOT.tmp" "$ROOT"

    # The interpreter finds its prefix from the binary location; only the
    # bullseye libssl1.1/libffi7 need LD_LIBRARY_PATH (no soname clashes).
    cat >"$PY" <<'EOF'
#!/bin/sh
# Written by fahrbahn's install-wstest.sh: private Debian bullseye python2.7.
here="$(dirname "$(readlink -f -- "$0")")/.."
unset PYTHONHOME PYTHONPATH
export PYTHONNOUSERSITE=1
export LD_LIBRARY_PATH="$here/root/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
exec "$here/root/usr/bin/python2.7" "$@"
EOF
    chmod 755 "$PY"
    "$PY" -c 'import ssl, zlib, hashlib, ctypes, socket, select, json' \
        || fail "the unpacked python2.7 does not work"
}

# pip runs with --isolated so PIP_* variables and pip.conf cannot redirect it.
pip_opts() {
    PIP=(--isolated --disable-pip-version-check --no-python-version-warning
         --no-warn-script-location --cache-dir "$CACHE/pip" --timeout 60 --retries 5)
    if [ -n "$CA_BUNDLE" ]; then PIP+=(--cert "$CA_BUNDLE"); fi
}

bootstrap_pip() {
    say "3/5 bootstrapping pip"
    # name  sha256  path below files.pythonhosted.org/packages
    local wheels=(
        "pip-20.3.4-py2.py3-none-any.whl 217ae5161a0e08c0fb873858806e3478c9775caffce5168b50ec885e358c199d 27/79/8a850fe3496446ff0d584327ae44e7500daf6764ca1a382d2d02789accf7"
        "setuptools-44.0.0-py2.py3-none-any.whl 180081a244d0888b0065e18206950d603f6550721bd6f8c0a10221ed467dd78e f9/d3/955738b20d3832dfa3cd3d9b07e29a8162edb480bf988332f5e6e48ca444"
        "wheel-0.37.1-py2.py3-none-any.whl 4bdcd7d840138086126cd09254dc6195fb4fc6f01c050a1d7236f2630db1d22a 27/d6/003e593296a85fd6ed616ed962795b2f87709c3eee2bca4f6d0fe55c6d00"
    )
    local entry name sha dir files=()
    mkdir -p "$CACHE/wheels"
    for entry in "${wheels[@]}"; do
        read -r name sha dir <<<"$entry"
        if ! sha256_is "$CACHE/wheels/$name" "$sha"; then
            download "$PYPI_FILES/$dir/$name" "$CACHE/wheels/$name" || true
            sha256_is "$CACHE/wheels/$name" "$sha" || fail "download of $name failed or has a wrong hash"
        fi
        files+=("$CACHE/wheels/$name")
    done
    "$PY" "$CACHE/wheels/pip-20.3.4-py2.py3-none-any.whl/pip" install -q "${PIP[@]}" \
        --no-index --no-deps "${files[@]}" >&2
}

write_requirements() {
    # autobahntestsuite's own pins plus every transitive dependency at its last
    # release that still supports Python 2.7.
    cat <<'EOF'
autobahntestsuite==25.10.1 --hash=sha256:b57ee6b22de624a03256878ad453c9897d2ad7ee08a4c38b35ee2847637e1383
autobahn==0.10.9 --hash=sha256:3fecc1e2a26a0421128ddcfb4e577f0bc669dd65d0e0fdad1c773965cbcef75a
txaio==2.1.0 --hash=sha256:b94e3dbc83760b68955160fc61a2c34e2798f7a90c41672560f40dfd2946a864
six==1.16.0 --hash=sha256:8abb2f1d86890a2dfb989f9a77cfcfd3e47c2a354b01111771326f8aa26e0254
Twisted==19.10.0 --hash=sha256:776c65270b57ac074d5b7a471142f434b0ac5a8b39d9c974769c855c32abfd91
zope.interface==4.6.0 --hash=sha256:bad44274b151d46619a7567010f7cde23a908c6faa84b97598fd2f474a0c6891
incremental==16.10.1 --hash=sha256:cc00a35f9e9621ddec0a5e7d17271f3f26244873c4aec67eda06f2db8302e04b
constantly==15.1.0 --hash=sha256:dd2fa9d6b1a51a83f0d7dd76293d734046aa176e384bf6e33b7e44880eb37c5d
Automat==20.2.0 --hash=sha256:b6feb6455337df834f6c9962d6ccf771515b7d939bca142b29c20c2376bc6111
attrs==21.4.0 --hash=sha256:2d27e3784d7a565d36ab851fe94887c5eccd6a463168875832a1be79c82828b4
hyperlink==21.0.0 --hash=sha256:e6b14c37ecb73e89c77d78cdb4c2cc8f3fb59a885c5b3f819ff4ed80f25af1b4
idna==2.10 --hash=sha256:b97d804b1e9b523befed77c48dacec60e6dcb0b5391d57af6a65a312a90648c0
typing==3.10.0.0 --hash=sha256:c7219ef20c5fbf413b4567092adfc46fa6203cb8454eda33c3fc1afe1398a308
PyHamcrest==1.10.1 --hash=sha256:f7ae19ddfd71f11a421bcec9608d708c0fab816db98b51fdbc672a6d99a30874
pyOpenSSL==19.1.0 --hash=sha256:621880965a720b8ece2f1b2f54ea2071966ab00e2970ad2ce11d596102063504
cryptography==3.3.2 --hash=sha256:c7390f9b2119b2b43160abb34f63277a638504ef8df99f11cb52c1fda66a2e6f
cffi==1.15.1 --hash=sha256:ed9cb427ba5504c1dc15ede7d516b84757c3e3d7868ccc85121d9310d27eed0b
pycparser==2.21 --hash=sha256:8ee45429555515e1f6b185e78100aea234072576aa43ab53aefcae078162fca9
enum34==1.1.10 --hash=sha256:a98a201d6de3f2ab3db284e70a33b0f896fbf35f8086594e8c9e74b909058d53
ipaddress==1.0.23 --hash=sha256:6e0f4a39e66cb5bb9a137b00276a2eff74f93b71dcbdad6f10ff7df9d3557fcc
service-identity==18.1.0 --hash=sha256:001c0707759cb3de7e49c078a7c0c9cd12594161d3bf06b9c254fdcb1a60dc36
pyasn1==0.5.1 --hash=sha256:4439847c58d40b1d0a573d07e3856e95333f1976294494c325775aeca506eb58
pyasn1-modules==0.3.0 --hash=sha256:d3ccd6ed470d9ffbc716be08bd90efbd44d0734bc9303818f7336070984a162d
Jinja2==2.11.3 --hash=sha256:03e47ad063331dd6a3f04a43eddca8a966a26ba0c5b7207a9a9e4e08f1b29419
MarkupSafe==1.1.1 --hash=sha256:43a55c2930bbc139570ac2452adf3d70cdbb3cfe5912c71cdce1c2c6bbd9c5d1
Werkzeug==1.0.1 --hash=sha256:2de2a5db0baeae7b2d2664949077c2ac63fbd16d98da0ff71837f7d1dea3fd43
klein==17.10.0 --hash=sha256:8fcb5ee33906c9094bbf9edee19fbcb2d2cf864053def32e5d73946e8d275050
unittest2==1.1.0 --hash=sha256:13f77d0875db6d9b435e1d4f41e74ad4cc2eb6e1d5c824996092b3430f088bb8
traceback2==1.4.0 --hash=sha256:8253cebec4b19094d67cc5ed5af99bf1dba1285292226e98a31929f87a5d6b23
linecache2==1.0.0 --hash=sha256:e78be9c0a0dfcbac712fe04fbf92b96cddae80b1b842f24248214c8496f006ef
ujson==2.0.3 --hash=sha256:6217c63a36e9b26e9271e686d212397ce7fb04c07d85509dd4e2ed73493320f8
EOF
    if [ -n "$CC_FOR_ACCEL" ]; then
        echo "wsaccel==0.6.6 --hash=sha256:18efec0a7182587ba97102b4cd8df7b4f665f45d7ca36f19783f5f081ea114ea"
    fi
}

install_requirements() {
    say "4/5 installing autobahntestsuite and its pinned dependencies"
    write_requirements >"$PREFIX/requirements.txt"
    (
        # bullseye's sysconfig points at /usr/include/python2.7; use ours.
        export CFLAGS="-I$ROOT/usr/include/python2.7 -I$ROOT/usr/include ${CFLAGS:-}"
        if [ -n "$CC_FOR_ACCEL" ]; then export CC=gcc LDSHARED="gcc -pthread -shared"; fi
        "$PY" -m pip install -q "${PIP[@]}" --index-url https://pypi.org/simple --progress-bar off \
            --no-deps --require-hashes --no-build-isolation -r "$PREFIX/requirements.txt" >&2
    ) || fail "pip install failed"
}

write_launcher() {
    say "5/5 writing $PREFIX/bin/wstest"
    mkdir -p "$PREFIX/lib"
    cat >"$PREFIX/lib/wstest_main.py" <<'EOF'
# Written by fahrbahn's install-wstest.sh. Runs wstest like its console script,
# but sockets it listens on bind to WSTEST_LISTEN (default 127.0.0.1) instead
# of all interfaces.
import os
import sys

from autobahntestsuite import choosereactor  # noqa: F401 (selects epoll, like wstest)
from twisted.internet import reactor

LISTEN = os.environ.get("WSTEST_LISTEN", "127.0.0.1")
if LISTEN not in ("", "0.0.0.0", "*"):
    _tcp, _ssl = reactor.listenTCP, reactor.listenSSL

    def listen_tcp(port, factory, backlog=50, interface=""):
        return _tcp(port, factory, backlog, interface or LISTEN)

    def listen_ssl(port, factory, context_factory, backlog=50, interface=""):
        return _ssl(port, factory, context_factory, backlog, interface or LISTEN)

    reactor.listenTCP, reactor.listenSSL = listen_tcp, listen_ssl

from autobahntestsuite.wstest import run

sys.argv[0] = "wstest"
sys.exit(run())
EOF
    cat >"$PREFIX/bin/wstest" <<'EOF'
#!/bin/sh
# Written by fahrbahn's install-wstest.sh: Autobahn|Testsuite on a private python2.7.
here="$(dirname "$(readlink -f -- "$0")")/.."
exec "$here/bin/python2.7" "$here/lib/wstest_main.py" "$@"
EOF
    chmod 755 "$PREFIX/bin/wstest"
}

verify() {
    local version
    version="$("$PREFIX/bin/wstest" -a 2>&1)" || fail "wstest does not start: $version"
    case "$version" in
        *"AutobahnTestSuite 25.10.1"*) ;;
        *) fail "unexpected 'wstest -a' output: $version" ;;
    esac
    if [ -n "$CC_FOR_ACCEL" ]; then
        "$PY" -c 'import wsaccel.utf8validator' || fail "wsaccel was built but does not import"
    fi
    say "installed in $((SECONDS - STARTED))s: $(echo "$version" | tr '\n' ' ')"
}

preflight
fetch_debs
unpack
pip_opts
bootstrap_pip
install_requirements
write_launcher
verify
echo "$STAMP" >"$PREFIX/.stamp"
echo "$PREFIX/bin/wstest"
