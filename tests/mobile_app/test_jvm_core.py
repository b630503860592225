"""The Android app's JVM core against fresh golden vectors from the real exporter.

The app re-implements the recommend task's pre-processing (month + profile -> input row) and
post-processing (probabilities -> top categories) in Java. Here a tiny model is trained and
exported with the real `fedcart export --tflite --golden`, then mobile_app/core/run-tests.sh
checks the Java code against those vectors, so a change on the Python side that the app does
not follow fails the build. The cart is enrolled in a swarm authority made for the test, so the
exporter also writes the signed `latest.json` a bridge would serve (`--signed`): the app's own
Ed25519 and certificate checks must believe it with the swarm key alone, and refuse it once it
is changed. JUnit runs on Debian's junit4 and gson jars, no Android SDK.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MOBILE = ROOT / "mobile_app"
RUN_TESTS = MOBILE / "core" / "run-tests.sh"
BUNDLE = MOBILE / "tools" / "bundle_model.py"
COMPILE_CHECK = MOBILE / "tools" / "check-app-compiles.sh"
JARS = {
    "junit4": Path("/usr/share/java/junit4.jar"),
    "libgoogle-gson-java": Path("/usr/share/java/gson.jar"),
}
ANDROID_JAR = Path(os.environ.get("ANDROID_JAR", "/usr/lib/android-sdk/platforms/android-23/android.jar"))


def _missing_jvm_tools() -> str:
    """Why the JVM tests cannot run here, or "" when they can."""
    missing = [tool for tool in ("javac", "java") if shutil.which(tool) is None]
    missing += [f"{package} ({jar})" for package, jar in JARS.items() if not jar.is_file()]
    return f"JVM test tools missing: {', '.join(missing)} (apt-get install default-jdk-headless junit4 libgoogle-gson-java)" if missing else ""


MISSING_JVM_TOOLS = _missing_jvm_tools()
pytestmark = pytest.mark.skipif(bool(MISSING_JVM_TOOLS), reason=MISSING_JVM_TOOLS or "JVM tools present")


def _fedcart(*args: str, cwd: Path) -> str:
    """Run the real `fedcart` CLI on the embedded store (never a MongoDB someone left in the environment)."""
    env = {**os.environ, "MONGO_URL": ""}
    cli = Path(sys.executable).with_name("fedcart")
    done = subprocess.run([str(cli), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"fedcart {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def _run_core_tests(build: Path, *args: str, assets: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CORE_BUILD_DIR": str(build)}
    if assets is not None:
        env["BUNDLED_ASSETS"] = str(assets)
    return subprocess.run(["bash", str(RUN_TESTS), *args], env=env, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(golden vectors, .tflite) from a tiny model trained and exported right now (the signed fixture beside them)."""
    work = tmp_path_factory.mktemp("mobile_export")
    cart = work / "cart"
    _fedcart("data", "synth", "--rows", "400", "--carts", "1", "--seed", "3", "--data-dir", str(cart), cwd=work)
    _fedcart("train", "--data-dir", str(cart), "--epochs", "2", "--no-progress", cwd=work)
    _fedcart("authority", "init", "--dir", str(work / "authority"), cwd=work)
    _fedcart("enrol", "--authority", str(work / "authority"), "--data-dir", str(cart), "--role", "cart", cwd=work)
    golden = work / "golden.json"
    _fedcart("export", "--tflite", "--data-dir", str(cart), "--golden", str(golden), "--signed", str(signed_of(golden)), cwd=work)
    (tflite,) = sorted((cart / "models").glob("*.tflite"))
    return golden, tflite


def signed_of(golden: Path) -> Path:
    """Where the exported fixture's signed latest.json is kept."""
    return golden.with_name("signed.json")


def test_jvm_core_reproduces_fresh_golden_vectors(exported: tuple[Path, Path], tmp_path: Path) -> None:
    golden, tflite = exported
    assets = tmp_path / "assets"
    bundled = subprocess.run([sys.executable, str(BUNDLE), "--golden", str(golden), "--tflite", str(tflite), "--assets", str(assets)],
                             capture_output=True, text=True)
    assert bundled.returncode == 0, bundled.stderr
    cases = len(json.loads(golden.read_text())["cases"])

    signed = signed_of(golden)
    done = _run_core_tests(
        tmp_path / "build", "--golden", str(golden), "--model", str(tflite), "--signed", str(signed), assets=assets
    )

    assert done.returncode == 0, done.stdout + done.stderr
    assert f"golden: {cases} cases match {golden}" in done.stdout
    assert f"golden: {tflite} verified" in done.stdout
    swarm_id = json.loads(signed.read_text())["swarm"]["swarm_id"]
    assert f"signed: {signed} verified against swarm {swarm_id}, model {tflite} matches its signed sha256" in done.stdout
    assert "OK (" in done.stdout


