"""`modelplane plan`: tables, JSON, residency from the manifest, exit codes, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from modelplane import cli

DATA = Path(__file__).parent / "data" / "cli"
FLEET = str(DATA / "fleet.yaml")


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(["plan", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_table_shows_the_shape_and_the_rejected(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "-f", str(DATA / "slm.yaml"), "--fleet", FLEET)
    assert code == 0
    assert err == ""
    assert "team-a/support-bot" in out
    assert "SLM  1x nvidia-l4  TP 1  PP 1" in out
    assert "$0.80 per replica-hour" in out
    assert "regions     eu-west-1, us-east-1" in out
    assert "team-a/big" in out
    assert "LLM  4x nvidia-h100-80gb  TP 4" in out
    assert "NotCheapest" in out
    assert "NVIDIA-GeForce-RTX-4090" in out  # unknown products are reported, not fatal


def test_json_has_one_object_per_deployment(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "-f", str(DATA / "slm.yaml"), "--fleet", FLEET, "-o", "json")
    assert code == 0
    objs = [json.loads(line) for line in out.splitlines()]
    assert [o["name"] for o in objs] == ["support-bot", "big"]
    slm = objs[0]
    for key in (
        "class", "accelerator", "gpusPerReplica", "tensorParallel", "pipelineParallel", "nodesPerReplica",
        "weightsGiB", "kvCacheTokens", "estTimePerOutputTokenMs", "costPerReplicaHour", "regions", "rejected",
    ):  # fmt: skip
        assert key in slm
    assert (slm["class"], slm["accelerator"], slm["gpusPerReplica"]) == ("SLM", "nvidia-l4", 1)
    assert slm["namespace"] == "team-a"
    assert slm["costPerReplicaHour"] == "0.80"
    assert slm["regions"] == ["eu-west-1", "us-east-1"]
    assert {r["reason"] for r in slm["rejected"]} == {"NotCheapest"}


def test_config_prices_change_the_choice(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        capsys,
        "-f",
        str(DATA / "slm.yaml"),
        "--fleet",
        FLEET,
        "--config",
        str(DATA / "config.yaml"),
        "-o",
        "json",
    )
    assert code == 0
    assert json.loads(out.splitlines()[0])["accelerator"] == "nvidia-h100-80gb"


def test_without_fleet_the_default_fleet_is_used(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "-f", str(DATA / "slm.yaml"), "-o", "json")
    assert code == 0
    big = json.loads(out.splitlines()[1])
    assert big["accelerator"] == "amd-mi300x"  # one 8-GPU node of every type: MI300X holds 70B alone
    assert len(big["rejected"]) == 9


def test_namespace_bound_residency_policy_filters_the_fleet(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "-f", str(DATA / "residency.yaml"), "--fleet", FLEET, "-o", "json")
    assert code == 0
    (obj,) = [json.loads(line) for line in out.splitlines()]
    assert obj["residencyPolicy"] == "eu"
    assert obj["accelerator"] == "nvidia-l4"
    assert obj["regions"] == ["eu-west-1"]
    assert [(r["accelerator"], r["reason"]) for r in obj["rejected"]] == [
        ("nvidia-h100-80gb", "NotInResidencyRegions")
    ]


def test_a_model_that_fits_nowhere_explains_why_and_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "-f", str(DATA / "residency-nofit.yaml"), "--fleet", FLEET)
    assert code == 1
    assert err == ""
    assert "NO PLAN     NoCompliantCapacity" in out
    assert "Outside the residency policy, nvidia-h100-80gb would fit" in out
    code, out, _ = run(capsys, "-f", str(DATA / "residency-nofit.yaml"), "--fleet", FLEET, "-o", "json")
    assert code == 1
    obj = json.loads(out)
    assert obj["accelerator"] is None
    assert obj["reason"] == "NoCompliantCapacity"


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["-f", "malformed.yaml"], "malformed.yaml: line 4, column 5: malformed YAML"),
        (
            ["-f", "unknown-model.yaml"],
            "unknown-model.yaml: spec.model.architecture: model 'acme/mystery-13b'",
        ),
        (
            ["-f", "bad-precision.yaml"],
            "bad-precision.yaml: spec.model.precision: deepseek-ai/DeepSeek-V3 cannot",
        ),
        (
            ["-f", "bad-accelerator.yaml"],
            "bad-accelerator.yaml: spec.resources.accelerators[1]: unknown accelerator",
        ),
        (
            ["-f", "missing-policy.yaml"],
            "missing-policy.yaml: spec.placement.residency: residency policy mars",
        ),
        (["-f", "no-such-file.yaml"], "no-such-file.yaml: cannot read"),
        (["-f", "slm.yaml", "--fleet", "no-such-fleet.yaml"], "no-such-fleet.yaml: cannot read"),
        (["-f", "slm.yaml", "--fleet", "slm.yaml"], "slm.yaml: no Node objects"),
        (
            ["-f", "slm.yaml", "--config", "malformed.yaml"],
            "malformed.yaml: line 4, column 5: malformed YAML",
        ),
        (["-f", "fleet.yaml"], "fleet.yaml: no ModelDeployment"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    capsys: pytest.CaptureFixture[str], args: list[str], expected: str
) -> None:
    argv = [str(DATA / a) if a.endswith(".yaml") else a for a in args]
    code, out, err = run(capsys, *argv)
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1
    assert err.startswith("error: ")
    assert expected in err
    assert "Traceback" not in err


def test_subcommands_register_in_one_place() -> None:
    assert set(cli.SUBCOMMANDS) >= {"plan"}
    parser = cli.build_parser()
    args = parser.parse_args(["plan", "-f", "x.yaml"])
    assert args.func is cli.plan_command
    assert args.output == "table"
