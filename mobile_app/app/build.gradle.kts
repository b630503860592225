plugins {
    id("com.android.application")
}

android {
    namespace = "org.fedcart.app"
    compileSdk = 36

    defaultConfig {
        applicationId = "org.fedcart.app"
        minSdk = 24
        targetSdk = 36
        versionCode = 1
        versionName = "0.1.0"
    }

    buildTypes {
        release {
            isMinifyEnabled = false
        }
    }

    compileOptions {
        sourceCompatibility = JavaVersion.VERSION_1_8
        targetCompatibility = JavaVersion.VERSION_1_8
    }

    androidResources {
        // Keep the bundled model stored uncompressed in the APK.
        noCompress += "tflite"
    }
}

dependencies {
    implementation(project(":core"))
    // LiteRT (formerly TensorFlow Lite) with the org.tensorflow.lite.Interpreter API.
    implementation("com.google.ai.edge.litert:litert:1.4.1")
}
