// Versions are pinned here and in gradle/wrapper/gradle-wrapper.properties; README.md explains the choice.
plugins {
    id("com.android.application") version "8.13.2" apply false
}
