#!/usr/bin/env bash
# The system packages the tests use besides Python's: a redis-server built with TLS, Debian's
# grpc-java toolchain for examples/java, Node.js with npm for examples/node, and Chromium with
# its chromedriver for the dashboard's browser tests. Installs only what is missing (apt-get, as
# root); with everything present it changes nothing.
set -euo pipefail

apt_packages=(
  redis-server
  # examples/java: JDK, protoc and the gRPC Java plugin, and the jars it compiles and runs with
  # (javax.annotation.Generated for Java 17 comes from the geronimo annotation jar;
  # examples/java/README.md says why each package).
  openjdk-17-jdk-headless protobuf-compiler protobuf-compiler-grpc-java-plugin libgrpc-java
  libprotobuf-java libguava-java libgoogle-common-protos-java libnetty-java libperfmark-java
  libgoogle-gson-java libgeronimo-annotation-1.3-spec-java
  # tests/dashboard: headless Chromium driven by Selenium through Debian's chromedriver (the
  # tests use /usr/bin/chromium and /usr/bin/chromedriver, and fail without them).
  chromium chromium-driver
)
missing=()
for p in "${apt_packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
# examples/node: any Node.js 18+ with npm will do (a machine may bring its own build of it).
command -v npm >/dev/null 2>&1 || missing+=(nodejs npm)
((${#missing[@]})) || exit 0

if ! command -v apt-get >/dev/null 2>&1; then
  echo "install_test_tools: no apt-get here; install the equivalents of: ${missing[*]}" >&2
  exit 1
fi
sudo=()
if ((EUID != 0)); then
  command -v sudo >/dev/null 2>&1 || {
    echo "install_test_tools: run as root to install: ${missing[*]}" >&2
    exit 1
  }
  sudo=(sudo)
fi
"${sudo[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq "${missing[@]}" >/dev/null
