"""Train the toy policy with any objective of the core (its fast path): rollouts, advantages, μ minibatches, metrics.

One Trainer per objective. Trainers made with the same seed start from the same weights and see the same prompts,
so objectives compared side by side differ only by their objective.
"""
from __future__ import annotations

import copy
import dataclasses
import math
import time
from dataclasses import dataclass, field
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor

from ..core import metrics as M
from ..core.advantages import group_advantages, overlong_penalty
from ..core.loss import clip_decisions, objective_loss
from ..core.objectives import NAMES as OBJECTIVE_NAMES, OBJECTIVES
from ..core.rollout import rollout_weights
from ..core.settings import Settings, SettingsError
from . import tasks
from .model import ModelConfig, ToyPolicy, positions_of


class TrainConfigError(SettingsError):
    """A training setting is invalid: `field` names it, the message says what would be valid."""


@dataclass(frozen=True)
class TrainConfig:
    """Everything a run depends on. Invalid values raise TrainConfigError naming the field."""

    objective: str = "grpo"
    task: str = "sort"                 # sort | reverse
    reward: str = "partial"            # partial | exact
    min_digits: int = 2
    max_digits: int = 3
    prompts: int = 16                  # P prompts per step
    group: int = 8                     # G responses per prompt
    minibatches: int = 4               # μ: later minibatches are off-policy
    lr: float = 1e-3
    eps_low: Optional[float] = None    # None: the objective's default
    eps_high: Optional[float] = None
    dual_clip_c: float = 3.0
    beta: float = 0.0                  # KL to the frozen initial policy
    kl: str = "k3"
    dynamic_sampling: bool = False
    overlong_filter: bool = False
    overlong_cache: int = 0            # soft overlong punishment over the last `overlong_cache` tokens (0: off)
    moe: bool = False
    n_experts: int = 4
    top_k: int = 1
    routing_replay: bool = False
    replay_routes: str = "rollout"     # what Routing Replay forces: the rollout's routes (R3) or, with a bf16 rollout,
    #                                    the old policy's routes recomputed by the trainer in float32 (R2)
    rollout_dtype: str = "float32"     # "bfloat16": sample under bf16 autocast while the trainer recomputes π_old in
    #                                    float32, a real rollout/trainer mismatch (π_rollout ≠ π_old, routes too)
    rollout_is: Optional[str] = None   # rollout correction of that mismatch (core/rollout.py): token | sequence
    rollout_is_threshold: float = 2.0
    aux_coef: float = 0.01             # weight of the MoE load-balancing term
    grad_clip: float = 1.0
    seed: int = 0

    def __post_init__(self):
        if self.objective not in OBJECTIVE_NAMES:
            raise TrainConfigError("objective", f"unknown {self.objective!r}; valid: {', '.join(OBJECTIVE_NAMES)}")
        if self.task not in tasks.TASKS:
            raise TrainConfigError("task", f"unknown {self.task!r}; valid: {', '.join(tasks.TASKS)}")
        if self.reward not in ("partial", "exact"):
            raise TrainConfigError("reward", "must be partial or exact")
        if not 1 <= self.min_digits <= self.max_digits <= 12:
            raise TrainConfigError("max_digits", "need 1 <= min_digits <= max_digits <= 12")
        if self.group < 2:
            raise TrainConfigError("group", f"a group advantage needs G >= 2 responses per prompt, got {self.group}")
        if self.prompts < 1:
            raise TrainConfigError("prompts", f"need at least 1 prompt per step, got {self.prompts}")
        if not 1 <= self.minibatches <= self.prompts * self.group:
            raise TrainConfigError("minibatches", f"μ must be in 1..P·G = {self.prompts * self.group} (the batch), "
                                                  f"got {self.minibatches}")
        if self.dual_clip_c <= 1:
            raise TrainConfigError("dual_clip_c", f"c must be > 1, got {self.dual_clip_c}")
        if not 0 < self.lr <= 1:
            raise TrainConfigError("lr", f"must be in (0, 1], got {self.lr}")
        if not 0 <= self.overlong_cache <= self.max_new:
            raise TrainConfigError("overlong_cache", f"L_cache must be in 0..max_new = {self.max_new} (the generation "
                                                     f"budget, DAPO's L_max), got {self.overlong_cache}")
        if self.routing_replay and not self.moe:
            raise TrainConfigError("routing_replay", "Routing Replay needs the MoE model (moe = true)")
        if self.rollout_dtype not in ("float32", "bfloat16"):
            raise TrainConfigError("rollout_dtype", f"must be float32 or bfloat16, got {self.rollout_dtype!r}")
        if self.replay_routes not in ("rollout", "old"):
            raise TrainConfigError("replay_routes", f"must be rollout (R3) or old (R2), got {self.replay_routes!r}")
        if self.replay_routes == "old" and not (self.routing_replay and self.rollout_dtype == "bfloat16"):
            raise TrainConfigError("replay_routes", "replaying the old policy's own routes (R2) differs from the "
                                                    "rollout's (R3) only with routing_replay and a bfloat16 rollout")
        try:
            self.settings()
        except ValueError as e:
            raise TrainConfigError(getattr(e, "field", "settings"), str(e).split(": ", 1)[-1]) from None

    @property
    def max_new(self) -> int:
        """Longest answer: the digits plus EOS."""
        return self.max_digits + 1

    def settings(self) -> Settings:
        """The core's settings for this run. An objective that reads max_tokens (Dr.GRPO's constant L_max of
        1/(G·L_max)) gets the generation budget max_new, the same every step whatever the answers' lengths."""
        budget = self.max_new if "max_tokens" in OBJECTIVES[self.objective].knobs else None
        return Settings(objective=self.objective, eps_low=self.eps_low, eps_high=self.eps_high,
                        dual_clip_c=self.dual_clip_c, beta=self.beta, kl=self.kl, max_tokens=budget,
                        rollout_is=self.rollout_is, rollout_is_threshold=self.rollout_is_threshold).resolved()

    def with_(self, **changes) -> "TrainConfig":
        return dataclasses.replace(self, **changes)


