#!/usr/bin/env bash
# Builds the Java worker from Debian's packages only: protoc and Debian's grpc-java plugin
# generate the classes of protos/hyperdial/v1 (and of proto/error_info.proto beside this
# script), javac compiles them with src/main/java against the jars in /usr/share/java.
#
#   examples/java/build.sh [OUT]     # OUT: default examples/java/build (ignored by git)
#
# Afterwards OUT/classes holds the classes and OUT/classpath the run-time class path:
#
#   java -cp "$(cat OUT/classpath)" dev.hyperdial.examples.Worker --help
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
OUT="${1:-$HERE/build}"
JARS="${HYPERDIAL_JAVA_JARS:-/usr/share/java}"
PLUGIN="${HYPERDIAL_GRPC_JAVA_PLUGIN:-/usr/bin/grpc_java_plugin}"

# Every apt package the build and the run need; named in full when anything is missing.
PACKAGES="openjdk-17-jdk-headless protobuf-compiler protobuf-compiler-grpc-java-plugin \
libgrpc-java libprotobuf-java libguava-java libgoogle-common-protos-java libnetty-java \
libperfmark-java libgoogle-gson-java libgeronimo-annotation-1.3-spec-java"

# The gRPC API, stubs and core with its Netty transport; protobuf and the google.rpc classes;
# guava, perfmark and gson, which grpc-core uses; and javax.annotation.Generated, which the
# generated stubs carry and Java 11+ no longer ships (Debian: the Geronimo JSR-250 jar).
JARS_USED="grpc-api grpc-stub grpc-core grpc-netty grpc-protobuf grpc-protobuf-lite grpc-context \
protobuf proto-google-common-protos guava perfmark-api gson geronimo-annotation-1.3-spec \
netty-buffer netty-codec netty-codec-http netty-codec-http2 netty-codec-socks netty-common \
netty-handler netty-handler-proxy netty-resolver netty-transport \
netty-transport-native-unix-common"

missing=()
for tool in java javac protoc; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("command $tool")
done
[ -x "$PLUGIN" ] || missing+=("$PLUGIN")
for jar in $JARS_USED; do
  [ -f "$JARS/$jar.jar" ] || missing+=("$JARS/$jar.jar")
done
if [ "${#missing[@]}" -gt 0 ]; then
  {
    echo "examples/java/build.sh: missing ${missing[*]}"
    echo "install them with: apt-get update && apt-get install -y $PACKAGES"
  } >&2
  exit 2
fi

classpath() {
  local jar out=""
  for jar in "$@"; do out="$out${out:+:}$JARS/$jar.jar"; done
  printf '%s' "$out"
}

rm -rf "$OUT/gen" "$OUT/classes"
mkdir -p "$OUT/gen" "$OUT/classes"

protoc -I "$ROOT/protos" -I "$HERE/proto" \
  --plugin=protoc-gen-grpc-java="$PLUGIN" \
  --java_out="$OUT/gen" --grpc-java_out="$OUT/gen" \
  "$ROOT"/protos/hyperdial/v1/*.proto "$HERE/proto/error_info.proto"

# shellcheck disable=SC2086
CP="$(classpath $JARS_USED)"
find "$OUT/gen" "$HERE/src/main/java" -name '*.java' >"$OUT/sources.txt"
if ! javac -encoding UTF-8 -nowarn -d "$OUT/classes" -cp "$CP" @"$OUT/sources.txt"; then
  echo "examples/java/build.sh: javac failed" >&2
  exit 1
fi

printf '%s:%s\n' "$OUT/classes" "$CP" >"$OUT/classpath"
echo "built $OUT/classes; run: java -cp \"\$(cat $OUT/classpath)\" dev.hyperdial.examples.Worker"
