"""Broadcasting explained: the rules agree with PyTorch, and so do the gradient reductions."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from explain.broadcast import explain_broadcast, parse_shape
from explain.cli import main
from explain.errors import ExplainError


def test_seed_001_vector_plus_column() -> None:
    b = explain_broadcast("(3,)", "(3,1)")
    assert b.result == (3, 3)
    assert b.aligned == ((None, 3), (3, 1))
    a_rule, b_rule = b.gradients
    assert (a_rule.summed_away, a_rule.summed_kept) == ((0,), ())
    assert (b_rule.summed_away, b_rule.summed_kept) == ((), (1,))
    assert a_rule.numpy == "grad.sum(axis=0)"
    assert b_rule.numpy == "grad.sum(axis=1, keepdims=True)"
    assert b_rule.torch == "grad.sum_to_size(3, 1)"
    # dimension -1: b (size 1) is repeated; dimension -2: a lacks it
    last, first = b.steps
    assert (last.position, last.sizes, last.result, last.repeated) == (-1, (3, 1), 3, ("b",))
    assert (first.position, first.sizes, first.result, first.repeated) == (-2, (None, 3), 3, ("a",))


@pytest.mark.parametrize(
    ("text", "shape"),
    [("(3,)", (3,)), ("(3, 1)", (3, 1)), ("[3,1]", (3, 1)), ("3,1", (3, 1)), ("3", (3,)), ("()", ()),
     (" ( 2 , 3 , 4 ) ", (2, 3, 4)), ("torch.Size([3, 1])", (3, 1)), ("(0,)", (0,))],
)
def test_parse_shape_accepts_the_usual_spellings(text: str, shape: tuple[int, ...]) -> None:
    assert parse_shape(text) == shape


@pytest.mark.parametrize("text", ["(3, x)", "(-1,)", "3.5", "__import__('os').system('x')", "(3,,1)", "((3,))",
                                  "(1" + ",1" * 40 + ")", "(99999999999,)"])
def test_parse_shape_rejects_anything_but_whole_numbers(text: str) -> None:
    with pytest.raises(ExplainError):
        parse_shape(text)


shapes = st.lists(st.sampled_from([1, 1, 2, 3, 4]), min_size=0, max_size=4).map(tuple)


@settings(max_examples=200, deadline=None)
@given(shapes, shapes)
def test_result_shape_agrees_with_torch(a: tuple[int, ...], b: tuple[int, ...]) -> None:
    ours = explain_broadcast(a, b)
    try:
        expected = tuple(torch.broadcast_shapes(a, b))
    except RuntimeError:
        assert not ours.compatible
        assert ours.conflict is not None
        return
    assert ours.result == expected


@settings(max_examples=100, deadline=None)
@given(shapes, shapes)
def test_gradient_reductions_agree_with_autograd(a: tuple[int, ...], b: tuple[int, ...]) -> None:
    ours = explain_broadcast(a, b)
    if not ours.compatible:
        return
    ta = torch.rand(a, dtype=torch.float64, requires_grad=True)
    tb = torch.rand(b, dtype=torch.float64, requires_grad=True)
    upstream = torch.rand(ours.result, dtype=torch.float64)
    (ta + tb).backward(upstream)
    grad = upstream.numpy()
    for rule, tensor in zip(ours.gradients, (ta, tb)):
        reduced = grad
        if rule.summed_away:
            reduced = reduced.sum(axis=rule.summed_away)
        if rule.summed_kept:
            reduced = reduced.sum(axis=rule.summed_kept, keepdims=True)
        assert np.shape(reduced) == rule.shape
        np.testing.assert_allclose(reduced, tensor.grad.numpy(), rtol=1e-12)
        # the printed torch one-liner computes the same
        torch_code = {"grad": upstream}
        assert torch.allclose(eval(rule.torch, {}, torch_code), tensor.grad)  # noqa: S307 - our own text


def test_three_operands() -> None:
    b = explain_broadcast((2, 1, 3), (4, 1), (3,))
    assert b.result == (2, 4, 3)
    assert b.result == tuple(torch.broadcast_shapes((2, 1, 3), (4, 1), (3,)))


def test_cli_explains_seed_001(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["broadcast", "(3,)", "(3,1)"]) == 0
    out = capsys.readouterr().out
    assert "(3, 3)" in out
    assert "grad.sum(axis=0)" in out
    assert "grad.sum(axis=1, keepdims=True)" in out
    assert "[[2. 3. 4.]" in out  # the seed's printed c


def test_cli_json_and_markdown(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["broadcast", "(2,3)", "(3,)", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["result"] == [2, 3]
    assert data["gradients"][1]["numpy"] == "grad.sum(axis=0)"
    assert main(["broadcast", "(2,3)", "(3,)", "--format", "markdown"]) == 0
    assert "| dimension |" in capsys.readouterr().out


def test_cli_incompatible_shapes_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["broadcast", "(3,)", "(2,)"]) == 2
    err = capsys.readouterr().err
    assert "cannot broadcast" in err and "a 3, b 2" in err


def test_cli_bad_shape_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["broadcast", "(3,)", "(two,)"]) == 2
    assert "whole number" in capsys.readouterr().err
