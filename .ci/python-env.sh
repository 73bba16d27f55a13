# Sourced by the CI scripts that take their tools from PyPI (deploy-check.sh, api-fuzz.sh).
#
#   python_env DIR   sets PY to DIR's venv python (made if missing), or to python3 with
#                    `pip --user` installs where no venv can be made (Debian without
#                    python3-venv)
#   pip_install ARG… `pip install` into that Python, quietly

python_env() {
  local venv=$1
  PY=""
  if [ -x "$venv/bin/python" ] && "$venv/bin/python" -c 'import sys' 2>/dev/null; then
    PY="$venv/bin/python"
  elif python3 -m venv "$venv" >/dev/null 2>&1 && "$venv/bin/python" -m pip --version >/dev/null 2>&1; then
    PY="$venv/bin/python"
  else
    if [ -f "$venv/pyvenv.cfg" ]; then rm -rf "$venv"; fi
    echo "note: cannot create a venv (Debian: apt-get install python3-venv); using pip --user"
    PY=python3
  fi
}

pip_install() {
  if [ "$PY" = python3 ]; then
    python3 -m pip install --quiet --disable-pip-version-check --user "$@" 2>/dev/null \
      || python3 -m pip install --quiet --disable-pip-version-check --user --break-system-packages "$@"
  else
    "$PY" -m pip install --quiet --disable-pip-version-check "$@"
  fi
}
