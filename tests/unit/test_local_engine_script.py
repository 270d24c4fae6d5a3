"""The local engine's script: TOML loading with located errors, the Python constructor, follow-ups."""

import json

import pytest

from telephony_bridge.local_engine.script import DEFAULT_FALLBACK, Script, ScriptError, ToolCall, Turn, render_followup


def test_default_script_is_the_acme_receptionist():
    script = Script.default()
    greeting, time_turn, goodbye = script.turns
    assert greeting.say == ("Hello! Thanks for calling Acme. I can tell you the time or end the call. "
                            "How can I help?")
    assert greeting.call is None
    assert time_turn.call == ToolCall("get_current_time", {})
    assert "{output.time}" in time_turn.then
    assert time_turn.hears
    assert goodbye.call.name == "end_call" and goodbye.say
    assert script.fallback and script.voice == "en-us"


def test_loads_a_toml_script(tmp_path):
    path = tmp_path / "pizza.toml"
    path.write_text(
        'voice = "en"\n'
        'fallback = "Pardon?"\n'
        "[[turn]]\n"
        'say = "Pizza Palace, what can I get you?"\n'
        "[[turn]]\n"
        'hears = "A margherita please"\n'
        'call = { name = "order", arguments = { pizza = "margherita", size = 12 } }\n'
        'then = "Order {output.id} is on its way."\n'
    )
    script = Script.load(path)
    assert script.voice == "en" and script.fallback == "Pardon?" and script.source == str(path)
    assert script.turns[0] == Turn(say="Pizza Palace, what can I get you?")
    order = script.turns[1]
    assert order.call.name == "order"
    assert json.loads(order.call.arguments_json()) == {"pizza": "margherita", "size": 12}
    assert order.hears == "A margherita please"


def test_toml_syntax_error_names_file_and_line(tmp_path):
    path = tmp_path / "broken.toml"
    path.write_text('[[turn]]\nsay = "Hello"\nsay2 = "unterminated\n')
    with pytest.raises(ScriptError) as caught:
        Script.load(path)
    assert str(caught.value).startswith(f"{path}:3:")


def test_unknown_key_names_file_and_line_of_the_key(tmp_path):
    path = tmp_path / "typo.toml"
    path.write_text('[[turn]]\nsay = "Hi"\n\n[[turn]]\nhears = "x"\nsya = "Oops"\n')
    with pytest.raises(ScriptError, match=r"typo\.toml:6: turn 2: unknown key 'sya'"):
        Script.load(path)


def test_semantic_errors_are_located_at_their_turn(tmp_path):
    path = tmp_path / "then.toml"
    path.write_text('[[turn]]\nsay = "Hi"\n[[turn]]\nsay = "Yes"\nthen = "orphan follow-up"\n')
    with pytest.raises(ScriptError, match=r"then\.toml:5: turn 2: `then`.*needs a `call`"):
        Script.load(path)
    with pytest.raises(ScriptError, match=r":1: unknown key 'turns'"):
        Script.loads('turns = 1\n', source="x.toml")
    with pytest.raises(ScriptError, match=r"turn 1: a turn needs"):
        Script.loads('[[turn]]\nhears = "only hears"\n')
    with pytest.raises(ScriptError, match=r"call.name"):
        Script.loads('[[turn]]\ncall = { arguments = {} }\n')


def test_missing_file_is_a_script_error(tmp_path):
    with pytest.raises(ScriptError, match="cannot read script"):
        Script.load(tmp_path / "nope.toml")


def test_from_turns_accepts_strings_dicts_and_turns():
    script = Script.from_turns(
        [
            "Hello!",
            {"hears": "time?", "call": {"name": "get_time"}, "then": "It is {output}."},
            {"call": "end_call"},
            Turn(say="Bye", call=ToolCall("hang_up", {"now": True})),
        ],
        fallback="Hmm?",
    )
    assert [t.say for t in script.turns] == ["Hello!", "", "", "Bye"]
    assert script.turns[1].call == ToolCall("get_time", {})
    assert script.turns[2].call.name == "end_call"
    assert script.fallback == "Hmm?"
    assert Script().fallback == DEFAULT_FALLBACK and Script().turns == ()
    with pytest.raises(ScriptError, match="turn 2: unknown key 'sayy'"):
        Script.from_turns(["ok", {"sayy": "x"}])


@pytest.mark.parametrize(
    "template, output, expected",
    [
        ("It is {output}.", "10:42", "It is 10:42."),
        ("It is {output.time}.", json.dumps({"time": "10:42", "tz": "UTC"}), "It is 10:42."),
        ("It is {output.time}.", "10:42", "It is 10:42."),  # not JSON: the whole output
        ("It is {output.time}.", json.dumps({"hour": 10}), 'It is {"hour": 10}.'),  # no such field
        ("{output.a.b} / {output.n} / {output.list.1}", json.dumps({"a": {"b": "deep"}, "n": 3, "list": [1, 2]}),
         "deep / 3 / 2"),
        ("Braces {like} this stay; {output.x}", json.dumps({"x": True}), "Braces {like} this stay; true"),
    ],
)
def test_render_followup(template, output, expected):
    assert render_followup(template, output) == expected
