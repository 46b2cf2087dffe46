import pytest

from annotation.pairs.formats import (
    PairRow,
    content_id,
    hh_prompt_messages,
    parse_label_record,
    parse_pair_record,
    split_hh_dialogues,
)
from annotation.pairs.readers import RowError


def test_hh_split_keeps_the_shared_dialogue_as_prompt():
    chosen = "\n\nHuman: Hi\n\nAssistant: Hello\n\nHuman: Tell me a joke\n\nAssistant: Knock knock."
    rejected = "\n\nHuman: Hi\n\nAssistant: Hello\n\nHuman: Tell me a joke\n\nAssistant: No."
    prompt, first, second = split_hh_dialogues(chosen, rejected)
    assert prompt.endswith("Tell me a joke\n\nAssistant:")
    assert (first, second) == ("Knock knock.", "No.")


def test_hh_split_when_responses_share_their_first_words():
    chosen = "\n\nHuman: Q?\n\nAssistant: I think yes, because."
    rejected = "\n\nHuman: Q?\n\nAssistant: I think no."
    prompt, first, second = split_hh_dialogues(chosen, rejected)
    assert prompt == "\n\nHuman: Q?\n\nAssistant:"
    assert (first, second) == ("I think yes, because.", "I think no.")


def test_hh_split_when_last_turns_differ_in_shape():
    # One dialogue goes on with another human turn: that is part of its response.
    chosen = "\n\nHuman: Q?\n\nAssistant: Sure.\n\nHuman: Thanks\n\nAssistant: Welcome."
    rejected = "\n\nHuman: Q?\n\nAssistant: No."
    prompt, first, second = split_hh_dialogues(chosen, rejected)
    assert prompt == "\n\nHuman: Q?\n\nAssistant:"
    assert first == "Sure.\n\nHuman: Thanks\n\nAssistant: Welcome."
    assert second == "No."


def test_hh_empty_response_is_a_valid_pair():
    row = parse_pair_record(
        3, {"chosen": "\n\nHuman: Q?\n\nAssistant:", "rejected": "\n\nHuman: Q?\n\nAssistant: Bad."}
    )
    assert isinstance(row, PairRow)
    assert {row.response_a, row.response_b} == {"", "Bad."}
    chosen_stored = row.response_a if row.preferred == "a" else row.response_b
    assert chosen_stored == ""


def test_hh_prompt_becomes_chat_messages():
    messages = hh_prompt_messages("\n\nHuman: Hi\n\nAssistant: Hello\n\nHuman: Joke?\n\nAssistant:")
    assert messages == [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello"},
        {"role": "user", "content": "Joke?"},
    ]


def test_hh_without_shared_assistant_turn_is_an_error():
    row = parse_pair_record(7, {"chosen": "Human: a", "rejected": "Human: b"})
    assert isinstance(row, RowError) and row.line == 7 and "Assistant" in row.message


def test_labelled_rows_are_stored_in_a_stable_order_that_hides_the_preference():
    orders = set()
    for n in range(40):
        record = {"prompt": f"p{n}", "chosen": "good", "rejected": "bad"}
        first = parse_pair_record(1, record)
        again = parse_pair_record(1, record)
        assert (first.response_a, first.preferred) == (again.response_a, again.preferred)
        chosen_stored = first.response_a if first.preferred == "a" else first.response_b
        assert chosen_stored == "good"
        orders.add(first.preferred)
    assert orders == {"a", "b"}


def test_content_id_ignores_response_order():
    assert content_id("p", "x", "y") == content_id("p", "y", "x")
    assert content_id("p", "x", "y") != content_id("q", "x", "y")


@pytest.mark.parametrize(
    ("record", "problem"),
    [
        ({"prompt": "p", "response_a": "x"}, "missing field 'response_b'"),
        ({"prompt": "p", "response_a": "same", "response_b": "same"}, "identical"),
        ({"prompt": 5, "response_a": "x", "response_b": "y"}, "'prompt' must be"),
        ({"prompt": [{"role": "user"}], "response_a": "x", "response_b": "y"}, "message 0"),
        ({"prompt": "p", "response_a": "x", "response_b": "y", "id": [1]}, "'id' must be"),
        ({"prompt": "p", "chosen": "x"}, "labelled rows need"),
    ],
)
def test_bad_pair_records_name_their_problem(record, problem):
    row = parse_pair_record(4, record)
    assert isinstance(row, RowError)
    assert problem in row.message and row.line == 4


def test_field_over_the_size_limit_is_rejected(settings):
    settings.IMPORT_MAX_FIELD_CHARS = 10
    row = parse_pair_record(2, {"prompt": "p", "response_a": "x" * 11, "response_b": "y"})
    assert isinstance(row, RowError) and "limit is 10" in row.message


def test_extra_columns_go_into_metadata():
    row = parse_pair_record(
        1,
        {
            "prompt": "p",
            "response_a": "x",
            "response_b": "y",
            "model_a": "m1",
            "metadata": {"k": 1},
        },
    )
    assert row.metadata == {"model_a": "m1", "k": 1}


@pytest.mark.parametrize(
    ("record", "problem"),
    [
        ({"pair": "1", "annotator": "v", "choice": "left"}, "'choice' must be"),
        ({"pair": "1", "choice": "a"}, "missing field 'annotator'"),
        ({"pair": "1", "annotator": "v", "choice": "a", "strength": 4}, "'strength'"),
        ({"pair": "1", "annotator": "v", "choice": "a", "strength": "x"}, "'strength'"),
    ],
)
def test_bad_label_records_name_their_problem(record, problem):
    row = parse_label_record(9, record)
    assert isinstance(row, RowError) and problem in row.message


def test_label_record_with_strength_from_csv_text():
    row = parse_label_record(
        2, {"pair": 17, "annotator": "vendor", "choice": "tie", "strength": "2"}
    )
    assert (row.pair, row.strength) == ("17", 2)
