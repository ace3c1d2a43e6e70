"""The ETA model: rate from tokens after warm-up, evaluation and checkpoints counted, a range that holds."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.eta import EtaModel, predict_full_run, quantile, recurring


def test_quantile() -> None:
    assert quantile([3, 1, 2], 0.5) == 2 and quantile([0, 10], 0.1) == pytest.approx(1.0)
    with pytest.raises(ValueError):
        quantile([], 0.5)


@pytest.mark.parametrize(("total", "every", "done", "expected"), [
    (100, 50, 0, 2), (100, 30, 0, 4), (100, 0, 0, 1), (100, 50, 50, 1), (100, 50, 100, 0), (10, 50, 0, 1),
])
def test_recurring_counts(total: int, every: int, done: int, expected: int) -> None:
    assert recurring(total, every, done) == expected


def test_warm_up_is_left_out_and_tokens_not_steps_set_the_rate() -> None:
    eta = EtaModel(warmup_steps=2)
    eta.add_step(1000, 30.0)  # compilation
    eta.add_step(1000, 5.0)
    for tokens in (1000, 4000, 2000, 500):  # uneven steps at one rate: 1 ms a token
        eta.add_step(tokens, tokens / 1000)
    got = eta.predict(10_000)
    assert got.seconds == pytest.approx(10.0) and got.low == pytest.approx(10.0) and got.high == pytest.approx(10.0)
    assert got.tokens_per_second == pytest.approx(1000)


def test_evaluation_and_checkpoints_are_counted() -> None:
    eta = EtaModel(warmup_steps=0)
    for _ in range(5):
        eta.add_step(1000, 1.0)
    eta.add_eval(4.0, tokens=2000)
    eta.add_eval(6.0, tokens=2000)
    eta.add_checkpoint(2.0)
    got = eta.predict(5000, evals=3, checkpoints=2)
    assert got.train_seconds == 5 and got.eval_seconds == 15 and got.checkpoint_seconds == 4
    assert got.seconds == 24 and got.low == 5 + 12 + 4 and got.high == 5 + 18 + 4
    # A validation set twice as large takes twice as long to evaluate.
    assert eta.predict(0, evals=1, eval_tokens=4000).seconds == pytest.approx(10.0)


def test_unmeasured_evaluation_is_priced_from_the_token_rate() -> None:
    eta = EtaModel(warmup_steps=0)
    eta.add_step(3000, 3.0)
    assert eta.predict(0, evals=2, eval_tokens=3000).eval_seconds == pytest.approx(2.0)


def test_no_rate_yet() -> None:
    eta = EtaModel(warmup_steps=3)
    eta.add_step(100, 1.0)
    assert not eta.ready
    with pytest.raises(ValueError, match="warm-up"):
        eta.predict(100)


def test_pilot_predicts_a_simulated_full_run_within_range() -> None:
    """A 5% pilot of a simulated run with noisy step times, periodic evals and saves, predicts its total."""
    rng = random.Random(0)

    def step_seconds(tokens: int) -> float:
        return tokens * 0.002 * rng.uniform(0.9, 1.1)

    def simulate(steps: int, eval_every: int, save_every: int, model: EtaModel | None = None) -> float:
        total = 0.0
        for step in range(1, steps + 1):
            tokens = rng.randint(2000, 8000)
            seconds = step_seconds(tokens) + (20.0 if step == 1 else 0.0)  # compile on the first step
            total += seconds
            if model:
                model.add_step(tokens, seconds)
            for every, cost, add in ((eval_every, 3.0, model and model.add_eval),
                                     (save_every, 1.5, model and model.add_checkpoint)):
                if step % every == 0 or step == steps:
                    took = cost * rng.uniform(0.95, 1.05)
                    total += took
                    if add:
                        add(took)
        return total

    pilot = EtaModel(warmup_steps=1)
    simulate(40, eval_every=10, save_every=20, model=pilot)
    full_steps = 800
    actual = simulate(full_steps, eval_every=50, save_every=100) - 20.0  # warm-up excluded, as predicted
    predicted = predict_full_run(pilot, total_tokens=full_steps * 5000, total_steps=full_steps, eval_every=50,
                                 save_every=100)
    assert predicted.low <= actual <= predicted.high
    assert predicted.seconds == pytest.approx(actual, rel=0.10)


@given(st.lists(st.tuples(st.integers(1, 10_000), st.floats(0.001, 100)), min_size=3, max_size=40),
       st.integers(0, 10**7), st.integers(0, 50), st.integers(0, 50))
def test_range_brackets_the_estimate(samples: list[tuple[int, float]], tokens: int, evals: int, ckpts: int) -> None:
    eta = EtaModel(warmup_steps=1)
    for t, s in samples:
        eta.add_step(t, s)
    eta.add_eval(2.0)
    eta.add_checkpoint(1.0)
    got = eta.predict(tokens, evals, ckpts)
    assert got.low <= got.seconds * (1 + 1e-9) and got.seconds <= got.high * (1 + 1e-9)
    assert got.low >= 0
