"""One objective, one place: every objective is declared in core/objectives/<name>.py, nothing else branches on its
name, and a new objective is one file plus one registry line (the README's recipe, carried out here)."""
import ast
import json
import sys
import types
from pathlib import Path

import pytest
import torch

import gspo_viz.core.objectives as registry
from gspo_viz.core.objectives import NAMES, OBJECTIVES
from gspo_viz.core.objectives.base import NONE, Objective, Step, Terms, Token, factor_step, logratio, n, token_adv

ROOT = Path(__file__).resolve().parents[1]
DEFINITIONS = ROOT / "gspo_viz" / "core" / "objectives"


def _name_uses(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, what) for each comparison with an objective's name and each table keyed by one."""
    found = []

    def names_in(node):
        return [c.value for c in ast.walk(node) if isinstance(c, ast.Constant) and c.value in NAMES]

    for node in ast.walk(tree):
        if isinstance(node, ast.Compare):
            hits = names_in(node)
            if hits:
                found.append((node.lineno, f"compares with {hits}"))
        elif isinstance(node, ast.Dict):
            keys = [k.value for k in node.keys if isinstance(k, ast.Constant) and k.value in NAMES]
            if keys:
                found.append((node.lineno, f"a table keyed by {keys}"))
    return sorted(found)


def test_the_scanner_finds_branches_on_names():
    # the check itself: it must catch the shapes the old code had
    old = ('if name in ("grpo", "dapo"):\n    pass\nelif name == "gspo":\n    pass\n'
           'COLORS = {"grpo": "#0072B2"}\nok = OBJECTIVES["gspo"]\n')
    assert [w for _, w in _name_uses(ast.parse(old))] == [
        "compares with ['grpo', 'dapo']", "compares with ['gspo']", "a table keyed by ['grpo']"]


def test_no_code_outside_an_objectives_definition_branches_on_its_name():
    files = [p for p in (ROOT / "gspo_viz").rglob("*.py") if DEFINITIONS not in p.parents]
    files += list((ROOT / "pages").glob("*.py")) + [ROOT / "app.py"]
    offences = []
    for path in files:
        for line, what in _name_uses(ast.parse(path.read_text(encoding="utf-8"))):
            offences.append(f"{path.relative_to(ROOT)}:{line}: {what}")
    assert not offences, "branches on an objective's name outside its definition:\n" + "\n".join(offences)


@pytest.mark.parametrize("name", NAMES)
def test_each_objective_declares_everything_in_its_own_file(name):
    obj = OBJECTIVES[name]
    assert obj.name == name and type(obj).__module__ == f"gspo_viz.core.objectives.{name}"
    assert obj.title and obj.paper and obj.color.startswith("#") and obj.dash
    assert obj.aggregation in ("token-mean", "seq-mean-token-mean", "seq-mean-token-sum-norm", "seq-mean")
    assert "arXiv" in obj.formula or "(" in obj.formula                   # the paper's formula in the docstring
    assert set(obj.marks) == set(obj.reasons)                             # every mark is explained and justified
    for knob in obj.knobs:
        assert knob in obj.defaults or knob == "max_tokens"
    # its colour is its own: no two objectives look alike
    assert [o.color for o in OBJECTIVES.values()].count(obj.color) == 1


# ------------------------------------------------------------------------------------------ the README's recipe
class HalfClip(Objective):
    """A made-up objective for the recipe: GRPO's token term with only the upper clip (no lower bound)."""
    name = "half_clip"
    title = "Half-Clip"
    paper = "made up for a test"
    color = "#123456"
    defaults = {"eps_high": 0.2}
    knobs = ("eps_high",)
    reasons = {"upper": "rose above 1 + ε_high = {hi} with A > 0"}
    marks = {"upper": "▲ A > 0 and the ratio is above 1 + ε_high: policy gradient 0"}

    def terms(self, logp, logp_old, advantages, mask, cfg):
        """min(r·A, min(r, 1+ε_high)·A) per token, aggregated as GRPO."""
        r = logratio(logp, logp_old, mask).exp()
        adv = token_adv(advantages)
        return Terms(torch.minimum(r * adv, torch.clamp(r, max=1 + cfg.eps_high) * adv), r, None)

    def clip_codes(self, delta, advantages, mask, cfg):
        return torch.where((token_adv(advantages) > 0) & (delta.exp() > 1 + cfg.eps_high), 1, NONE)

    def policy_grad(self, delta, advantages, mask, w, codes, cfg):
        return w * (codes == NONE) * delta.exp() * token_adv(advantages)

    def steps(self, tok: Token) -> list[Step]:
        g = tok.factor * tok.r * tok.A if tok.code == NONE else 0.0
        return [factor_step(tok), Step("policy gradient weight", f"{n(g)}", g)]

    def hover(self, tok: Token) -> str:
        return f"r = {tok.r:.6g}"


@pytest.fixture
def half_clip(monkeypatch):
    """Step 1: a module core/objectives/half_clip.py with OBJECTIVE = HalfClip(); step 2: its name in NAMES."""
    module = types.ModuleType("gspo_viz.core.objectives.half_clip")
    module.OBJECTIVE = HalfClip()
    monkeypatch.setitem(sys.modules, module.__name__, module)
    monkeypatch.setattr(registry, "NAMES", NAMES + ("half_clip",))
    monkeypatch.setitem(registry.OBJECTIVES, "half_clip", module.OBJECTIVE)   # what NAMES' loader would add
    yield module.OBJECTIVE


def test_a_new_objective_is_one_file_and_one_registry_line(half_clip, tmp_path, capsys):
    from gspo_viz.cli import main
    from gspo_viz.scenarios import parse_scenario, run_scenario
    from gspo_viz.views.narrate import sentence
    from gspo_viz.views.steps import hover_texts, token_steps
    data = {"responses": [{"tokens": ["a", "b"], "p_old": [0.2, 0.5], "p_new": [0.4, 0.5], "reward": 1},
                          {"tokens": ["c"], "p_old": [0.5], "p_new": [0.2], "reward": 0}],
            "settings": {"objective": "half_clip"}}
    res = run_scenario(parse_scenario(data))
    ex = res.explanation
    # rewards 1, 0: mean 0.5, sample std √0.5, A = ±0.5/(√0.5 + 1e-6); response 1's "a" has r = 2 > 1.2 with A > 0:
    # clipped; response 2's r = 0.4 with A < 0: no lower bound, so it keeps (1/G)(1/|y|)·r·A = 0.4·A/2
    A = 0.5 / (0.5 ** 0.5 + 1e-6)
    assert ex.clip.tolist()[0][:2] == [1, 0]
    assert float(ex.grad_weight[1, 0]) == pytest.approx(0.4 * -A / 2, rel=1e-12)
    assert torch.allclose(ex.grad_weight, ex.closed_grad)
    assert sentence(res).startswith("Half-Clip clipped 1 of 3 tokens")
    assert token_steps(res, 1, 0)[-1].value == pytest.approx(float(ex.grad_weight[1, 0]))
    assert "r = 0.4" in hover_texts(res)[1][0]
    path = tmp_path / "half.json"
    path.write_text(json.dumps(data))
    assert main(["steps", str(path), "--response", "2", "--token", "1", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["grad_weight"] == pytest.approx(doc["autograd"], abs=1e-12)
