#!/usr/bin/env bash
# Compiles the app's JVM core (main + tests) with javac and runs them with JUnit 4, without
# Gradle or the Android SDK, so the pre/post-processing and model-update logic is checked on
# any machine with a JDK and Debian's junit4 + libgoogle-gson-java packages.
#
#   mobile_app/core/run-tests.sh [--golden PATH [--model PATH]] [--signed PATH]
#
# With --golden (or GOLDEN_VECTORS=PATH) the golden-vector test checks this Java code against
# the vectors `fedcart export --tflite --golden PATH` wrote; a missing file then fails the run.
# With --model (or GOLDEN_MODEL=PATH), the exported .tflite must also hash to the golden file's
# model_sha256. The app's bundled assets (app/src/main/assets, or BUNDLED_ASSETS=DIR) are
# always checked when present. With --signed (or GOLDEN_SIGNED=PATH) the signed-model test checks
# the app's signature verification against `fedcart export --tflite --signed PATH`'s fixture
# (with --model, the exported .tflite must match its signed SHA-256).
# Exits non-zero when compilation or any test fails.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
build="${CORE_BUILD_DIR:-$here/build/jvm}"
junit="${JUNIT_JAR:-/usr/share/java/junit4.jar}"
hamcrest="${HAMCREST_JAR:-/usr/share/java/hamcrest-core.jar}"
gson="${GSON_JAR:-/usr/share/java/gson.jar}"
golden="${GOLDEN_VECTORS:-}"
model="${GOLDEN_MODEL:-}"
signed="${GOLDEN_SIGNED:-}"

while [ $# -gt 0 ]; do
    case "$1" in
        --golden) golden="$2"; shift 2 ;;
        --model) model="$2"; shift 2 ;;
        --signed) signed="$2"; shift 2 ;;
        *) echo "run-tests: unknown argument '$1' (use --golden PATH [--model PATH] [--signed PATH])" >&2; exit 2 ;;
    esac
done

for tool in javac java; do
    command -v "$tool" >/dev/null || { echo "run-tests: '$tool' not found: install a JDK (apt-get install default-jdk-headless)" >&2; exit 2; }
done
for jar in "$junit" "$hamcrest" "$gson"; do
    [ -f "$jar" ] || { echo "run-tests: $jar missing: apt-get install junit4 libgoogle-gson-java" >&2; exit 2; }
done
for given in "$golden" "$model" "$signed"; do
    if [ -n "$given" ] && [ ! -f "$given" ]; then
        echo "run-tests: '$given' does not exist" >&2
        exit 2
    fi
done
if [ -n "$model" ] && [ -z "$golden" ]; then
    echo "run-tests: --model needs --golden (the file holding its model_sha256)" >&2
    exit 2
fi

rm -rf "$build"
mkdir -p "$build/main" "$build/test"
# --release 8: the same source must build for Android, whose toolchain reads Java 8 bytecode APIs.
javac --release 8 -Xlint:all -Werror -encoding UTF-8 -cp "$gson" -d "$build/main" \
    $(find "$here/src/main/java" -name '*.java')
javac --release 8 -Xlint:all -Werror -encoding UTF-8 -cp "$build/main:$gson:$junit:$hamcrest" -d "$build/test" \
    $(find "$here/src/test/java" -name '*.java')

classes=$(cd "$here/src/test/java" && find . -name '*Test.java' | sed -e 's|^\./||' -e 's|\.java$||' -e 's|/|.|g' | sort)
java -Dgolden.vectors="$golden" -Dgolden.model="$model" -Dgolden.signed="$signed" -Dbundled.assets="${BUNDLED_ASSETS:-$(dirname "$here")/app/src/main/assets}" -cp "$build/test:$build/main:$gson:$junit:$hamcrest" \
    org.junit.runner.JUnitCore $classes
