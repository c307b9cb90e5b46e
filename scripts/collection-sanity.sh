#!/usr/bin/env bash
# `ansible-test sanity` on collection/ without Docker and without network: the collection is copied under
# ansible_collections/sshd_setup/gateway in a tmp dir (where ansible-test wants it), HOME points there too
# (ansible-test's venvs and cache stay out of ~/.ansible), and its get-pip download is replaced by ensurepip
# plus the machine's configured package index. Usage: scripts/collection-sanity.sh [ansible-test args...]
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
work="${SANITY_WORKDIR:-${TMPDIR:-/tmp}/sshd-setup-collection-sanity}"
target="$work/ansible_collections/sshd_setup/gateway"
rm -rf "$target"
mkdir -p "$target" "$work/home/.ansible/test/cache"
cp -r "$repo/collection/." "$target/"
# the pip version ansible-test bootstraps into its venvs (default_packages in its python_requirements.py)
pip_version="$("$repo/.venv/bin/python" - <<'PY'
import pathlib, re, ansible_test
text = (pathlib.Path(ansible_test.__file__).parent / "_internal/python_requirements.py").read_text()
print(re.search(r"pip='([0-9.]+)'", text).group(1))
PY
)"
cat > "$work/home/.ansible/test/cache/get_pip_${pip_version//./_}.py" <<'PY'
# Offline stand-in for get-pip.py: the bundled pip (ensurepip), then the requested pip from the configured index.
import subprocess, sys
subprocess.run([sys.executable, "-m", "ensurepip", "--upgrade"], check=True, stdout=subprocess.DEVNULL)
args = [a for a in sys.argv[1:] if a not in ("--no-setuptools", "--no-wheel")]
sys.exit(subprocess.run([sys.executable, "-m", "pip", "install", *args]).returncode)
PY
cd "$target"
HOME="$work/home" exec "$repo/.venv/bin/ansible-test" sanity --python 3.11 "$@"