class TrainingStopped(RuntimeError):
    """A loss, gradient or the policy itself became NaN or infinite; the trainer kept its last good state."""


@dataclass
class Rollout:
    seq: Tensor            # (B, T) prompt + response, left-padded prompt, PAD after EOS
    real: Tensor           # (B, T) bool: real tokens
    resp: Tensor           # (B, T-1) float: positions of seq[:, 1:] that are response tokens (the loss mask)
    logp_old: Tensor       # (B, T-1) log π_old of seq[:, 1:] recorded while sampling
    experts: Optional[Tensor]  # (B, T-1, layers, k) experts used for each input token while sampling
    rewards: Tensor        # (B,)
    exact: Tensor          # (B,) bool
    truncated: Tensor      # (B,) bool: no EOS within max_new
    lengths: Tensor        # (B,) response lengths
    digits: list[list[int]]


def model_config(cfg: TrainConfig) -> ModelConfig:
    return ModelConfig(vocab=tasks.VOCAB, max_len=cfg.max_digits * 2 + 4, n_actions=tasks.DIGITS, eos=tasks.EOS,
                       moe=cfg.moe, n_experts=cfg.n_experts, top_k=cfg.top_k)


@torch.inference_mode()
def rollout(model: ToyPolicy, cfg: TrainConfig, prompts: tasks.Prompts, sample_gen: torch.Generator) -> Rollout:
    """Sample G responses per prompt with the KV cache, recording log-probs (and experts) as they are sampled."""
    G = cfg.group
    P, Tp = prompts.tokens.shape
    B, H = P * G, model.cfg.n_heads
    # the prompt is read once per prompt, then its keys and values are copied to its G answers' cache
    prompt_real = prompts.tokens != tasks.PAD                                 # (P, Tp)
    logits, prompt_kv, experts, _ = model(prompts.tokens, prompt_real, positions_of(prompt_real), start=Tp - 1)
    S_max = Tp + cfg.max_new - 1                                              # the last token is never read
    cache = model.new_cache_buffers(B, S_max)
    for buffers, kv in zip(cache, prompt_kv):
        for buf, t in zip(buffers, kv):
            buf[:Tp].view(Tp, P, G, H, -1).copy_(t.view(Tp, P, 1, H, -1))    # (Tp, B·H, Dh)
    tok = prompts.tokens.repeat_interleave(G, dim=0)                          # (B, Tp)
    digits = [d for d in prompts.digits for _ in range(G)]
    real = torch.zeros(B, S_max, dtype=torch.bool)                            # real tokens among the keys
    real[:, :Tp] = tok != tasks.PAD
    all_experts = [experts.repeat_interleave(G, dim=0)] if experts is not None else []
    nxt_logits = logits[:, -1].repeat_interleave(G, dim=0)                   # (B, V)
    out_tokens, out_logp = [], []
    done = torch.zeros(B, dtype=torch.bool)
    for step in range(cfg.max_new):
        if not bool(torch.isfinite(nxt_logits).all()):
            raise TrainingStopped("the policy's logits are not finite, so it cannot sample; the run stopped")
        logp_all = torch.log_softmax(nxt_logits, dim=-1)                      # (B, V)
        t = sample(logp_all.exp(), sample_gen).masked_fill_(done, tasks.PAD)
        out_tokens.append(t)
        out_logp.append(logp_all.gather(-1, t.unsqueeze(-1)).squeeze(-1).masked_fill_(done, 0.0))
        done = done | (t == tasks.EOS)
        if step == cfg.max_new - 1 or bool(done.all()):
            break
        S = Tp + step + 1                                                     # keys once t is read
        pos = real[:, :S - 1].sum(-1, keepdim=True)                           # next real position
        real[:, S - 1] = t != tasks.PAD
        logits, _, experts, _ = model(t.unsqueeze(-1), real[:, :S], pos, cache)
        if experts is not None:
            all_experts.append(experts)
        nxt_logits = logits[:, -1]
    resp = torch.stack(out_tokens, dim=1)                                     # (B, n)
    seq = torch.cat([tok, resp], dim=1)
    real_all = seq != tasks.PAD
    Tp = tok.shape[1]
    loss_mask = torch.zeros(B, seq.shape[1] - 1)
    loss_mask[:, Tp - 1:] = (resp != tasks.PAD).float()
    logp_old = torch.zeros(B, seq.shape[1] - 1)
    logp_old[:, Tp - 1:] = torch.stack(out_logp, dim=1)
    exp_in = None
    if all_experts:
        exp_in = torch.cat(all_experts, dim=1)                                # (B, Tp + n - 1, L, k)
    rewards, exact, truncated, lengths = tasks.batch_rewards(cfg.task, prompts.digits, resp, cfg.reward)
    return Rollout(seq, real_all, loss_mask, logp_old, exp_in, rewards, exact, truncated, lengths, digits)


