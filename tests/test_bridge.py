"""Settings both ways with verl 0.9.1 and TRL 1.16 (gspo_viz/scenarios/bridge.py and `python -m gspo_viz config`).

- Every key `--to verl` writes is a key of verl's PPO trainer config, and every `--to trl` keyword a GRPOConfig
  field; the mappings equal those verl (OmegaConf in struct mode) and TRL (GRPOConfig(**kwargs)) accepted when
  tests/reference/make_verl_reference.py wrote tests/reference/libraries.json.
- `--from` round-trips every objective's settings: what the read-back settings compute (loss and every token's
  gradient weight, on random groups) is what the original settings compute.
- Bad input is one line naming the key or line, exit code 2; what is only approximated is a note, exit code 0.
"""
import json
import random
from pathlib import Path

import pytest

from gspo_viz import parse_scenario, run_scenario
from gspo_viz.cli import main
from gspo_viz.core.objectives import NAMES
from gspo_viz.core.objectives.base import NO_FLOOR
from gspo_viz.core.settings import Settings, SettingsError
from gspo_viz.scenarios import bridge

LIBS = json.loads((Path(__file__).parent / "reference" / "libraries.json").read_text())
VARIANTS = [{}, {"beta": 0.04, "kl": "k1"}, {"beta": 0.04, "kl": "k2"}, {"beta": 0.04, "kl": "k3"},
            {"advantage": "mean"}, {"advantage": "rloo"}, {"dynamic_sampling": True}, {"max_tokens": 64},
            {"overlong": {"filter": True}}, {"loss_agg_mode": "seq-mean-token-sum-norm", "max_tokens": 64},
            {"rollout_is": "token"}, {"rollout_is": "sequence", "rollout_is_threshold_lower": 0.5,
                                      "rollout_is_threshold": 3.0}]


def cases():
    for name in NAMES:
        for variant in VARIANTS:
            try:
                yield name, variant, Settings.from_dict({"objective": name, **variant})
            except SettingsError:
                continue


def test_every_mapping_is_what_the_libraries_accepted():
    """The key for this test was made by the libraries themselves: a changed mapping must be checked there again
    (run tests/reference/make_verl_reference.py in its own virtualenv)."""
    assert (LIBS["verl"], LIBS["trl"]) == ("0.9.1", "1.16.0")
    checked = {(c["objective"], json.dumps(c["variant"], sort_keys=True)): c for c in LIBS["checked"]}
    verl_keys, trl_fields = set(LIBS["verl_keys"]), set(LIBS["trl_fields"])
    n = 0
    for name, variant, cfg in cases():
        v, t = bridge.to_verl(cfg), bridge.to_trl(cfg)
        assert set(v.values) <= verl_keys, set(v.values) - verl_keys
        assert set(t.values) <= trl_fields, set(t.values) - trl_fields
        c = checked[(name, json.dumps(variant, sort_keys=True))]
        assert v.values == c["verl"] and t.values == c["trl"], (name, variant)
        assert c["trl_constructs"] == ("loss_type" in t.values)
        n += 1
    assert n == len(checked) == 130
    # every objective but GMPO and DPPO (TRL 1.16 has no loss for them) has a GRPOConfig that TRL constructed, and
    # every one but VESPO (verl 0.9.1 has none) has verl overrides
    assert {c["objective"] for c in LIBS["checked"] if c["trl_constructs"]} == set(NAMES) - {"gmpo", "dppo_tv"}
    assert {c["objective"] for c in LIBS["checked"] if c["verl"]} == set(NAMES) - {"vespo"}


def group(rng: random.Random) -> dict:
    responses = []
    for _ in range(rng.randint(2, 4)):
        L = rng.randint(1, 6)
        old = [rng.uniform(-3.0, -0.05) for _ in range(L)]
        responses.append({"logp_old": old, "logp_new": [min(-1e-4, o + rng.uniform(-0.5, 0.5)) for o in old],
                          "logp_ref": [min(-1e-4, o + rng.uniform(-0.3, 0.3)) for o in old],
                          "logp_rollout": [min(-1e-4, o + rng.uniform(-0.9, 0.9)) for o in old],
                          "reward": float(rng.randint(0, 1)), "truncated": rng.random() < 0.2})
    responses[0]["reward"], responses[1]["reward"] = 1.0, 0.0        # the rewards differ: a learning signal
    return {"responses": responses}


