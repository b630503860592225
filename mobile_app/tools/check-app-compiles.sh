#!/usr/bin/env bash
# Type-checks the Android app without the Android SDK or Gradle: aapt compiles the manifest
# and resources against an android.jar (R.java), then javac compiles the core and the app
# against that android.jar, so the core is also proven to use only APIs Android has.
# LiteRT's AAR cannot be fetched here, so litert-api-stubs/ supplies the few signatures the
# app calls. android-23.jar predates java.lang.invoke, which javac needs to resolve lambdas
# (the real build desugars them with D8), so those classes are borrowed from the running JDK.
# This is a compile check only: nothing is packaged, nothing runs.
#
#   ANDROID_JAR=/usr/lib/android-sdk/platforms/android-23/android.jar mobile_app/tools/check-app-compiles.sh
set -euo pipefail

tools="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$tools")"
android_jar="${ANDROID_JAR:-/usr/lib/android-sdk/platforms/android-23/android.jar}"
gson="${GSON_JAR:-/usr/share/java/gson.jar}"
out="${APP_CHECK_DIR:-$root/app/build/compile-check}"

for need in "$android_jar" "$gson"; do
    [ -f "$need" ] || { echo "check-app-compiles: $need missing (see mobile_app/README.md)" >&2; exit 2; }
done
command -v aapt >/dev/null || { echo "check-app-compiles: aapt missing: apt-get install aapt" >&2; exit 2; }

rm -rf "$out"
mkdir -p "$out/gen" "$out/classes/stubs" "$out/classes/core" "$out/classes/app" "$out/jdk"
java_home="$(dirname "$(dirname "$(readlink -f "$(command -v javac)")")")"
jimage extract --dir "$out/jdk" --include 'regex:/java.base/java/lang/invoke/.*' "$java_home/lib/modules"
boot="$android_jar:$out/jdk/java.base"
# AGP takes the package from `namespace`; aapt wants it in the manifest.
sed 's|<manifest |<manifest package="org.fedcart.app" |' "$root/app/src/main/AndroidManifest.xml" > "$out/AndroidManifest.xml"
aapt package -f -m -J "$out/gen" -M "$out/AndroidManifest.xml" -S "$root/app/src/main/res" -I "$android_jar"

compile() {
    local dest="$1" cp="$2"
    shift 2
    javac -source 8 -target 8 -Xlint:all,-options,-classfile -Werror -encoding UTF-8 \
        -bootclasspath "$boot" -cp "$cp" -d "$dest" "$@"
}
compile "$out/classes/stubs" "" $(find "$tools/litert-api-stubs" -name '*.java')
compile "$out/classes/core" "$gson" $(find "$root/core/src/main/java" -name '*.java')
compile "$out/classes/app" "$out/classes/core:$out/classes/stubs" \
    $(find "$root/app/src/main/java" "$out/gen" -name '*.java')
echo "check-app-compiles: app and core compile against $android_jar"