def sample(probs: Tensor, generator: torch.Generator) -> Tensor:
    """One token per row of probs (B, V): torch.multinomial(probs, 1) as its CPU kernel draws it, argmax of p / q with
    q ~ Exp(1) (the same tokens from the same generator state), without its validity checks (the caller checked the
    logits finite)."""
    return probs.div_(torch.empty_like(probs).exponential_(generator=generator)).argmax(-1)


def sequence_logp(model: ToyPolicy, seq: Tensor, forced: Optional[Tensor] = None
                  ) -> tuple[Tensor, Optional[Tensor], Tensor, Tensor]:
    """log π(seq[:, t+1] | seq[:, :t+1]) for every t: (B, T-1); also experts, load-balancing term, entropy.

    Only from the prompt's last token on (see response_start): before it both are 0, as the prompt's tokens are given,
    not sampled, and no loss or metric reads them (the model skips what only they would need). Identical rows (answers
    sampled alike, common once the policy is sure) are computed once and shared, gradients included; not with the MoE,
    whose load balance counts every row's tokens."""
    if forced is None and not model.cfg.moe:
        rows, inverse = torch.unique(seq, dim=0, return_inverse=True)
        if len(rows) < len(seq):
            logp, experts, balance, entropy = row_logp(model, rows)
            return logp[inverse], experts, balance, entropy[inverse]
    return row_logp(model, seq, forced)


