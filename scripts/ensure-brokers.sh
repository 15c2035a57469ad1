#!/usr/bin/env bash
# Installs the message brokers that the kafka, nats and rabbitmq executors are tested against, and nothing
# when they are all there already (test/integration/brokers.test.ts runs it before starting them):
#   - Debian's nats-server and rabbitmq-server (apt-get). Only the programs are used: the tests start
#     their own servers on free 127.0.0.1 ports with temporary data; the packages' system services are
#     neither needed nor started by this script.
#   - Java 17+ (as scripts/ensure-deps.sh, for DynamoDB Local) and Apache Kafka's broker: the jars of
#     org.apache.kafka:kafka_2.13 and its runtime dependencies from Maven Central, resolved by Maven
#     (apt-get's `maven` when it is missing) into .cache/kafka/<version>/libs (git-ignored). KRaft mode
#     needs nothing else: no ZooKeeper, no Kafka distribution tarball.
# Prints the absolute path of the Kafka libs directory on stdout (the only thing it prints there);
# progress lines go to stderr, and only when something is installed. Concurrent runs wait for each other.
set -euo pipefail
cd "$(dirname "$0")/.."

KAFKA_VERSION=4.1.1
# Kafka logs through SLF4J 1.7; this binding sends it to Log4j 2, whose config the tests write.
LOG4J_VERSION=2.24.3
LIBS="$PWD/.cache/kafka/$KAFKA_VERSION/libs"

say() { echo "ensure-brokers: $*" >&2; }

mkdir -p .cache
exec 9>.cache/ensure-brokers.lock
flock 9

# shellcheck source=lib/install.sh
source scripts/lib/install.sh

# --- NATS and RabbitMQ -----------------------------------------------------------------------------
missing=()
command -v nats-server >/dev/null 2>&1 || missing+=(nats-server)
[[ -x /usr/lib/rabbitmq/bin/rabbitmq-server ]] || missing+=(rabbitmq-server)
if [[ ${#missing[@]} -gt 0 ]]; then apt_install "${missing[@]}"; fi

# --- Java 17+ ------------------------------------------------------------------------------------
ensure_java17

# --- Kafka's jars --------------------------------------------------------------------------------
if [[ ! -f "$LIBS/.complete" ]]; then
  command -v mvn >/dev/null 2>&1 || apt_install maven
  say "fetching Apache Kafka ${KAFKA_VERSION} (org.apache.kafka:kafka_2.13 and its runtime dependencies) from Maven Central"
  work=$(mktemp -d "$PWD/.cache/kafka-fetch.XXXXXX")
  trap 'rm -rf "$work"' EXIT
  cat >"$work/pom.xml" <<EOF
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>local.cronplane</groupId>
  <artifactId>kafka-broker-for-tests</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.apache.kafka</groupId>
      <artifactId>kafka_2.13</artifactId>
      <version>${KAFKA_VERSION}</version>
    </dependency>
    <dependency>
      <groupId>org.apache.logging.log4j</groupId>
      <artifactId>log4j-slf4j-impl</artifactId>
      <version>${LOG4J_VERSION}</version>
    </dependency>
  </dependencies>
</project>
EOF
  # A throw-away local repository: the copies in libs/ are all that is kept.
  if ! mvn -q -B -f "$work/pom.xml" -Dmaven.repo.local="$work/m2" \
    dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$work/libs" >"$work/mvn.log" 2>&1; then
    cat "$work/mvn.log" >&2
    exit 1
  fi
  ls "$work/libs/kafka_2.13-${KAFKA_VERSION}.jar" >/dev/null
  rm -rf "$LIBS"
  mkdir -p "$(dirname "$LIBS")"
  mv "$work/libs" "$LIBS"
  ls "$LIBS" >"$LIBS/.complete"
fi

echo "$LIBS"
