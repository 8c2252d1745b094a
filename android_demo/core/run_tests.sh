#!/usr/bin/env bash
# Compile the pure-Java core (android_demo/core) and its JUnit4 tests with plain javac, then run
# them with org.junit.runner.JUnitCore. No Gradle, no Android SDK, no network beyond apt.
#
#   android_demo/core/run_tests.sh                      # all test classes
#   android_demo/core/run_tests.sh PolicyVectorsTest    # only some (simple or full class names)
#   RSNET_POLICY_VECTORS=/tmp/v.json android_demo/core/run_tests.sh PolicyVectorsTest
#   android_demo/core/run_tests.sh --jars                # print gson=/junit=/hamcrest= jar paths, run nothing
#
# Needs javac (JDK 17) and the Debian jars of Gson, JUnit 4 and Hamcrest; when the jars are missing
# and we are root, installs libgoogle-gson-java + junit4 with apt-get (apt-get update only when the
# install fails without it). Override jar locations with GSON_JAR / JUNIT_JAR / HAMCREST_JAR.
# The main sources are compiled with --release 8 so the core uses no API newer than Android's.
# Exit status: 0 when every test passes, non-zero otherwise.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
BUILD="$HERE/build"
JAVA_DIR=/usr/share/java

die() { echo "run_tests.sh: $*" >&2; exit 2; }

command -v javac >/dev/null || die "javac not found (install a JDK 17, e.g. apt-get install -y openjdk-17-jdk-headless)"
command -v java >/dev/null || die "java not found"

first_jar() {  # first existing file among the arguments
  local f
  for f in "$@"; do [ -f "$f" ] && { echo "$f"; return 0; }; done
  return 1
}

find_jars() {
  GSON="${GSON_JAR:-$(first_jar "$JAVA_DIR/gson.jar" $JAVA_DIR/gson-*.jar || true)}"
  JUNIT="${JUNIT_JAR:-$(first_jar "$JAVA_DIR/junit4.jar" $JAVA_DIR/junit4-*.jar $JAVA_DIR/junit-4*.jar || true)}"
  HAMCREST="${HAMCREST_JAR:-$(first_jar "$JAVA_DIR/hamcrest-core.jar" "$JAVA_DIR/hamcrest.jar" \
      "$JAVA_DIR/hamcrest-all.jar" $JAVA_DIR/hamcrest-*.jar || true)}"
}

for v in GSON_JAR JUNIT_JAR HAMCREST_JAR; do
  [ -z "${!v:-}" ] || [ -f "${!v}" ] || die "$v=${!v} is not a file"
done
find_jars
if [ -z "$GSON" ] || [ -z "$JUNIT" ] || [ -z "$HAMCREST" ]; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null; then
    echo "run_tests.sh: installing libgoogle-gson-java junit4 with apt-get" >&2
    export DEBIAN_FRONTEND=noninteractive
    if ! apt-get install -y -q libgoogle-gson-java junit4 >/dev/null 2>&1; then
      apt-get update -q >/dev/null
      apt-get install -y -q libgoogle-gson-java junit4 >/dev/null
    fi
    find_jars
  fi
fi
[ -n "$GSON" ] || die "gson jar not found in $JAVA_DIR (apt-get install -y libgoogle-gson-java, or set GSON_JAR)"
[ -n "$JUNIT" ] || die "junit4 jar not found in $JAVA_DIR (apt-get install -y junit4, or set JUNIT_JAR)"
[ -n "$HAMCREST" ] || die "hamcrest jar not found in $JAVA_DIR (apt-get install -y junit4, or set HAMCREST_JAR)"

# The one place that locates the jars: tests/test_android_core.py asks here instead of guessing.
if [ "${1:-}" = "--jars" ]; then
  printf 'gson=%s\njunit=%s\nhamcrest=%s\n' "$GSON" "$JUNIT" "$HAMCREST"
  exit 0
fi

MAIN_SRC="$HERE/src/main/java"
TEST_SRC="$HERE/src/test/java"
STAMP="$BUILD/.stamp"

# Recompile only when a source (or this script) changed since the last successful build.
if [ ! -f "$STAMP" ] || [ -n "$(find "$MAIN_SRC" "$TEST_SRC" "$HERE/run_tests.sh" -newer "$STAMP" -print -quit)" ]; then
  rm -rf "$BUILD/classes" "$BUILD/test-classes"
  mkdir -p "$BUILD/classes" "$BUILD/test-classes"
  find "$MAIN_SRC" -name '*.java' > "$BUILD/main-sources.txt"
  find "$TEST_SRC" -name '*.java' > "$BUILD/test-sources.txt"
  javac --release 8 -Xlint:-options -encoding UTF-8 -cp "$GSON" -d "$BUILD/classes" @"$BUILD/main-sources.txt"
  javac -encoding UTF-8 -cp "$BUILD/classes:$GSON:$JUNIT:$HAMCREST" -d "$BUILD/test-classes" @"$BUILD/test-sources.txt"
  touch "$STAMP"
fi

CLASSES=()
if [ "$#" -gt 0 ]; then
  for c in "$@"; do
    case "$c" in *.*) CLASSES+=("$c") ;; *) CLASSES+=("org.rsnetedge.core.$c") ;; esac
  done
else
  while IFS= read -r f; do
    c="${f#"$BUILD/test-classes/"}"; c="${c%.class}"; c="${c//\//.}"
    CLASSES+=("$c")
  done < <(find "$BUILD/test-classes" -name '*Test.class' | sort)
fi
[ "${#CLASSES[@]}" -gt 0 ] || die "no test classes found"

JAVA_PROPS=("-Drsnet.root=$ROOT")
if [ -n "${RSNET_POLICY_VECTORS:-}" ]; then JAVA_PROPS+=("-Drsnet.vectors=$RSNET_POLICY_VECTORS"); fi

exec java "${JAVA_PROPS[@]}" -cp "$BUILD/classes:$BUILD/test-classes:$GSON:$JUNIT:$HAMCREST" \
  org.junit.runner.JUnitCore "${CLASSES[@]}"
