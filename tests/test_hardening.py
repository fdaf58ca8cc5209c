"""Every input hardened (issue 9): crafted links, uploads and scenario files get a one-line message naming the field,
never a traceback, a stall or a non-finite number; a scenario's text cannot make viewers fetch remote images.

The links and uploads run the app in AppTest; the files run the command line's entry function; a property test
(hypothesis) generates valid and invalid files, bytes included."""
import base64
import json
import math
import re
import time
import tomllib
import zlib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings as hsettings, strategies as st
from streamlit.testing.v1 import AppTest

from gspo_viz.cli import main
from gspo_viz.scenarios import MAX_FILE_BYTES, ScenarioError, parse_scenario
from gspo_viz.scenarios.urlstate import decode_controls, decode_scenario, encode_scenario
from gspo_viz.views.text import plain_text, safe_markdown

ROOT = Path(__file__).resolve().parents[1]
DEFAULT = json.loads((ROOT / "examples/default_group.json").read_text())
GOOD = {"responses": [{"tokens": ["a", "b"], "p_old": [0.3, 0.2], "p_new": [0.4, 0.25], "reward": 1.0},
                      {"tokens": ["c"], "p_old": [0.5], "p_new": [0.45], "reward": 0.0}],
        "settings": {"objective": "grpo"}}
GOOD_TEXT = json.dumps(GOOD)


def link(text: str | bytes) -> str:
    """A link's `s` made from JSON text (or bytes) as written, so it can hold what json.dumps would not write."""
    raw = text.encode("utf-8") if isinstance(text, str) else text
    return base64.urlsafe_b64encode(zlib.compress(raw, 9)).decode("ascii").rstrip("=")


def nested(depth: int) -> str:
    return GOOD_TEXT.replace('"tokens": ["a", "b"]', '"tokens": ' + "[" * depth + "]" * depth)


# Crafted inputs of the fuzzer: the JSON text, and words of the message each must get
CRAFTED = {
    "nested_2000": (nested(2000), "nests more than 16 levels"),
    "int_400_digits": (GOOD_TEXT.replace('"reward": 1.0', '"reward": ' + "9" * 400), "(400 digits) is too large"),
    "int_5000_digits": (GOOD_TEXT.replace('"reward": 1.0', '"reward": ' + "9" * 5000), "(5000 digits) is too large"),
    "lone_surrogate": (GOOD_TEXT.replace('"a"', '"\\ud800"'), "responses[0].tokens[0]: contains an unpaired surrogate"),
}


def app(query=None):
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=90)
    if query:
        at.query_params.update(query)
    return at.run()


def shown(at, kind="warning"):
    return " ".join(w.value for w in getattr(at, kind))


pytestmark = pytest.mark.usefixtures("navigation_mode")   # tests/conftest.py: AppTest in st.navigation mode


# ------------------------------------------------------------------------------------------------------------ links
@pytest.mark.parametrize("name", CRAFTED)
def test_a_crafted_link_falls_back_to_the_default_with_a_message(name):
    text, words = CRAFTED[name]
    at = app({"s": link(text)})
    assert not at.exception, at.exception
    assert "could not be used" in shown(at) and plain_text(words) in shown(at), shown(at)
    assert at.session_state["scenario"] == DEFAULT
    # ... and the session keeps working: another page opens on the default scenario
    at.switch_page("pages/4_formula_checker.py").run()
    assert not at.exception, at.exception
    assert at.title[0].value == "Formula Checker"


def test_a_zlib_bomb_link_is_refused_fast():
    bomb = base64.urlsafe_b64encode(zlib.compress(b"[" + b" " * 40_000_000 + b"]", 9)).decode().rstrip("=")
    assert len(bomb) < 60_000
    start = time.perf_counter()
    with pytest.raises(ScenarioError, match="inflates to more than 2000000 bytes"):
        decode_scenario(bomb)
    assert time.perf_counter() - start < 1.0   # the old decoder inflated all 40 MB first (~40 s, 650 MB in the app)