def row_logp(model: ToyPolicy, seq: Tensor, forced: Optional[Tensor] = None
             ) -> tuple[Tensor, Optional[Tensor], Tensor, Tensor]:
    """sequence_logp for every row as it is."""
    inp = seq[:, :-1]
    real = inp != tasks.PAD
    start = response_start(seq)
    logits, _, experts, balance = model(inp, real, positions_of(real), forced=forced, start=start)
    logp_all = torch.log_softmax(logits.transpose(0, 1), dim=-1)           # (T-1-start, B, V): the model's layout
    logp = logp_all.gather(-1, seq[:, start + 1:].t().unsqueeze(-1)).squeeze(-1).t()    # (B, T-1-start)
    with torch.no_grad():                                    # a metric, not part of the loss
        entropy = -(logp_all.exp() * logp_all).sum(-1).t()
    return F.pad(logp, (start, 0)), experts, balance, F.pad(entropy, (start, 0))


def response_start(seq: Tensor) -> int:
    """The input position of the prompt's last token (SEP), whose logits give the first response token: prompts are
    left-padded to one width and responses never hold SEP. 0 if seq holds no prompt."""
    at = (seq[0] == tasks.SEP).nonzero()
    return int(at[0]) if len(at) else 0


def update_metrics(objective: str, logp: Tensor, logp_old: Tensor, advantages: Tensor, mask: Tensor,
                   loss_mask: Tensor, settings: Settings, first: int) -> dict:
    """A step's clip and drift metrics, each by its one definition in core/metrics.py (as the explain path).

    logp (N, T): each updated answer's log-probs as they were when its minibatch was updated; logp_old as sampled;
    mask marks the tokens that exist, loss_mask those that take part (the metrics count these); the first `first`
    rows are the first minibatch. Keys: clip_fraction and clip_fraction_<mark> for every mark (tokens),
    seq_clip_fraction (answers), first_minibatch_clip_fraction, log_ratio_std (population std of log π_θ/π_old)
    and kl_old_new (k3 estimate of KL(π_old ‖ π_θ) per token).
    """
    codes = clip_decisions(objective, logp, logp_old, advantages, mask, settings)
    valid = loss_mask > 0
    delta = torch.where(valid, logp - logp_old, torch.zeros_like(logp))
    return M.clip_fractions(codes, valid) | {
        "seq_clip_fraction": M.seq_clip_fraction(codes, valid),
        "first_minibatch_clip_fraction": M.clip_fractions(codes[:first], valid[:first])["clip_fraction"],
        "log_ratio_std": M.log_ratio_std(delta, valid),
        "kl_old_new": M.kl_old_new(logp, logp_old, valid),
    }


def flatten_parameters(model: torch.nn.Module) -> torch.nn.Parameter:
    """One flat tensor holding every parameter of the model, each parameter now a view of its piece, and a flat
    gradient the parameters' gradients are views of (backward adds into it; the caller zeroes it). Adam and the
    gradient clipping then run one kernel on one tensor instead of one per parameter; the model computes as before."""
    params = list(model.parameters())
    flat = torch.nn.Parameter(torch.cat([p.detach().reshape(-1) for p in params]))
    flat.grad = torch.zeros_like(flat)
    offset = 0
    for p in params:
        n = p.numel()
        p.data = flat.data[offset:offset + n].view_as(p)
        p.grad = flat.grad[offset:offset + n].view_as(p)
        offset += n
    return flat


def clip_grad_norm(grad: Tensor, max_norm: float) -> Tensor:
    """torch.nn.utils.clip_grad_norm_ for one flat gradient, in place and without its per-tensor bookkeeping: scale it
    by min(1, max_norm / (‖grad‖ + 1e-6)); returns ‖grad‖ from before."""
    norm = torch.linalg.vector_norm(grad)
    grad.mul_((max_norm / (norm + 1e-6)).clamp_(max=1.0))
    return norm


HISTORY_RECENT = 1000      # a run's latest steps, one row each
HISTORY_OLDER = 1000       # at most this many rows for the older steps, each the mean of `width` consecutive steps


