# Sourced by the scripts: puts the project's virtual environment (.venv, or $LOGDECK_VENV)
# first on PATH, creating it when it is missing. A distribution's own python3 refuses
# `pip install` outside one (PEP 668), so nothing is ever installed into it.
#   LOGDECK_FRESH_VENV=1   build the environment anew (CI does, so every dependency must be declared)

venv_dir=${LOGDECK_VENV:-$PWD/.venv}

venv_python() {
    local python
    python=$(command -v python3 || true)
    if [ -z "$python" ]; then
        echo "logdeck: python3 (3.11 or newer) is required" >&2
        exit 1
    fi
    if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
        echo "logdeck: python3 is $("$python" -V 2>&1); 3.11 or newer is required" >&2
        exit 1
    fi
    echo "$python"
}

install_debian_packages() {
    local sudo_cmd=""
    [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
    echo "setup: installing Debian packages: $*"
    $sudo_cmd apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "$@"
}

if [ "${LOGDECK_FRESH_VENV:-0}" = 1 ] && [ -d "$venv_dir" ]; then
    echo "setup: removing $venv_dir to build it anew"
    rm -rf "$venv_dir"
fi
export LOGDECK_FRESH_VENV=0  # built anew once: the scripts this one starts reuse it
if [ ! -x "$venv_dir/bin/python" ]; then
    python=$(venv_python)
    echo "setup: creating the virtual environment $venv_dir ($("$python" -V 2>&1))"
    if ! "$python" -m venv "$venv_dir" 2>/dev/null; then
        # Debian and Ubuntu ship venv's pip bootstrap in a package of its own.
        rm -rf "$venv_dir"
        version=$("$python" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')
        install_debian_packages "python$version-venv"
        "$python" -m venv "$venv_dir"
    fi
    "$venv_dir/bin/python" -m pip install -q --upgrade pip
fi
export VIRTUAL_ENV=$venv_dir
export PATH="$venv_dir/bin:$PATH"
hash -r