def test_link_controls_nested_3000_deep_fall_back_with_a_message():
    at = app({"v": json.dumps({"cmp": "x"})[:-1].replace('"x"', "[" * 3000 + "]" * 3000) + "}"})
    assert not at.exception, at.exception
    assert "page settings in this link could not be read" in shown(at)
    at.switch_page("pages/1_token_lab.py").run()
    assert not at.exception and at.multiselect[0].value == ["grpo", "gspo", "dual_clip"]


@pytest.mark.parametrize("v, words", [
    ('{"cmp": [["grpo"]]}', 'has a value no control takes: [["grpo"]]'),
    ('{"cmp": ["\\ud800"]}', "unpaired surrogate"),
    ('{"la_G": ' + "9" * 400 + "}", "(400 digits) is too large"),
    ('{"la_G": NaN}', "has a value no control takes: nan"),
    ("[1]", "must be a JSON object"),
])
def test_decode_controls_refuses_what_no_control_takes(v, words):
    with pytest.raises(ScenarioError, match=re.escape(words)):
        decode_controls(v)
    assert decode_controls('{"cmp": ["grpo", "gspo"], "la_G": 8, "edit": true}') == \
        {"cmp": ["grpo", "gspo"], "la_G": 8, "edit": True}


def test_boot_leaves_a_valid_scenario_whatever_goes_wrong(monkeypatch):
    import gspo_viz.ui.state as state

    def broken(text):
        raise RecursionError("something nobody foresaw")
    monkeypatch.setattr(state, "decode_scenario", broken)
    at = app({"s": encode_scenario(GOOD)})
    assert not at.exception, at.exception
    assert "could not be used (RecursionError)" in shown(at)
    assert at.session_state["scenario"] == DEFAULT


# ------------------------------------------------------------------------------------------------------------ uploads
def test_bad_uploads_get_a_message_and_every_page_keeps_working():
    at = app()
    cases = {name: (text.encode("utf-8", "surrogatepass"), words) for name, (text, words) in CRAFTED.items()}
    cases["latin_1"] = (GOOD_TEXT.replace('"a"', '"é"').encode("latin-1"),
                        "line 1 column 29: cannot read the file as UTF-8 text")  # as the command line says
    cases["over_2_mb"] = (b" " * (MAX_FILE_BYTES + 1) + GOOD_TEXT.encode(), f"the limit is {MAX_FILE_BYTES} (2 MB)")
    for name, (data, words) in cases.items():
        at.sidebar.file_uploader[0].set_value((f"{name}.json", data, "application/json")).run()
        assert not at.exception, (name, at.exception)
        errors = shown(at.sidebar, "error")
        assert f"{name}.json: " in errors.replace("\\", "") and plain_text(words) in errors, (name, errors)
        assert at.session_state["scenario"] == DEFAULT, name   # nothing imported
    at.switch_page("pages/1_token_lab.py").run()
    assert not at.exception, at.exception
    at.sidebar.file_uploader[0].set_value(("good.json", GOOD_TEXT.encode(), "application/json")).run()
    assert not at.exception and at.session_state["scenario"] == GOOD


def test_streamlit_lets_files_over_2_mb_reach_the_apps_own_message():
    # Streamlit's browser-side refusal shows only a red icon; the app's check says what is wrong in words
    config = tomllib.loads((ROOT / ".streamlit/config.toml").read_text())
    assert config["server"]["maxUploadSize"] * 1e6 > 10 * MAX_FILE_BYTES
    at = app()
    assert "at most 2 MB" in at.sidebar.file_uploader[0].label