def merge_rows(rows: list[dict]) -> dict:
    """One row for consecutive rows of a run's history: every metric the mean over all the steps they cover (each
    row weighs its number of steps, `steps`, 1 when absent); `step` is the last step, `steps` the number."""
    n = sum(r.get("steps", 1) for r in rows)
    out = {"step": rows[-1]["step"], "steps": n}
    for key in rows[0]:
        if key not in out:
            out[key] = sum(r[key] * r.get("steps", 1) for r in rows) / n
    return out


class StepLog:
    """A run's metrics with bounded memory: one row per step for the first recent + older steps; beyond, the latest
    `recent` steps keep a row each and the steps before them are averaged into at most `older` rows of `width`
    consecutive steps (width doubles, by merging neighbouring rows, whenever they would not fit), plus one row for
    the steps not yet making a full row. Every row holds the exact mean of its steps (each metric), its last `step`,
    and `steps` (how many steps it averages) once merged. Rows cover steps 1, 2, … in order, without gaps.

    `rows` is what readers see: a list that is only ever appended to; once averaging starts, each add makes a new
    list (another thread reading the old one sees a consistent history).
    """

    def __init__(self, recent: Optional[int] = None, older: Optional[int] = None):
        recent = HISTORY_RECENT if recent is None else recent
        older = HISTORY_OLDER if older is None else older
        if recent < 1 or older < 2 or older % 2:
            raise ValueError("need recent >= 1 and an even older >= 2")
        self.recent_cap, self.older_cap = recent, older
        self.width = 1                            # steps per older row
        self._older: list[dict] = []
        self._sums: dict = {}                     # the steps that do not yet make a full older row: their sums
        self._count = 0
        self._last = 0
        self._recent: list[dict] = []
        self.rows = self._recent

    @property
    def averaged(self) -> bool:
        """Whether some rows average several steps."""
        return self.width > 1 or self._count > 1

    def add(self, row: dict) -> list[dict]:
        """Append one step's metrics; returns the rows."""
        if len(self._recent) < self.recent_cap and not self._older and not self._count:
            self._recent.append(row)                              # the reader's list: appended only
            return self.rows
        leaving = self._recent[0]
        self._recent = self._recent[1:] + [row]
        for key, value in leaving.items():
            if key != "step":
                self._sums[key] = self._sums.get(key, 0.0) + value
        self._count += 1
        self._last = leaving["step"]
        if self._count == self.width:                             # a full older row
            if len(self._older) == self.older_cap:                # no room: merge neighbours, twice as wide
                self._older = [merge_rows(self._older[i:i + 2]) for i in range(0, len(self._older), 2)]
                self.width *= 2
            if self._count == self.width:
                self._older.append(self._pending())
                self._sums, self._count = {}, 0
        self.rows = self._older + ([self._pending()] if self._count else []) + self._recent
        return self.rows

    def _pending(self) -> dict:
        out = {"step": self._last, "steps": self._count}
        out.update((key, total / self._count) for key, total in self._sums.items())
        if self._count == 1:
            del out["steps"]
        return out


