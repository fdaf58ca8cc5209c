"""Writes tests/reference/verl_0.9.1.json: verl 0.9.1's own policy losses on random groups, the answer key of
tests/test_verl_parity.py. verl is never a dependency of the app: run this in a separate virtualenv,

    python3.11 -m venv /tmp/venv-ref && . /tmp/venv-ref/bin/activate
    pip install torch==2.13.0 && pip install --no-deps verl==0.9.1 && pip install omegaconf hydra-core \
        "tensordict<=0.10" ray numpy
    python tests/reference/make_verl_reference.py

For each case it stores the inputs (log-probabilities, advantages, the objective, loss_agg_mode and the settings
the objective resolves to in this checkout) and verl's loss and ∂loss/∂log π per token (autograd through verl's
function). The test recomputes both with gspo_viz and compares to 1e-6 relative. It also writes libraries.json:
verl's PPO trainer config keys, TRL's GRPOConfig fields, and every objective's `config --to verl/trl` mapping as the
libraries accepted it (OmegaConf in struct mode, GRPOConfig(**kwargs)); tests/test_bridge.py holds the bridge to it.
(Install trl==1.16.0 too, with --no-deps and its light imports.)
"""
import json
import math
import random
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import verl  # noqa: E402
from verl.trainer.ppo import core_algos  # noqa: E402
from verl.workers.config.actor import ActorConfig  # noqa: E402

from gspo_viz.core.aggregation import TOKEN_MODES  # noqa: E402
from gspo_viz.core.settings import Settings  # noqa: E402

NO_FLOOR = 1e9   # verl's vanilla loss always applies Dual-Clip's floor at clip_ratio_c; this c never binds

# ours → verl's loss_mode, the config built from our resolved settings, the modes verl honours for it, and whether
# verl's loss *value* is the objective (CISPO's and DPPO's are surrogates -w·A·log π: only gradients compare)
MAP = {
    "grpo": ("vanilla", lambda s: dict(clip_ratio_low=s.eps_low, clip_ratio_high=s.eps_high, clip_ratio_c=NO_FLOOR),
             TOKEN_MODES, True),
    "dual_clip": ("vanilla", lambda s: dict(clip_ratio_low=s.eps_low, clip_ratio_high=s.eps_high,
                                            clip_ratio_c=s.dual_clip_c), TOKEN_MODES, True),
    "dapo": ("vanilla", lambda s: dict(clip_ratio_low=s.eps_low, clip_ratio_high=s.eps_high, clip_ratio_c=NO_FLOOR),
             TOKEN_MODES, True),
    "dr_grpo": ("vanilla", lambda s: dict(clip_ratio_low=s.eps_low, clip_ratio_high=s.eps_high,
                                          clip_ratio_c=NO_FLOOR), TOKEN_MODES, True),
    "gspo": ("gspo", lambda s: dict(clip_ratio_low=s.eps_low, clip_ratio_high=s.eps_high), TOKEN_MODES, True),
    "gspo_token": ("gspo", lambda s: dict(clip_ratio_low=s.eps_low, clip_ratio_high=s.eps_high), TOKEN_MODES, True),
    # CISPO without a lower bound: verl clamps at 1 − clip_ratio_low, so clip_ratio_low = 1 puts it at 0
    "cispo": ("cispo", lambda s: dict(clip_ratio_low=1.0 if s.eps_low is None else s.eps_low,
                                      clip_ratio_high=s.eps_high), TOKEN_MODES, False),
    # verl's SAPO aggregates with seq-mean-token-mean whatever loss_agg_mode says; its GMPO (geo_mean) with a mean
    # over the responses (our seq-mean)
    "sapo": ("sapo", lambda s: dict(tau_pos=s.tau_pos, tau_neg=s.tau_neg), ("seq-mean-token-mean",), True),
    "gmpo": ("geo_mean", lambda s: dict(clip_ratio_low=s.gmpo_eps, clip_ratio_high=s.gmpo_eps), ("seq-mean",), True),
    # DPPO's loss value is the surrogate −A·sg[min(r, C)]·log π·mask: only gradients compare
    "dppo_tv": ("dppo_tv", lambda s: dict(clip_ratio_low=s.eps_low, clip_ratio_high=s.eps_high,
                                          clip_ratio_c=s.dppo_cap), TOKEN_MODES, False),
}
DELTAS = [0.0, math.log(1.2), math.log(0.8), math.log(1.28), math.log(1.0004), math.log(0.9997), 0.4, -0.4, 1.2]


def group(rng: random.Random) -> dict:
    G = rng.randint(2, 5)
    lengths = [rng.randint(1, 7) for _ in range(G)]
    responses = []
    for L in lengths:
        old = [rng.uniform(-3.0, -0.05) for _ in range(L)]
        new = [min(-1e-4, o + (rng.choice(DELTAS) if rng.random() < 0.3 else rng.uniform(-0.6, 0.6))) for o in old]
        responses.append({"logp_old": old, "logp_new": new, "advantage": rng.choice([rng.gauss(0, 1), 0.0, 1.0, -1.0])
                          if rng.random() < 0.3 else rng.gauss(0, 1)})
    return {"responses": responses}