# ------------------------------------------------------------------------------------------------------------ remote images
@pytest.mark.parametrize("text, expected", [
    ("see ![a chart](https://evil.example/x.png) here", r"see \[image: a chart\] here"),
    ('<img src="https://evil.example/x.png" alt="chart">', r"\[image: chart\]"),
    ("<IMG SRC=https://evil.example/x.png>", r"\[image\]"),
    ("![ref][r]\n\n[r]: https://evil.example/x.png", "\\[image: ref\\]\n\n[r]: https://evil.example/x.png"),
    ("![shortcut]\n\n[shortcut]: https://evil.example/x.png", "\\[image: shortcut\\]\n\n[shortcut]: https://evil.example/x.png"),
    ("[![linked](https://evil.example/x.png)](https://example.org)", r"[\[image: linked\]](https://example.org)"),
    ("![![nested](https://evil.example/a.png)](https://evil.example/b.png)", r"\[image: nested\]"),
    ('![t](<https://evil.example/a b.png> "title")', r"\[image: t\]"),
    # the replacement must not complete an image with the "!" before it
    ("!![a](b)(https://evil.example/x.png)", r"!\[image: a\](https://evil.example/x.png)"),
    ('<span style="background:url(https://evil.example/x.png)">x</span>',
     r'\<span style="background:url(https://evil.example/x.png)">x\</span>'),
    ("A < 0 and <https://example.org> stay; **bold** and [a link](https://example.org) too",
     "A < 0 and <https://example.org> stay; **bold** and [a link](https://example.org) too"),
])
def test_safe_markdown_turns_images_and_html_into_text(text, expected):
    out = safe_markdown(text)
    assert out == expected
    assert not re.search(r"(?<!\\)!\[", out) and "<img" not in out.lower()   # nothing left can open an image


def test_safe_markdown_is_fast_on_hostile_text():
    start = time.perf_counter()
    for text in ("<img " * 40_000, "![](" * 50_000, "![" * 100_000, "<img alt=\"" * 20_000):   # 200 KB each
        safe_markdown(text)
    assert time.perf_counter() - start < 5   # linear: about 1 s; "<img" * 40,000 alone took 20 s (quadratic) before
    # the tag pattern stopped at the next "<"


def test_safe_markdown_keeps_every_example_note_as_written():
    for path in sorted((ROOT / "examples").glob("*.json")):
        data = json.loads(path.read_text())
        for k in ("title", "notes"):
            assert safe_markdown(data.get(k, "")) == data.get(k, ""), (path.name, k)


def test_a_scenario_with_remote_images_renders_none_of_them():
    evil = dict(GOOD, title="T ![t](https://evil.example/t.png)",
                notes='N ![n](https://evil.example/n.png) <img src="https://evil.example/i.png" alt="i">')
    at = app({"s": encode_scenario(evil)})
    assert at.session_state["scenario"] == evil   # the person's text is kept as written ...
    for page in ("pages/1_token_lab.py", "pages/4_formula_checker.py"):
        at.switch_page(page).run()
        assert not at.exception, at.exception
        rendered = [m.value for m in at.markdown] + [c.value for c in at.sidebar.caption] + \
            [e.proto.expandable.label for e in at.get("expandable")]
        text = " ".join(rendered)
        assert r"\[image: n\]" in text and r"\[image: i\]" in text and r"\[image: t\]" in text, text  # as text
        assert "evil.example" not in text, text


# ------------------------------------------------------------------------------------------------------------ the fuzzer
def _strict_json(text):
    def refuse(name):
        raise ValueError(f"{name} in the JSON output")
    doc = json.loads(text, parse_constant=refuse)
    stack = [doc]
    while stack:
        x = stack.pop()
        if isinstance(x, float):
            assert math.isfinite(x)
        elif isinstance(x, dict):
            stack.extend(x.values())
        elif isinstance(x, list):
            stack.extend(x)
    return doc


HOSTILE_NUMBERS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True), st.integers(-10 ** 400, 10 ** 400),
    st.sampled_from([1e308, -1e308, 5e-324, -5e-324, 1e15, -1e15, 1e16, -1e16, "<5000 digits>"]))
