// Plain Java library with no Android imports: the app depends on it, and core/run-tests.sh
// builds and tests the same sources with javac + JUnit where no Android SDK exists.
plugins {
    `java-library`
}

java {
    sourceCompatibility = JavaVersion.VERSION_1_8
    targetCompatibility = JavaVersion.VERSION_1_8
}

dependencies {
    // Debian's libgoogle-gson-java is 2.10; run-tests.sh compiles against that jar.
    implementation("com.google.code.gson:gson:2.10")
    testImplementation("junit:junit:4.13.2")
}

tasks.test {
    // Same switch as run-tests.sh: GOLDEN_VECTORS=path/to/golden.json ./gradlew :core:test
    systemProperty("golden.vectors", System.getenv("GOLDEN_VECTORS") ?: "")
}
