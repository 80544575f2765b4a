"""Token spans from the fast tokenizer's offsets, on the shipped tokenizer."""

from __future__ import annotations

import pytest
from transformers import AutoTokenizer

from engine.errors import SceneValidationError
from engine.scene import SceneSpec, Shot
from engine.text import character_spans, prompt_spans, tokenize_prompt, window_visibility


@pytest.fixture(scope="module")
def tokenizer(tiny_weights):
    return AutoTokenizer.from_pretrained(tiny_weights / "tokenizer")


def _tokens_inside(tokenized, phrase: str, occurrence: int = 0) -> list[int]:
    """Indices of the tokens lying inside the `occurrence`-th appearance of `phrase`."""
    begin = -1
    for _ in range(occurrence + 1):
        begin = tokenized.text.index(phrase, begin + 1)
    end = begin + len(phrase)
    return [i for i, (a, b) in enumerate(tokenized.offsets) if a < b and a >= begin - 1 and b <= end]


def test_ranges_cover_exactly_their_words(tokenizer):
    scene = SceneSpec(
        "A red kite over green hills.",
        (Shot("Wide shot of the kite."), Shot("Close-up of a child laughing."), Shot("The kite falls.")),
    )
    tokenized = tokenize_prompt(tokenizer, scene.prompt)
    spans = prompt_spans(tokenized, 3)
    expected = {
        spans.global_range: ["[global caption]", "A red kite over green hills.", "This scene contains 3 shots."],
        spans.shot_ranges[0]: ["per shot caption]", "Wide shot of the kite.", "[shot cut]"],
        spans.shot_ranges[1]: ["Close-up of a child laughing.", "[shot cut]"],
        spans.shot_ranges[2]: ["The kite falls."],
    }
    occurrences: dict[str, int] = {}
    for (start, end), phrases in expected.items():
        for phrase in phrases:
            nth = occurrences.get(phrase, 0)
            occurrences[phrase] = nth + 1
            tokens = _tokens_inside(tokenized, phrase, nth)
            assert tokens and all(start <= i < end for i in tokens), (phrase, tokens, (start, end))
    # the ranges tile the real tokens: global, shots in order, then only the EOS is left
    bounds = [spans.global_range, *spans.shot_ranges]
    assert bounds[0][0] == 0
    assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:]))
    assert bounds[-1][1] == tokenized.num_tokens - 1
    assert tokenized.offsets[-1] == (0, 0)  # EOS: a special token, in no span
    assert int(tokenized.input_ids[0, tokenized.num_tokens - 1]) == tokenizer.eos_token_id
    # a token straddling a span boundary (here "▁[" = the space before "[per shot caption]" + "[")
    # belongs to the FIRST span it overlaps, as upstream assigns it
    straddler = spans.global_range[1] - 1
    a, b = tokenized.offsets[straddler]
    assert tokenized.text[a:b] == " [" and tokenized.text[b:].startswith("per shot caption]")


def test_every_token_lies_in_its_span(tokenizer):
    scene = SceneSpec("Night, [character1] waits.", (Shot("[character1] smokes."), Shot("A train arrives.")))
    tokenized = tokenize_prompt(tokenizer, scene.prompt)
    spans = prompt_spans(tokenized, 2)
    global_chars, shot_chars = character_spans(tokenized.text)
    for (start, end), (c0, c1) in zip([spans.global_range, *spans.shot_ranges], [global_chars, *shot_chars]):
        for index in range(start, end):
            a, b = tokenized.offsets[index]
            assert a < c1 and b > c0, (index, tokenized.offsets[index], (c0, c1))


def test_visibility_from_a_real_prompt(tokenizer):
    scene = SceneSpec("g words here.", (Shot("first shot."), Shot("second shot.")))
    tokenized = tokenize_prompt(tokenizer, scene.prompt)
    spans = prompt_spans(tokenized, 2)
    visible = window_visibility(spans, tokenized.max_length)
    (g0, g1), (a0, a1), (b0, b1) = spans.global_range, *spans.shot_ranges
    eos = tokenized.num_tokens - 1
    assert visible[0, g0 : g1 + 1].all() and visible[0, a0 : a1 + 1].all()
    assert visible[0, b0] and not visible[0, b0 + 1 : b1].any()  # one token into shot 2, no more
    assert visible[1, b0 : b1 + 1].all() and visible[1, eos]  # the last shot sees the EOS
    assert not visible[1, a0 + 1 : a1].any()  # not shot 1's caption (its first token is global's quirk)
    assert visible[:, eos + 1 :].all()  # zero padding is visible to all


def test_cleaning_matches_wan_and_spans_use_cleaned_text(tokenizer):
    tokenized = tokenize_prompt(tokenizer, "[global caption]   A  &amp; B.  [per shot caption] x\n\n y")
    assert tokenized.text == "[global caption] A & B. [per shot caption] x y"


def test_prompt_longer_than_the_encoder_is_an_error(tokenizer):
    with pytest.raises(SceneValidationError) as caught:
        tokenize_prompt(tokenizer, "many " * 700)
    assert caught.value.field == "prompt"
    assert "at most 512" in caught.value.message and "tokens long" in caught.value.message


def test_span_count_must_match_the_shots(tokenizer):
    tokenized = tokenize_prompt(tokenizer, "[global caption] g [per shot caption] a [shot cut] b")
    with pytest.raises(SceneValidationError, match="2 shot captions but the scene has 3 shots"):
        prompt_spans(tokenized, 3)
