"""The experiment: three scenarios on one held-out set, the report folder, the resource meters, the CLI."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from typer.testing import CliRunner

from cartnet import e2e, weights
from cartnet.identity import Identity
from child_cart.synth import weather as synth_weather
from fedcart.cli import app
from fedcart.experiment.harness import ExperimentConfig, load_fleet, run_experiment
from fedcart.experiment.report import write_report
from fedcart.experiment.resources import Meter, energy_available, profile_codec

PNGS = ("confusion.png", "roc.png", "loss.png", "threshold.png", "resources.png")


def _run(config: ExperimentConfig):
    fleet = load_fleet(config)
    ticks: list[str] = []
    results = run_experiment(config, fleet, ticks.append)
    return fleet, results, ticks


def test_all_three_scenarios_with_real_rounds_are_judged_on_the_same_held_out_rows(tmp_path) -> None:
    config = ExperimentConfig(
        task="iot-intrusion-forest", carts=3, rounds=2, rows_per_cart=300, k=2, energy=False, out_dir=tmp_path
    )
    fleet, results, ticks = _run(config)
    assert ticks == ["federated"] * 2 + ["centralized"] * 2 + ["local"] * 2
    held_out = sum(len(d.x_val) for d in fleet.datasets)
    for result in results.values():
        counts = [r.metrics["tn"] + r.metrics["fp"] + r.metrics["fn"] + r.metrics["tp"] for r in result.rounds]
        assert counts == [held_out] * 2 and len(result.detection.y_true) == held_out
        assert all(r.metrics["loss"] > 0 for r in result.rounds)
        assert sorted(result.detection.y_true.tolist()) == sorted(
            np.concatenate([d.y_val[:, 0] for d in fleet.datasets]).tolist()
        )
    federated = results["federated"]
    assert federated.bytes_sent > 0 and federated.bytes_received > 0 and results["local"].bytes_sent == 0
    assert results["centralized"].bytes_sent > 0, "centralizing uploads the rows"
    assert len(federated.nodes) == 3 * 2
    assert {n.record.aggregator for n in federated.nodes} == {"tree_union"}
    assert all(n.codec.compressed_bytes < n.codec.serialized_bytes for n in federated.nodes)

    report = write_report(config, fleet, results)
    files = {p.name for p in report.path.iterdir()}
    assert {
        "config.json",
        "rounds.json",
        "rounds.csv",
        "nodes.json",
        "nodes.csv",
        "summary.json",
        "summary.csv",
        "summary.md",
        *PNGS,
    } <= files
    for name in PNGS:
        assert (report.path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with (report.path / "rounds.csv").open() as handle:
        assert len(list(csv.DictReader(handle))) == 3 * 2
    summary = json.loads((report.path / "summary.json").read_text())
    assert [row["scenario"] for row in summary["summary"]] == ["federated", "centralized", "local"]
    assert [row["stage"] for row in summary["compression"]][-1].startswith("encrypted")
    assert {"train", "exchange", "aggregate", "serialize", "compress", "encrypt", "decrypt"} <= set(summary["phases"])
    text = (report.path / "summary.md").read_text()
    assert "| federated |" in text and "ratio_to_previous" in text


def test_an_anomaly_baseline_alone_writes_a_report_without_federated_parts(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("IOT_ANOMALY_LAYERS", "[16,8]")
    config = ExperimentConfig(
        carts=2, rounds=1, epochs=1, rows_per_cart=250, scenarios=("local",), energy=False, out_dir=tmp_path
    )
    fleet, results, _ = _run(config)
    assert fleet.task.layers == (16, 8)
    assert len(results["local"].thresholds) == 2 and results["local"].thresholds[0] > 0
    report = write_report(config, fleet, results)
    assert not (report.path / "nodes.csv").exists() and (report.path / "threshold.png").exists()
    assert report.compression == [] and report.phases == {}


def test_bad_configurations_are_refused_with_a_reason() -> None:
    with pytest.raises(ValueError, match="not an IoT detection task"):
        load_fleet(ExperimentConfig(task="recommend"))
    with pytest.raises(ValueError, match="no training or no held-out rows"):
        load_fleet(ExperimentConfig(task="iot-intrusion-forest", carts=2, rows_per_cart=2))
    fleet = load_fleet(ExperimentConfig(task="iot-intrusion-forest", carts=2, rows_per_cart=100))
    with pytest.raises(ValueError, match="unknown scenario"):
        run_experiment(ExperimentConfig(task="iot-intrusion-forest", scenarios=("swarm",)), fleet, lambda name: None)


def test_the_codec_profile_follows_an_update_through_every_stage(tmp_path) -> None:
    arrays = [np.zeros((200, 50), np.float32), np.arange(100, dtype=np.float32)]
    receiver = Identity.load_or_create(tmp_path)
    profile = profile_codec(arrays, receiver, "f" * 40)
    assert profile.raw_bytes == sum(a.nbytes for a in arrays)
    assert profile.serialized_bytes == len(weights.encode(arrays, compress=False))
    assert profile.compressed_bytes == len(weights.encode(arrays, compress=True)) < profile.serialized_bytes / 10
    assert profile.sealed_bytes == len(e2e.seal(weights.encode(arrays), receiver.kx_public_key, "f" * 40))
    assert set(profile.seconds) == {"serialize", "compress", "encrypt", "decrypt", "decompress", "deserialize"}
    assert profile.compression_ratio > 10


def test_the_meter_sees_cpu_time_and_the_peak_memory_of_its_own_span() -> None:
    with Meter() as usage:
        block = np.ones(40_000_000, dtype=np.float32)
        total = float(block.sum())
        del block
    assert total == 40_000_000 and usage.cpu_seconds > 0 and usage.seconds > 0
    assert usage.peak_rss_mb > 150
    with Meter(energy=True) as second:
        sum(range(1000))
    assert second.peak_rss_mb < usage.peak_rss_mb
    assert (second.energy_kwh is None) == (not energy_available())


def test_the_cli_runs_on_a_real_format_csv_and_prints_the_summary(tmp_path) -> None:
    header = ["date", "time", "temperature", "pressure", "humidity", "label", "type"]
    rows = [r for cart in synth_weather.generate(150, carts=2, seed=9) for r in cart]
    folder = tmp_path / "ton"
    folder.mkdir()
    for station in sorted({r["device"] for r in rows}):
        with (folder / f"{station}.csv").open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(header)
            for r in rows:
                if r["device"] == station:
                    clock = f" {int(r['hour']):02d}:{int(r['hour'] % 1 * 60):02d}:00 "
                    writer.writerow(
                        [
                            "1-Apr-19",
                            clock,
                            r["temperature"],
                            r["pressure"],
                            r["humidity"],
                            r["label"],
                            "normal" if not r["label"] else r["attack"],
                        ]
                    )
    result = CliRunner().invoke(
        app,
        [
            "experiment",
            "--task",
            "iot-intrusion-forest",
            "--carts",
            "2",
            "--rounds",
            "1",
            "--scenario",
            "centralized,local",
            "--data",
            str(folder),
            "--format",
            "ton-iot",
            "--no-energy",
            "--out",
            str(tmp_path / "reports"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "centralized" in result.output and "F1" in result.output and "report:" in result.output
    assert len(list((tmp_path / "reports").iterdir())) == 1
    refused = CliRunner().invoke(app, ["experiment", "--task", "recommend"])
    assert refused.exit_code != 0
    wrong = CliRunner().invoke(app, ["experiment", "--task", "iot-anomaly", "--data", str(folder), "--format", "pcap"])
    assert wrong.exit_code == 1 and "--format must be one of" in wrong.output