def with_rollout(case: dict, rng: random.Random) -> dict:
    """The group with an inference engine's log-probs: π_old shifted by up to ±0.8 in log space (≤ 0)."""
    for r in case["responses"]:
        r["logp_rollout"] = [min(-1e-4, o + rng.uniform(-0.8, 0.8)) for o in r["logp_old"]]
    return case


def padded(case: dict, key: str, **kw) -> torch.Tensor:
    """(G, T) float64 of each response's list `key` (or, key "mask", 1 on its tokens), 0 after its end."""
    rs = case["responses"]
    T = max(len(r["logp_old"]) for r in rs)
    rows = [[1.0] * len(r["logp_old"]) if key == "mask" else r[key] for r in rs]
    return torch.tensor([row + [0.0] * (T - len(row)) for row in rows], dtype=torch.float64, **kw)


def verl_loss(case: dict) -> tuple[float, list[list[float]]]:
    rs = case["responses"]
    T = max(len(r["logp_old"]) for r in rs)
    old, new, mask = padded(case, "logp_old"), padded(case, "logp_new", requires_grad=True), padded(case, "mask")
    adv = torch.tensor([[r["advantage"]] * T for r in rs], dtype=torch.float64) * mask
    cfg = ActorConfig(strategy="fsdp", ppo_micro_batch_size_per_gpu=1, rollout_n=len(rs),
                      clip_ratio=0.2, **case["verl_config"])
    fn = core_algos.get_policy_loss_fn(case["verl_loss_mode"])
    mode = "token-mean" if case["loss_agg_mode"] == "seq-mean" else case["loss_agg_mode"]   # geo_mean ignores it
    weights = None
    rc = case.get("rollout")
    if rc:                                          # verl's own weights, as algorithm.rollout_correction makes them
        from verl.trainer.ppo.rollout_corr_helper import compute_rollout_correction_weights
        rollout = padded(case, "logp_rollout")
        threshold = rc["rollout_is_threshold"] if rc.get("rollout_is_threshold_lower") is None else \
            f"{rc['rollout_is_threshold_lower']}_{rc['rollout_is_threshold']}"
        weights, _ = compute_rollout_correction_weights(old - rollout, mask, rc["rollout_is"], threshold)
    loss, _ = fn(old_log_prob=old, log_prob=new, advantages=adv, response_mask=mask, loss_agg_mode=mode, config=cfg,
                 rollout_is_weights=weights)
    (grad,) = torch.autograd.grad(loss, new)
    return float(loss), [g[: len(r["logp_old"])].tolist() for g, r in zip(grad, rs)]


VARIANTS = [{}, {"beta": 0.04, "kl": "k1"}, {"beta": 0.04, "kl": "k2"}, {"beta": 0.04, "kl": "k3"},
            {"advantage": "mean"}, {"advantage": "rloo"}, {"dynamic_sampling": True}, {"max_tokens": 64},
            {"overlong": {"filter": True}}, {"loss_agg_mode": "seq-mean-token-sum-norm", "max_tokens": 64},
            {"rollout_is": "token"}, {"rollout_is": "sequence", "rollout_is_threshold_lower": 0.5,
                                      "rollout_is_threshold": 3.0}]


def libraries() -> dict:
    """verl's PPO trainer keys and TRL's GRPOConfig fields, and every objective's mapping (tests/test_bridge.py)
    checked by the libraries themselves: verl's overrides applied to its generated config by OmegaConf (a key that
    does not exist is an error there), TRL's keywords given to GRPOConfig(**kwargs)."""
    import dataclasses
    import os

    import trl
    from omegaconf import OmegaConf
    from trl import GRPOConfig

    from gspo_viz.core.objectives import NAMES
    from gspo_viz.core.settings import SettingsError
    from gspo_viz.scenarios import bridge
    base = OmegaConf.load(os.path.join(os.path.dirname(verl.__file__), "trainer/config/_generated_ppo_trainer.yaml"))

    def flat(d, prefix=""):
        out = []
        for k, v in d.items():
            key = f"{prefix}.{k}" if prefix else str(k)
            out += flat(v, key) if isinstance(v, dict) else [key]
        return out
    keys = flat(OmegaConf.to_container(base, resolve=False))
    checked = []
    for name in NAMES:
        for variant in VARIANTS:
            try:
                cfg = Settings.from_dict({"objective": name, **variant})
            except SettingsError:
                continue
            v, t = bridge.to_verl(cfg), bridge.to_trl(cfg)
            conf = OmegaConf.merge(base, OmegaConf.from_dotlist(bridge.as_overrides(v).splitlines()))
            OmegaConf.set_struct(base, True)
            OmegaConf.merge(base, OmegaConf.from_dotlist(bridge.as_overrides(v).splitlines()))   # struct: new keys fail
            assert all(OmegaConf.select(conf, k) == val for k, val in v.values.items())
            made = None
            if "loss_type" in t.values:
                made = dataclasses.asdict(GRPOConfig(output_dir="/tmp/trl-check", use_cpu=True, bf16=False, **t.values))
                assert all(made[k] == val for k, val in t.values.items() if k != "scale_rewards")
            checked.append({"objective": name, "variant": variant, "verl": v.values, "trl": t.values,
                            "trl_constructs": made is not None})
            OmegaConf.set_struct(base, False)
    fields = sorted(f.name for f in dataclasses.fields(GRPOConfig))
    return {"verl": verl.__version__, "trl": trl.__version__, "verl_keys": keys, "trl_fields": fields,
            "checked": checked}


