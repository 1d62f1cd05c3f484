#!/usr/bin/env bash
# Install the system programs the test suite runs for real (never mocked, never skipped):
#
#   binary                   Debian package            used by
#   prometheus, promtool     prometheus                tests/observability (scrapes, rule checks)
#   prometheus-alertmanager  prometheus-alertmanager   tests/observability (alerts reach a webhook)
#   chromium                 chromium                  tests/research, tests/optimize (reports render)
#
# Present binaries are skipped: with everything on PATH this is a few `command -v` and
# exits 0 at once. As root it runs apt-get (one `apt-get update`, then install). Not root:
# it stops at once, exit 1, with one message naming the packages and the command.
# Used by `make test` (before pytest) and `.ci/run`.
#
#   bash scripts/install-test-deps.sh           install what is missing
#   bash scripts/install-test-deps.sh --check   only report; exit 1 if something is missing
set -euo pipefail

# binary=package; chromium keeps its recommends (the sandbox and fonts the render tests draw
# with), the others are installed without them (no node-exporter and the like).
DEPS="prometheus=prometheus promtool=prometheus prometheus-alertmanager=prometheus-alertmanager chromium=chromium"
NO_RECOMMENDS="prometheus prometheus-alertmanager"

check_only=0
case "${1:-}" in
  "") ;;
  --check) check_only=1 ;;
  -h|--help) sed -n '2,/^set /{/^#/s/^# \{0,1\}//p;}' "$0"; exit 0 ;;
  *) echo "install-test-deps: unknown argument: $1 (see --help)" >&2; exit 2 ;;
esac

missing_bins=() missing_pkgs=()
for pair in $DEPS; do
  bin=${pair%%=*} pkg=${pair#*=}
  command -v "$bin" >/dev/null 2>&1 && continue
  missing_bins+=("$bin")
  case " ${missing_pkgs[*]-} " in *" $pkg "*) ;; *) missing_pkgs+=("$pkg") ;; esac
done
if [ ${#missing_pkgs[@]} -eq 0 ]; then exit 0; fi

plain=() with_recommends=()
for pkg in "${missing_pkgs[@]}"; do
  case " $NO_RECOMMENDS " in *" $pkg "*) plain+=("$pkg") ;; *) with_recommends+=("$pkg") ;; esac
done
commands=()
if [ ${#plain[@]} -gt 0 ]; then commands+=("apt-get install -y --no-install-recommends ${plain[*]}"); fi
if [ ${#with_recommends[@]} -gt 0 ]; then commands+=("apt-get install -y ${with_recommends[*]}"); fi

if [ "$check_only" = 1 ] || [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  how="as root: apt-get update"
  for c in "${commands[@]}"; do how+=" && $c"; done
  echo "install-test-deps: the tests need ${missing_bins[*]} (Debian packages: ${missing_pkgs[*]}); install them $how" >&2
  exit 1
fi

export DEBIAN_FRONTEND=noninteractive
echo "install-test-deps: installing ${missing_pkgs[*]} (missing: ${missing_bins[*]})" >&2
# No service starts during the install (the tests start their own, on free ports): a
# temporary policy-rc.d, only if the machine has none.
# (INSTALL_TEST_DEPS_POLICY_RC_D moves it, for the script's own tests.)
policy=${INSTALL_TEST_DEPS_POLICY_RC_D:-/usr/sbin/policy-rc.d}
if [ ! -e "$policy" ] && [ -d "$(dirname "$policy")" ]; then
  printf '#!/bin/sh\nexit 101\n' >"$policy"
  chmod +x "$policy"
  trap 'rm -f "$policy"' EXIT
fi
apt-get update -qq
if [ ${#plain[@]} -gt 0 ]; then apt-get install -y -qq --no-install-recommends "${plain[@]}" >/dev/null; fi
if [ ${#with_recommends[@]} -gt 0 ]; then apt-get install -y -qq "${with_recommends[@]}" >/dev/null; fi
still=()
for bin in "${missing_bins[@]}"; do command -v "$bin" >/dev/null 2>&1 || still+=("$bin"); done
if [ ${#still[@]} -gt 0 ]; then
  echo "install-test-deps: apt-get finished but ${still[*]} still not on PATH" >&2
  exit 1
fi
echo "install-test-deps: installed ${missing_pkgs[*]}" >&2