SAFE_NUMBERS = st.one_of(st.floats(-10, 10), st.integers(-3, 3), st.sampled_from([0.0, 1.0, 0.5]))
NUMBERS = st.one_of(*[SAFE_NUMBERS] * 7, HOSTILE_NUMBERS)   # one in 8 hostile
HOSTILE_TEXT = st.sampled_from(["\ud800", "a\udfffb", "![x](http://e/x.png)", "<img src=x>", "x" * 300])
SAFE_TEXT = st.one_of(st.text(max_size=6).filter(lambda t: not re.search("[\ud800-\udfff]", t)), st.just("é日本"))
TEXT = st.one_of(*[SAFE_TEXT] * 9, HOSTILE_TEXT)   # one in 10 hostile
SCALARS = st.one_of(NUMBERS, TEXT, st.booleans(), st.none(), st.just([]), st.just({}))


def _deep(depth):
    return "[" * depth + "]" * depth


@st.composite
def scenario_files(draw):
    """Bytes of a scenario file: about half with tame values (most of them valid), the others with hostile numbers
    and text; then maybe a field broken or stretched (wrong type, missing, deep), in UTF-8, Latin-1 or raw
    surrogates, or plain junk."""
    tame = draw(st.booleans())
    number, text_ = (SAFE_NUMBERS, SAFE_TEXT) if tame else (NUMBERS, TEXT)
    G = draw(st.sampled_from([2, 3] if tame else [1, 2, 3]))
    responses = []
    for _ in range(G):
        n = draw(st.integers(1, 3))
        r = {"tokens": draw(st.lists(text_, min_size=n, max_size=n))}
        if draw(st.booleans()):
            r["p_old"] = draw(st.lists(st.floats(0.01, 1.0), min_size=n, max_size=n))
            r["p_new"] = draw(st.lists(st.floats(0.01, 1.0), min_size=n, max_size=n))
        else:
            r["logp_old"] = draw(st.lists(st.sampled_from([0.0, -1.0, -350.0, -700.0, -5e-324]), min_size=n, max_size=n))
            r["logp_new"] = draw(st.lists(st.sampled_from([0.0, -1.0, -350.0, -699.0, -1e-300]), min_size=n, max_size=n))
        if draw(st.integers(0, 3)) == 0:
            r["logp_ref"] = draw(st.lists(st.sampled_from([0.0, -1.0, -699.0] + ([] if tame else [-800.0])),
                                          min_size=n, max_size=n))
        r["reward"] = draw(number)
        if draw(st.integers(0, 3)) == 0:
            r["advantage"] = draw(number)
        responses.append(r)
    data = {"title": draw(text_), "notes": draw(text_), "responses": responses,
            "settings": draw(st.fixed_dictionaries({}, optional={
                "objective": st.sampled_from(["grpo", "gspo", "dual_clip", "dapo", "dr_grpo", "gspo_token", "cispo",
                                              "gmpo", "sapo"] + ([] if tame else ["ppo9"])),
                "beta": st.sampled_from([0.0, 0.04] + ([] if tame else [1e300, -1.0])),
                "adv_eps": st.sampled_from([0.0, 1e-6, 5e-324]),
                "dual_clip_c": st.floats(1.5, 10) if tame else NUMBERS,
                "eps_high": st.floats(0, 1) if tame else NUMBERS,
                "max_tokens": st.sampled_from([8, 4096] + ([] if tame else [1, 10 ** 400, 2 ** 60])),
                "overlong": st.sampled_from([{"filter": True}, {"l_max": 2, "l_cache": 1}] + ([] if tame else
                                                                                               [[], {"x": 1}]))}))}
    how = draw(st.integers(0, 9))  # 0-4: as drawn; 5-9: broken
    if how == 5:
        responses[0][draw(st.sampled_from(sorted(responses[0])))] = draw(SCALARS)
    elif how == 6:
        del responses[-1][draw(st.sampled_from(sorted(responses[-1])))]
    elif how == 7:
        data[draw(st.sampled_from(["title", "settings", "responses", "extra"]))] = draw(SCALARS)
    text = json.dumps(data, ensure_ascii=draw(st.booleans())).replace('"<5000 digits>"', "9" * 5000)
    if how == 8:
        text = text.replace("[", _deep(draw(st.sampled_from([20, 2000, 100_000]))) + ", [", 1)
    if how == 9:
        return draw(st.binary(max_size=40))
    encoding = draw(st.sampled_from(["utf-8"] * 4 + ["latin-1", "surrogatepass"]))
    if encoding == "latin-1":
        return text.encode("latin-1", "replace")
    return text.encode("utf-8", "surrogatepass" if encoding == "surrogatepass" else "replace")


