#!/usr/bin/env bash
# Installs what the local stack and the test suites need, and nothing when it is all there already.
#   - node_modules (npm ci) when missing or older than package-lock.json
#   - Java 17+ for DynamoDB Local (apt-get, Debian)
#   - a project-local Python venv at .venv/ with moto[server] (SQS, EventBridge, S3, IAM, STS, ...)
#     and cfn-lint (the CloudFormation linter the infra tests run on the synthesized template),
#     Dkron's Python clients and Schemathesis (the API fuzzer)
#   - with --browser (npm test): Chromium for the web UI's browser tests (apt-get, Debian's `chromium`;
#     Playwright drives it, as its own browser download needs hosts this network does not reach)
# Silent when nothing is installed; progress lines go to stderr.
set -euo pipefail
cd "$(dirname "$0")/.."

MOTO_VERSION=5.2.5
WAITRESS_VERSION=3.0.2
CFN_LINT_VERSION=1.58.0
PYDKRON_VERSION=0.2.4
DKRON_CLI_VERSION=0.0.5
SCHEMATHESIS_VERSION=4.32.5
BROWSER=false
for arg in "$@"; do
  case "$arg" in
    --browser) BROWSER=true ;;
    *) echo "ensure-deps: unknown option $arg" >&2; exit 2 ;;
  esac
done

say() { echo "ensure-deps: $*" >&2; }

# --- node_modules -------------------------------------------------------------------------------
# npm writes node_modules/.package-lock.json at the end of every install: it is the marker.
if [[ ! -f node_modules/.package-lock.json || package-lock.json -nt node_modules/.package-lock.json ]]; then
  say "installing npm packages (npm ci)"
  ci_log=$(mktemp)
  if ! npm ci --no-audit --no-fund --loglevel=error 2>"$ci_log" >&2; then
    # `npm ci` refuses a lock file without entries for optional platform packages the registry does not
    # serve (here: Biome's non-Linux binaries), although `npm install` itself writes it that way
    # (npm/cli#9846). `npm install --no-save` installs the same pinned versions and leaves package.json
    # and package-lock.json untouched. npm ci's own complaint is shown only if that fails too.
    say "npm ci refused the lock file (npm/cli#9846); installing the same pinned versions with npm install --no-save"
    if ! npm install --no-save --no-audit --no-fund --loglevel=error >&2; then
      cat "$ci_log" >&2
      rm -f "$ci_log"
      exit 1
    fi
  fi
  rm -f "$ci_log"
  touch node_modules/.package-lock.json
fi

# --- Java 17+ -----------------------------------------------------------------------------------
# shellcheck source=lib/install.sh
source scripts/lib/install.sh
ensure_java17

# --- moto server in .venv -----------------------------------------------------------------------
if [[ ! -x .venv/bin/moto_server ]]; then
  if [[ ! -x .venv/bin/pip ]]; then
    command -v python3 >/dev/null 2>&1 || apt_install python3 python3-venv
    say "creating Python virtual environment in .venv"
    if ! python3 -m venv .venv >&2; then
      # Debian's python3 comes without ensurepip unless python3-venv is installed
      rm -rf .venv
      apt_install python3-venv
      python3 -m venv .venv >&2
    fi
  fi
  say "installing moto[server]==${MOTO_VERSION} into .venv"
  .venv/bin/pip install -q --disable-pip-version-check "moto[server]==${MOTO_VERSION}" >&2
fi

# --- waitress in .venv (local/moto-server.py serves moto with it: connections kept alive as SQS does) ---
if [[ "$(.venv/bin/python -c 'import importlib.metadata as m; print(m.version("waitress"))' 2>/dev/null)" != "${WAITRESS_VERSION}" ]]; then
  say "installing waitress==${WAITRESS_VERSION} into .venv"
  .venv/bin/pip install -q --disable-pip-version-check "waitress==${WAITRESS_VERSION}" >&2
fi

# --- cfn-lint in .venv (test/unit/infra/cfn-lint.test.ts lints the synthesized template) -----------
if [[ "$(.venv/bin/cfn-lint --version 2>/dev/null)" != "cfn-lint ${CFN_LINT_VERSION}" ]]; then
  say "installing cfn-lint==${CFN_LINT_VERSION} into .venv"
  .venv/bin/pip install -q --disable-pip-version-check "cfn-lint==${CFN_LINT_VERSION}" >&2
fi

# --- Dkron's own Python clients in .venv (test/integration/dkron-clients.test.ts drives them) ----
# pydkron brings only requests and six. The `dkron` package pins 2017 versions of requests, click and six,
# which would downgrade moto's: it goes in without them and runs on the ones moto brought.
if [[ ! -f .venv/lib/dkron-clients-${PYDKRON_VERSION}-${DKRON_CLI_VERSION} ]]; then
  say "installing Dkron's Python clients (pydkron==${PYDKRON_VERSION}, dkron==${DKRON_CLI_VERSION}) into .venv"
  .venv/bin/pip install -q --disable-pip-version-check "pydkron==${PYDKRON_VERSION}" >&2
  .venv/bin/pip install -q --disable-pip-version-check --no-deps "dkron==${DKRON_CLI_VERSION}" >&2
  touch ".venv/lib/dkron-clients-${PYDKRON_VERSION}-${DKRON_CLI_VERSION}"
fi

# --- Schemathesis in .venv (test/integration/openapi.test.ts fuzzes the local stack from /v1/openapi.json) --
if [[ "$(.venv/bin/schemathesis --version 2>/dev/null)" != "schemathesis, version ${SCHEMATHESIS_VERSION}" ]]; then
  say "installing schemathesis==${SCHEMATHESIS_VERSION} into .venv"
  .venv/bin/pip install -q --disable-pip-version-check "schemathesis==${SCHEMATHESIS_VERSION}" >&2
fi

# --- Chromium for the browser tests ------------------------------------------------------------
if [[ "$BROWSER" == true && -z "${CRONPLANE_CHROMIUM:-}" ]] && ! command -v chromium >/dev/null 2>&1; then
  apt_install chromium
fi