def trl_vespo(case: dict) -> tuple[float, list[list[float]]]:
    """TRL 1.16's VESPO: GRPOTrainer.get_gamma_weights (its φ(W)), per-token loss −φ·A·log π, summed over the
    tokens and divided by their number (the "vespo" branch of _compute_loss, one process, no accumulation)."""
    from trl import GRPOTrainer
    rs = case["responses"]
    old, new, mask = padded(case, "logp_old"), padded(case, "logp_new", requires_grad=True), padded(case, "mask")
    adv = torch.tensor([[r["advantage"]] for r in rs], dtype=torch.float64)
    s = case["settings"]
    phi = GRPOTrainer.get_gamma_weights(adv, (new - old).detach(), mask, None, k_pos=s["vespo_k_pos"],
                                        lambda_pos=s["vespo_lambda_pos"], k_neg=s["vespo_k_neg"],
                                        lambda_neg=s["vespo_lambda_neg"])
    per_token = -phi * adv * new
    loss = (per_token * mask).sum() / mask.sum()
    (grad,) = torch.autograd.grad(loss, new)
    return float(loss), [g[: len(r["logp_old"])].tolist() for g, r in zip(grad, rs)]


def main():
    rng = random.Random(20261207)
    cases = []
    for name, (loss_mode, config, modes, value_compares) in MAP.items():
        for mode in modes:
            for _ in range(4):
                case = group(rng)
                cfg = Settings(objective=name, loss_agg_mode=mode).resolved()
                case |= {"objective": name, "loss_agg_mode": mode, "verl_loss_mode": loss_mode,
                         "verl_config": config(cfg), "value_compares": value_compares}
                case["verl_loss"], case["verl_grad"] = verl_loss(case)
                cases.append(case)
    for name, (loss_mode, config, modes, value_compares) in MAP.items():     # with rollout correction
        per_sequence = name in ("gspo", "gmpo")
        for level in ("sequence",) if per_sequence else ("token", "sequence"):
            for lower in (None, 0.5):
                made = 0
                while made < 2:
                    mode = modes[0]
                    case = with_rollout(group(rng), rng)
                    rc = {"rollout_is": level, "rollout_is_threshold": 2.0, "rollout_is_threshold_lower": lower}
                    cfg = Settings(objective=name, loss_agg_mode=mode, **rc).resolved()
                    case |= {"objective": name, "loss_agg_mode": mode, "verl_loss_mode": loss_mode,
                             "verl_config": config(cfg), "value_compares": value_compares, "rollout": rc}
                    try:
                        case["verl_loss"], case["verl_grad"] = verl_loss(case)
                    except ZeroDivisionError:       # verl's metrics divide by 0 when IcePop masks every token
                        continue
                    cases.append(case)
                    made += 1
    import trl
    trl_cases = []
    for params in ({}, {"vespo_k_pos": 1.5, "vespo_lambda_pos": 1.0, "vespo_k_neg": 4.0, "vespo_lambda_neg": 0.5}):
        for _ in range(8):
            case = group(rng)
            cfg = Settings(objective="vespo", **params).resolved()
            case |= {"objective": "vespo", "loss_agg_mode": "token-mean",
                     "settings": {k: getattr(cfg, k) for k in ("vespo_k_pos", "vespo_lambda_pos", "vespo_k_neg",
                                                              "vespo_lambda_neg")}}
            case["trl_loss"], case["trl_grad"] = trl_vespo(case)
            trl_cases.append(case)
    out = {"verl": verl.__version__, "trl": trl.__version__, "torch": torch.__version__,
           "made_by": "tests/reference/make_verl_reference.py", "cases": cases, "trl_cases": trl_cases}
    path = Path(__file__).with_name(f"verl_{verl.__version__}.json")
    path.write_text(json.dumps(out, indent=0))
    print(f"{len(cases)} cases → {path}")
    libs = libraries()
    path = Path(__file__).with_name("libraries.json")
    path.write_text(json.dumps(libs, indent=0, sort_keys=True))
    print(f"{len(libs['verl_keys'])} verl keys, {len(libs['trl_fields'])} TRL fields, {len(libs['checked'])} mappings "
          f"checked → {path}")


if __name__ == "__main__":
    main()
