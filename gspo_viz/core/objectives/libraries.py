"""verl's and TRL's own names that the objectives' mappings (to_verl, to_trl, ...) and scenarios/bridge.py share.

Several of TRL's loss_type values and verl's adv_estimator values are spelt like objectives here ("grpo",
"dr_grpo", "cispo"), so they live beside the objectives' definitions rather than in code that must not branch on an
objective's name (tests/test_registry.py)."""

# TRL 1.16 (GRPOConfig.loss_type): its PPO-clip losses, and the aggregation each loss_type applies (it couples the
# two: trl/trainer/grpo_trainer.py, _compute_loss)
TRL_PPO_LOSSES = ("grpo", "bnpo", "dapo", "dr_grpo", "luspo")
TRL_LOSS_BY_MODE = {"seq-mean-token-mean": "grpo", "seq-mean": "grpo", "token-mean": "dapo",
                    "seq-mean-token-sum": "luspo", "seq-mean-token-sum-norm": "dr_grpo"}
TRL_MODE_BY_LOSS = {"grpo": "seq-mean-token-mean", "bnpo": "token-mean", "dapo": "token-mean",
                    "luspo": "seq-mean-token-sum", "dr_grpo": "seq-mean-token-sum-norm", "cispo": "token-mean",
                    "sapo": "seq-mean-token-mean", "vespo": "token-mean"}
TRL_BUDGET_LOSS = "dr_grpo"         # the loss_type that divides by max_completion_length (Dr.GRPO's L_max)

# verl 0.9 (algorithm.adv_estimator): the group z-score (or mean-centring when norm_adv_by_std_in_grpo is false),
# and leave-one-out
VERL_GROUP_ESTIMATOR = "grpo"
VERL_RLOO_ESTIMATOR = "rloo"