def numbers(data: dict, settings: dict):
    ex = run_scenario(parse_scenario(dict(data, settings=settings))).explanation
    return ex.loss, ex.grad_weight.flatten().tolist()


def same(a, b):
    assert a[0] == pytest.approx(b[0], rel=1e-9, abs=1e-12)
    assert a[1] == pytest.approx(b[1], rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("library", ["verl", "trl"])
def test_from_round_trips_every_objectives_settings(library):
    """to → from gives settings that compute the same loss and gradient weights as the original, on random groups
    (for TRL with its own std ε on both sides: TRL adds 1e-4, with no key to change it)."""
    rng = random.Random(7)
    ran, other_mode = set(), set()
    for name, variant, cfg in cases():
        original = {"objective": name, **variant}
        if library == "trl":
            mapping = bridge.to_trl(cfg)
            if "loss_type" not in mapping.values or variant.get("advantage") == "rloo" \
                    or variant.get("kl") in ("k1", "k2") or variant.get("dynamic_sampling"):
                continue                                    # no counterpart: said in a note (test below)
            if mapping.values.get("loss_type") == "dr_grpo" and "max_tokens" not in variant:
                continue                                    # TRL's L_max is max_completion_length: said in a note
            original["adv_eps"] = bridge.TRL_STD_EPS
            back, _ = bridge.from_trl(mapping.values)
        else:
            if variant.get("overlong"):
                continue                                    # no key in verl: said in a note
            mapping = bridge.to_verl(cfg)
            if not mapping.values:
                continue                                    # no verl loss for it: said in a note
            back, _ = bridge.from_verl(mapping.values)
        if any("aggregates by" in n or "whatever loss_agg_mode says" in n for n in mapping.notes):
            other_mode.add((name, variant.get("loss_agg_mode")))   # the library's loss fixes its aggregation
            continue
        for _ in range(3):
            data = group(rng)
            same(numbers(data, back), numbers(data, original))
        ran.add(name)
    assert ran == set(NAMES) - ({"gmpo", "dppo_tv"} if library == "trl" else {"vespo"})
    # the losses whose aggregation the library fixes, met only under a mode other than theirs
    fixed = {"verl": {("gmpo", "seq-mean-token-sum-norm"), ("sapo", "seq-mean-token-sum-norm")},
             "trl": {("cispo", "seq-mean-token-sum-norm"), ("sapo", "seq-mean-token-sum-norm"),
                     ("vespo", "seq-mean-token-sum-norm")}}
    assert other_mode == fixed[library]


def test_what_has_no_counterpart_is_a_note():
    cfg = Settings.from_dict({"objective": "gmpo", "loss_agg_mode": "token-mean", "advantage": "rloo",
                              "std": "population", "beta": 0.1, "kl": "k1"})
    t = bridge.to_trl(cfg)
    assert "loss_type" not in t.values and "TRL 1.16 has no GMPO loss_type: no GRPOConfig runs this term" in t.notes
    assert "RLOO advantages have no GRPOConfig key (TRL has a separate RLOO trainer)" in t.notes
    assert "KL estimator k1: TRL's KL is k3 only" in t.notes
    v = bridge.to_verl(cfg)
    assert v.values["algorithm.adv_estimator"] == "rloo" and v.values["actor_rollout_ref.actor.kl_loss_type"] == "kl"
    assert any("verl's geo_mean loss averages over responses whatever loss_agg_mode says" in n for n in v.notes)
    # verl's vanilla loss is Dual-Clip: GRPO is reached with a floor that never binds, and a note says so
    g = bridge.to_verl(Settings(objective="grpo"))
    assert g.values["actor_rollout_ref.actor.clip_ratio_c"] == NO_FLOOR
    assert any("always applies Dual-Clip's floor" in n for n in g.notes)
    # verl's defaults fill what the overrides leave out: no loss_mode and no clip_ratio_c is Dual-Clip with c = 3
    settings, notes = bridge.from_verl({"actor_rollout_ref.actor.clip_ratio": 0.25, "trainer.total_epochs": 3})
    assert settings["objective"] == "dual_clip" and settings["dual_clip_c"] == 3.0
    assert settings["eps_low"] == settings["eps_high"] == 0.25 and settings["loss_agg_mode"] == "token-mean"
    assert "trainer.total_epochs: not a loss setting here, ignored" in notes
    assert any("algorithm.adv_estimator=gae has no counterpart here" in n for n in notes)


def test_trl_cispo_epsilon_high_is_the_cap_itself():
    """TRL's cispo clamps the ratio at epsilon_high (ScaleRL's ε_max), so ε_high = 0.2 here is epsilon_high = 1.2."""
    t = bridge.to_trl(Settings(objective="cispo"))
    assert t.values["loss_type"] == "cispo" and t.values["epsilon_high"] == pytest.approx(1.2)
    back, _ = bridge.from_trl({"loss_type": "cispo", "epsilon_high": 5.0})
    assert back["objective"] == "cispo" and back["eps_high"] == 4.0 and back["eps_low"] is None
    with pytest.raises(bridge.BridgeError, match="epsilon_high: TRL's cispo caps the ratio at epsilon_high itself"):
        bridge.from_trl({"loss_type": "cispo"})          # TRL's default epsilon_high is epsilon, 0.2 < 1


def run(argv, capsys):
    code = main(argv)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_config_command_both_ways(tmp_path, capsys):
    code, out, err = run(["config", "examples/default_group.json", "--to", "verl", "--objective", "gspo",
                          "--set", "loss_agg_mode=token-mean"], capsys)
    assert code == 0
    lines = out.strip().splitlines()
    assert "actor_rollout_ref.actor.policy_loss.loss_mode=gspo" in lines
    assert "actor_rollout_ref.actor.loss_agg_mode=token-mean" in lines
    assert all("=" in line and line.split("=")[0] in set(LIBS["verl_keys"]) for line in lines)
    overrides = tmp_path / "overrides.txt"
    overrides.write_text("# from a run script\n+" + "\n".join(lines) + "\n")
    code, out, err = run(["config", str(overrides), "--from", "verl"], capsys)
    assert code == 0 and json.loads(out)["settings"] == {"objective": "gspo", "eps_low": 0.0003, "eps_high": 0.0004,
                                                         "loss_agg_mode": "token-mean", "advantage": "group"}
    code, out, err = run(["config", "examples/default_group.json", "--to", "trl", "--json", "--objective", "dapo"],
                         capsys)
    assert code == 0 and json.loads(out) == {"loss_type": "dapo", "epsilon": 0.2, "epsilon_high": 0.28, "beta": 0.0,
                                             "scale_rewards": "group", "vllm_importance_sampling_correction": False}
    assert "note: adv_eps = 1e-06: TRL adds 0.0001 to the std, with no key to change it" in err
    kwargs = tmp_path / "trl.json"
    kwargs.write_text(out)
    code, out, err = run(["config", str(kwargs), "--from", "trl"], capsys)
    assert code == 0 and json.loads(out)["settings"]["eps_high"] == 0.28


@pytest.mark.parametrize("text, expected", [
    ("actor_rollout_ref.actor.clip_ratio_low=0.2\nnot an override\n", "line 2: not a key=value override"),
    ("actor_rollout_ref.actor.policy_loss.loss_mode=kl_cov\n",
     "actor_rollout_ref.actor.policy_loss.loss_mode: 'kl_cov': no objective here runs this verl loss"),
    ("actor_rollout_ref.actor.clip_ratio_high=wide\n", "actor_rollout_ref.actor.clip_ratio_high: must be a finite "
                                                       "number, got 'wide'"),
    ("actor_rollout_ref.actor.loss_agg_mode=token-sum\n", "loss_agg_mode: unknown mode 'token-sum'"),
])
def test_bad_verl_overrides_name_the_line_or_key(tmp_path, capsys, text, expected):
    f = tmp_path / "o.txt"
    f.write_text(text)
    code, out, err = run(["config", str(f), "--from", "verl"], capsys)
    assert code == 2 and out == "" and expected in err and "Traceback" not in err


def test_bad_trl_input_and_gmpo_are_refused_in_one_line(tmp_path, capsys):
    f = tmp_path / "k.json"
    f.write_text('["loss_type", "grpo"]')
    code, out, err = run(["config", str(f), "--from", "trl"], capsys)
    assert code == 2 and "must hold a JSON object of GRPOConfig keywords" in err
    f.write_text('{"loss_type": "grpo", "epsilon": NaN}')
    code, out, err = run(["config", str(f), "--from", "trl"], capsys)
    assert code == 2 and out == ""
    code, out, err = run(["config", "examples/default_group.json", "--to", "trl", "--objective", "gmpo"], capsys)
    assert code == 2 and out == "" and "TRL 1.16 has no GMPO loss_type" in err