@dataclass
class Trainer:
    cfg: TrainConfig
    model: ToyPolicy = field(init=False)
    reference: ToyPolicy = field(init=False)
    step_count: int = 0
    history: list = field(default_factory=list)

    def __post_init__(self):
        torch.manual_seed(self.cfg.seed)
        self.model = ToyPolicy(model_config(self.cfg))
        self.reference = copy.deepcopy(self.model).requires_grad_(False)
        self._flat = flatten_parameters(self.model)
        self.optimizer = torch.optim.Adam([self._flat], lr=self.cfg.lr, fused=True)
        self.prompt_gen = torch.Generator().manual_seed(self.cfg.seed + 1)
        self.sample_gen = torch.Generator().manual_seed(self.cfg.seed + 2)
        self.shuffle_gen = torch.Generator().manual_seed(self.cfg.seed + 3)
        self.settings = self.cfg.settings()
        self.last_rollout: Optional[Rollout] = None
        self.log = StepLog()
        self.history = self.log.rows

    def _mismatch(self, ro: Rollout, logp_rollout: Tensor, experts_old: Optional[Tensor], rc) -> dict:
        """How far the rollout's numbers are from the trainer's: mean |log π_old − log π_rollout| over the response
        tokens (0 with a float32 rollout), the fraction of tokens whose rollout weight was truncated (with rollout
        correction), and with the MoE the fraction of input tokens whose rollout routes differ from the trainer's."""
        resp = ro.resp > 0
        gap = (ro.logp_old - logp_rollout).abs()[resp]
        out = {"rollout_logp_gap": float(gap.mean()) if gap.numel() else 0.0}
        if rc is not None:
            out["rollout_truncated_fraction"] = float(rc.truncated[resp].float().mean()) if gap.numel() else 0.0
        if experts_old is not None and ro.experts is not None:
            inp_real = ro.seq[:, :-1] != tasks.PAD
            diff = (experts_old != ro.experts).any(-1).any(-1) & inp_real
            out["rollout_route_mismatch"] = float(diff.sum()) / max(float(inp_real.sum()), 1.0)
        return out

    def advantages(self, ro: Rollout) -> tuple[Tensor, Tensor, Tensor]:
        """Advantages (B,), the loss mask after filtering, and the per-group no-signal flags (P,).

        The advantages come from the shaped reward (task reward + DAPO's soft overlong punishment, eq. 13, when
        overlong_cache > 0). The no-signal flags, and so dynamic sampling, come from the task reward alone: DAPO
        eq. 11 keeps a group when 0 < #correct < G, so a group whose answers are all right (or all wrong) is dropped
        even when their lengths, through the punishment, make its shaped rewards differ.
        """
        cfg = self.cfg
        task = ro.rewards.double().view(cfg.prompts, cfg.group)                  # (P, G)
        shaped = task
        if cfg.overlong_cache:
            shaped = task + overlong_penalty(ro.lengths, cfg.max_new, cfg.overlong_cache).view(cfg.prompts, cfg.group)
        s = self.settings
        adv, _ = group_advantages(shaped, s.advantage, s.std, s.adv_eps)
        _, task_stats = group_advantages(task, s.advantage, s.std, s.adv_eps)
        no_signal = task_stats.no_signal                                        # (P,): equal task rewards
        mask = ro.resp.clone()
        if cfg.dynamic_sampling:
            mask = mask * (~no_signal).repeat_interleave(cfg.group).float().unsqueeze(-1)
        if cfg.overlong_filter:
            mask = mask * (~ro.truncated).float().unsqueeze(-1)
        return adv.view(-1).float(), mask, no_signal

    def step(self) -> dict:
        """One rollout and μ minibatch updates; returns this step's metrics (also appended to history)."""
        cfg = self.cfg
        t0 = time.perf_counter()
        # no model.eval()/train() around the rollout: the policy has no dropout or normalisation statistics, so both
        # modes compute the same, and switching them walks every module twice a step
        prompts = tasks.sample_prompts(cfg.prompts, cfg.min_digits, cfg.max_digits, self.prompt_gen)
        bf16 = cfg.rollout_dtype == "bfloat16"
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            ro = rollout(self.model, cfg, prompts, self.sample_gen)
        logp_rollout, experts_old = ro.logp_old, None
        if bf16:          # the trainer's own π_old in float32 (verl's old_log_probs), and its routes (R2)
            with torch.no_grad():
                lp, experts_old, _, _ = sequence_logp(self.model, ro.seq)
                if cfg.routing_replay and cfg.replay_routes == "rollout" and ro.experts is not None:
                    # R3 replays the rollout's routes in every forward pass of the trainer, π_old's included
                    lp = sequence_logp(self.model, ro.seq, ro.experts)[0]
            ro.logp_old = lp * ro.resp
        rc = None
        if cfg.rollout_is is not None:
            rc = rollout_weights(ro.logp_old, logp_rollout, ro.resp, cfg.rollout_is, cfg.rollout_is_threshold)
        self.last_rollout = ro
        adv, mask, no_signal = self.advantages(ro)
        ref_logp = None
        if cfg.beta:
            with torch.no_grad():
                ref_logp = sequence_logp(self.reference, ro.seq)[0]
        B = ro.seq.shape[0]
        order = torch.randperm(B, generator=self.shuffle_gen)
        # the answers in minibatch order, gathered once: each minibatch is a slice
        seq, logp_old, adv_o, resp, mask_o = (t[order] for t in (ro.seq, ro.logp_old, adv, ro.resp, mask))
        ref_o = None if ref_logp is None else ref_logp[order]
        rc_o = None if rc is None else rc.weight[order]
        routes = experts_old if (cfg.replay_routes == "old" and experts_old is not None) else ro.experts
        updated, changed, changed_n, grad_norms, end = [], 0.0, 0.0, [], 0
        for k, idx in enumerate(order.chunk(cfg.minibatches)):
            rows = slice(end, end + len(idx))
            end = rows.stop
            m = mask_o[rows]
            if not m.any():
                continue
            forced = routes[idx] if (cfg.routing_replay and routes is not None) else None
            logp, experts, balance, entropy = sequence_logp(self.model, seq[rows], forced)
            # the existence mask and the loss mask: filtered answers leave the sum but still exist (Dr.GRPO's L_max
            # is read from the existence mask when max_tokens is unset)
            loss = objective_loss(cfg.objective, logp, logp_old[rows], adv_o[rows], resp[rows], self.settings,
                                  None if ref_o is None else ref_o[rows], loss_mask=m,
                                  rollout_w=None if rc_o is None else rc_o[rows])
            if cfg.moe:
                loss = loss + cfg.aux_coef * balance
            if not torch.isfinite(loss):
                raise TrainingStopped(f"step {self.step_count + 1}, minibatch {k + 1}: the loss is {loss.item()}; "
                                      "the run stopped and kept its last good state")
            self._flat.grad.zero_()
            loss.backward()
            norm = clip_grad_norm(self._flat.grad, cfg.grad_clip)
            if not torch.isfinite(norm):
                self._flat.grad.zero_()
                raise TrainingStopped(f"step {self.step_count + 1}, minibatch {k + 1}: the gradient norm is "
                                      f"{norm.item()}; the run stopped and kept its last good state")
            self.optimizer.step()
            grad_norms.append(float(norm))
            updated.append((idx, logp.detach(), entropy))
            if experts is not None and ro.experts is not None and forced is None:
                inp_real = seq[rows, :-1] != tasks.PAD
                diff = (experts != ro.experts[idx]).any(-1).any(-1)           # (mb, T-1): any layer changed
                changed += float((diff & inp_real).sum())
                changed_n += float(inp_real.sum())
        # metrics of the whole step at once: each minibatch's log-probs as they were when it was updated
        with torch.no_grad():
            if updated:
                idx = torch.cat([u[0] for u in updated])
                lp = torch.cat([u[1] for u in updated])
                ent = torch.cat([u[2] for u in updated])
                m = mask[idx]
                clip = update_metrics(cfg.objective, lp, ro.logp_old[idx], adv[idx], ro.resp[idx], m, self.settings,
                                      first=len(updated[0][0]))
                ent_mean = float(ent[m > 0].mean()) if bool((m > 0).any()) else 0.0
            else:                           # every answer was filtered out: nothing moved, no token takes part
                clip = update_metrics(cfg.objective, ro.logp_old, ro.logp_old, adv, ro.resp, torch.zeros_like(mask),
                                      self.settings, first=0)
                ent_mean = 0.0
        self.step_count += 1
        metrics = {
            "step": self.step_count,
            "reward": float(ro.rewards.mean()),
            "accuracy": float(ro.exact.float().mean()),
            **clip,
            "entropy": ent_mean,
            "response_length": float(ro.lengths.float().mean()),
            "grad_norm": sum(grad_norms) / max(len(grad_norms), 1),
            "no_signal_fraction": float(no_signal.float().mean()),
            "expert_change_fraction": (changed / changed_n) if changed_n else (0.0 if cfg.moe else math.nan),
            **self._mismatch(ro, logp_rollout, experts_old, rc),
            "step_time": time.perf_counter() - t0,
        }
        self.history = self.log.add(metrics)
        return metrics