@pytest.mark.parametrize("change", ["manifest", "signature", "model"])
def test_a_changed_signed_fixture_fails_the_jvm_run(exported: tuple[Path, Path], tmp_path: Path, change: str) -> None:
    golden, tflite = exported
    fixture = json.loads(signed_of(golden).read_text())
    latest = fixture["latest"]
    if change == "manifest":  # one signed byte changed: the version, by one
        manifest = json.loads(base64.b64decode(latest["manifest"]))
        manifest["version"] += 1
        latest["manifest"] = base64.b64encode(json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode()).decode()
        latest["version"] += 1
    elif change == "signature":
        signature = bytearray(base64.b64decode(latest["signature"]))
        signature[5] ^= 1
        latest["signature"] = base64.b64encode(bytes(signature)).decode()
    else:
        data = bytearray(tflite.read_bytes())
        data[len(data) // 2] ^= 1
        tflite = tmp_path / "tampered.tflite"
        tflite.write_bytes(bytes(data))
    changed = tmp_path / "signed.json"
    changed.write_text(json.dumps(fixture))

    done = _run_core_tests(tmp_path / "build", "--golden", str(golden), "--model", str(tflite), "--signed", str(changed))

    assert done.returncode != 0
    failing = "GoldenVectorsTest" if change == "model" else "SignedGoldenTest"
    assert failing in done.stdout, done.stdout


def test_a_preprocessing_drift_fails_the_jvm_run(exported: tuple[Path, Path], tmp_path: Path) -> None:
    golden, _ = exported
    vectors = json.loads(golden.read_text())
    vectors["cases"][5]["input"][0] += 1e-3
    drifted = tmp_path / "drifted.json"
    drifted.write_text(json.dumps(vectors))

    done = _run_core_tests(tmp_path / "build", "--golden", str(drifted))

    assert done.returncode != 0
    assert "input[0] expected" in done.stdout


def test_a_ranking_drift_fails_the_jvm_run(exported: tuple[Path, Path], tmp_path: Path) -> None:
    golden, _ = exported
    vectors = json.loads(golden.read_text())
    top3 = vectors["cases"][0]["top3"]
    top3[0], top3[1] = top3[1], top3[0]
    drifted = tmp_path / "drifted.json"
    drifted.write_text(json.dumps(vectors))

    done = _run_core_tests(tmp_path / "build", "--golden", str(drifted))

    assert done.returncode != 0
    assert "GoldenVectorsTest" in done.stdout


def test_unit_tests_and_committed_bundled_model_pass(tmp_path: Path) -> None:
    done = _run_core_tests(tmp_path / "build")

    assert done.returncode == 0, done.stdout + done.stderr
    assert "OK (" in done.stdout


def test_bundle_tool_refuses_a_model_that_is_not_the_golden_files(exported: tuple[Path, Path], tmp_path: Path) -> None:
    golden, _ = exported
    wrong = tmp_path / "other.tflite"
    wrong.write_bytes(b"not the exported model")

    done = subprocess.run([sys.executable, str(BUNDLE), "--golden", str(golden), "--tflite", str(wrong), "--assets", str(tmp_path / "a")],
                          capture_output=True, text=True)

    assert done.returncode == 1
    assert "has sha256" in done.stderr
    assert not (tmp_path / "a").exists()


@pytest.mark.skipif(not ANDROID_JAR.is_file() or shutil.which("aapt") is None,
                    reason="android.jar or aapt missing: the app's compile check needs them (mobile_app/README.md)")
def test_android_app_compiles_against_android_jar(tmp_path: Path) -> None:
    env = {**os.environ, "ANDROID_JAR": str(ANDROID_JAR), "APP_CHECK_DIR": str(tmp_path / "check")}
    done = subprocess.run(["bash", str(COMPILE_CHECK)], env=env, capture_output=True, text=True, timeout=600)

    assert done.returncode == 0, done.stdout + done.stderr
