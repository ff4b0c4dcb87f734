"""MLflow's four JSON formats become the same columns; malformed shapes are 400s."""

import pytest

from mlfactory.serving import PayloadError
from mlfactory.serving._payloads import columns_from_mlflow, parse_json

EXPECTED = {"a": [1, 2], "b": ["x", None]}
ROWS = [[1, "x"], [2, None]]


@pytest.mark.parametrize(
    "payload",
    [
        {"dataframe_split": {"columns": ["a", "b"], "data": [[1, "x"], [2, None]]}},
        {"dataframe_split": {"columns": ["a", "b"], "index": [5, 6], "data": ROWS}},
        {"dataframe_records": [{"a": 1, "b": "x"}, {"a": 2}]},
        {"instances": [{"a": 1, "b": "x"}, {"a": 2, "b": None}]},
        {"instances": {"a": [1, 2], "b": ["x", None]}},
        {"inputs": {"a": [1, 2], "b": ["x", None]}},
        {"inputs": [{"a": 1, "b": "x"}, {"a": 2, "b": None}], "params": {"ignored": True}},
    ],
)
def test_every_format_gives_the_same_columns(payload):
    assert columns_from_mlflow(payload, ["a", "b"]) == EXPECTED


def test_split_without_columns_only_for_a_one_column_model_and_scalar_inputs_are_one_record():
    # by position only when there is one order: a second column could be sent swapped
    assert columns_from_mlflow({"dataframe_split": {"data": [[1], [2]]}}, ["a"]) == {"a": [1, 2]}
    with pytest.raises(PayloadError, match='needs "columns": the model has 2 input columns') as e:
        columns_from_mlflow({"dataframe_split": {"data": [[1, "x"]]}}, ["a", "b"])
    assert (e.value.status_code, e.value.error_code) == (400, "INVALID_PARAMETER_VALUE")
    assert columns_from_mlflow({"inputs": {"a": 1, "b": "x"}}, ["a", "b"]) == {
        "a": [1],
        "b": ["x"],
    }


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ([1, 2], "must be a JSON object with one of the keys"),
        ({"nothing": 1}, "exactly one of the keys .* found: nothing"),
        ({"inputs": {}, "instances": []}, "exactly one of the keys"),
        ({"dataframe_split": [[1]]}, "dataframe_split must be an object"),
        ({"dataframe_split": {"columns": ["a"]}}, 'needs "data"'),
        ({"dataframe_split": {"columns": ["a", "b"], "data": [[1]]}}, r"data\[0\] .* list of 2"),
        ({"dataframe_split": {"columns": ["a", "a"], "data": [[1, 2]]}}, "duplicate"),
        ({"dataframe_split": {"columns": ["a"], "index": [0], "data": [[1], [2]]}}, "index"),
        ({"dataframe_records": {"a": 1}}, "must be a list of records"),
        ({"dataframe_records": [1]}, r"dataframe_records\[0\] must be a JSON object"),
        ({"instances": [[1, 2]]}, "tensor"),
        ({"inputs": {"a": [1], "b": 2}}, "all be lists"),
    ],
)
def test_malformed_payloads_are_400(payload, message):
    with pytest.raises(PayloadError, match=message) as e:
        columns_from_mlflow(payload, ["a", "b"])
    assert e.value.status_code == 400


def test_unparseable_json_is_400_with_position():
    with pytest.raises(PayloadError, match=r"not valid JSON: .* line 1 column 2") as e:
        parse_json(b"{oops")
    assert e.value.status_code == 400
    with pytest.raises(PayloadError, match="not UTF-8"):
        parse_json(b"\xff\xfe\xfa")
