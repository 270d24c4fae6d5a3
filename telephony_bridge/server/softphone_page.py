"""The softphone page, rendered by the server like the console's pages (no build step, no CDN)."""

from __future__ import annotations

from collections.abc import Sequence

from telephony_bridge.server.console_pages import esc

__all__ = ["softphone_page"]

KEYS = "123456789*0#"


def softphone_page(numbers: Sequence[tuple[str, str]], scenarios: Sequence[str], *, number: str, autocall: bool) -> str:
    """`numbers`: (number, scenario) the routes name one by one; `number`: the one to dial first."""
    options = "".join(
        f'<option value="{esc(n)}"{" selected" if n == number else ""}>{esc(n)} · {esc(s)}</option>' for n, s in numbers
    )
    scenario_options = '<option value="">(routed by the number)</option>' + "".join(
        f'<option value="{esc(s)}">{esc(s)}</option>' for s in scenarios
    )
    keys = "".join(f'<button type="button" class="key" data-digit="{k}">{k}</button>' for k in KEYS)
    body = (
        "<h1>Softphone</h1>"
        '<form id="dial" class="filters" autocomplete="off">'
        f'<label>Number <input id="number" name="number" list="numbers" value="{esc(number)}" '
        'placeholder="+15550100" size="16"></label>'
        f'<datalist id="numbers">{options}</datalist>'
        f'<label>or scenario <select id="scenario" name="scenario">{scenario_options}</select></label>'
        '<button id="call" type="submit">Call</button>'
        '<button id="hangup" type="button" disabled>Hang up</button>'
        "</form>"
        '<p class="status">State: <b id="state">idle</b> · heard <span id="heard">0.0</span> s of the agent'
        ' <span id="detail"></span></p>'
        f'<div id="keypad" class="keypad">{keys}</div>'
        '<audio id="remote" autoplay></audio>'
        '<h2>Transcript</h2><ol id="transcript" class="transcript"></ol>'
    )
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        "<title>Softphone · telephony_bridge</title>"
        '<link rel="stylesheet" href="/console/static/console.css">'
        "<style>.keypad{display:grid;grid-template-columns:repeat(3,3.2em);gap:.4em;margin:1em 0}"
        ".keypad .key{font-size:1.2em;padding:.4em}</style>"
        '<script src="/softphone/static/softphone.js" defer></script></head>'
        '<body><header><strong>telephony_bridge</strong><nav><a href="/console">Calls</a> '
        '<a href="/console/live">In progress</a> <a href="/softphone" class=active>Softphone</a></nav></header>'
        f'<main data-autocall="{"1" if autocall else "0"}">{body}</main></body></html>'
    )
