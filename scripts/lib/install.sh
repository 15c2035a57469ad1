# Shared by scripts/ensure-deps.sh and scripts/ensure-brokers.sh (sourced; the caller defines `say`).

# apt-get install of Debian packages, as root or through sudo; dpkg's chatter is shown only when it fails.
apt_install() {
  if ! command -v apt-get >/dev/null 2>&1; then
    say "cannot install $* here (no apt-get): please install it"
    exit 1
  fi
  local sudo=""
  if [[ $(id -u) -ne 0 ]]; then sudo="sudo"; fi
  say "installing $* (apt-get)"
  local log
  log=$(mktemp)
  if ! { $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq \
    -o DPkg::Lock::Timeout=300 "$@"; } >"$log" 2>&1; then
    cat "$log" >&2
    rm -f "$log"
    return 1
  fi
  rm -f "$log"
}

# The major version of `java` on PATH: `java -version` prints e.g. 'openjdk version "17.0.15" 2025-04-15'
# (or "1.8.0_x" for Java 8) on stderr.
java_major() {
  local v
  v=$(java -version 2>&1 | sed -n 's/.*version "\([^"]*\)".*/\1/p' | head -n1)
  v=${v#1.}
  echo "${v%%[._-]*}"
}

# Java 17+ for DynamoDB Local and Kafka (Debian 12 has 17; newer releases only later majors, which both take).
ensure_java17() {
  if ! command -v java >/dev/null 2>&1 || [[ "$(java_major)" -lt 17 ]]; then
    apt_install openjdk-17-jre-headless || apt_install default-jre-headless
  fi
}