FUZZ = hsettings(max_examples=150, deadline=None, database=None,
                 suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                        HealthCheck.data_too_large])


@FUZZ
@given(raw=scenario_files())
def test_the_cli_never_raises_and_prints_only_finite_json(raw, tmp_path_factory, capsys):
    path = tmp_path_factory.mktemp("fuzz") / "s.json"
    path.write_bytes(raw)
    for argv in (["explain", str(path), "--json"], ["steps", str(path), "--response", "1", "--token", "1", "--json"]):
        code = main(argv)
        out, err = capsys.readouterr()
        if code == 0:
            assert err == "" and _strict_json(out)
        else:
            assert code == 2 and out == "" and err.count("\n") == 1 and err.startswith(f"{path}: "), (code, out, err)
            assert len(err) < 400, err   # quoted values are cut short


@FUZZ
@given(raw=scenario_files())
def test_the_link_decoder_never_raises_anything_but_a_message(raw):
    text = raw.decode("utf-8", "surrogatepass") if _utf8ish(raw) else raw.decode("latin-1")
    for decode, s in ((decode_scenario, link(raw)), (decode_scenario, text), (decode_controls, text)):
        try:
            data = decode(s)
            if decode is decode_scenario:
                parse_scenario(data)
        except ScenarioError as e:
            assert len(str(e)) < 400 and "\n" not in str(e), str(e)


def _utf8ish(raw: bytes) -> bool:
    try:
        raw.decode("utf-8", "surrogatepass")
        return True
    except UnicodeDecodeError:
        return False


def test_the_landing_page_shows_a_scenario_title_without_its_images():
    from gspo_viz.scenarios.urlstate import encode_scenario
    from streamlit.testing.v1 import AppTest
    data = json.loads((ROOT / "examples" / "movie_five_tokens.json").read_text(encoding="utf-8"))
    data["title"] = "Look ![x](http://evil.example/t.png)"
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.query_params["s"] = encode_scenario(data)
    at.run()
    shown = " ".join(c.value for c in at.caption)
    # the caption's markdown names the image instead of embedding it (brackets escaped so they print as text)
    assert "Current scenario: Look \\[image: x\\]" in shown and "](http" not in shown


def test_tokens_reach_hovers_cells_and_sentences_as_text():
    # a token is user text: Plotly reads tags in hover and cell text, Streamlit reads markdown in the sentence
    from gspo_viz import parse_scenario, run_scenario
    from gspo_viz.views.narrate import sentence
    from gspo_viz.views.plots import ratio_heatmap
    from gspo_viz.views.steps import hover_texts
    from gspo_viz.views.text import safe_markdown
    data = {"responses": [{"tokens": ["<b>x", "![i](http://evil.example/a.png)"], "p_old": [0.2, 0.5],
                           "p_new": [0.4, 0.5], "reward": 1},
                          {"tokens": ["y"], "p_old": [0.5], "p_new": [0.5], "reward": 0}]}
    res = run_scenario(parse_scenario(data))
    assert hover_texts(res)[0][0].startswith("<b>&lt;b&gt;x</b>")
    cells = [t for trace in ratio_heatmap(res).to_dict()["data"] if trace["type"] == "scatter"
             for t in (trace.get("text") or [])]
    assert "&lt;b&gt;x" in cells and "<b>x" not in cells
    text = sentence(res)                                    # “<b>x” (r = 2) is clipped and quoted
    assert "<b>x" in text and "](http" not in safe_markdown(text)
