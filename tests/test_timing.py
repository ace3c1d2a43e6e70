"""The token plan behind the live ETA matches the real batch stream; the live ETA follows a change of speed."""

from __future__ import annotations

import random

import pytest

from engine.eta import EtaModel
from engine.train.batching import BatchStream, StreamState
from engine.train.timing import LiveEta, eta_fields, step_token_plan
from tests.train_helpers import Ex


def examples(n: int, seed: int = 0) -> list[Ex]:
    rng = random.Random(seed)
    return [Ex([1] * (length := rng.randint(3, 60)), [1] * length, "", "") for _ in range(n)]


@pytest.mark.parametrize(("n", "micro_batch", "grad_accum", "steps", "start"), [
    (20, 4, 1, 12, StreamState()),            # crosses two epochs
    (23, 4, 3, 9, StreamState()),             # short last micro-batch of each epoch
    (23, 5, 2, 7, StreamState(epoch=1, cursor=15, examples_seen=38)),  # a resumed stream
])
def test_the_plan_counts_the_tokens_the_stream_will_give(n: int, micro_batch: int, grad_accum: int, steps: int,
                                                          start: StreamState) -> None:
    data = examples(n)
    plan = step_token_plan([len(e.input_ids) for e in data], micro_batch, grad_accum, seed=7, steps=steps,
                           state=StreamState(**vars(start)))
    stream = BatchStream(data, micro_batch, pad_id=0, seed=7, state=StreamState(**vars(start)))
    stream.restore(StreamState(**vars(start)))
    real = [sum(int(stream.next_batch()["attention_mask"].sum()) for _ in range(grad_accum)) for _ in range(steps)]
    assert plan == real


def test_live_eta_counts_what_remains_and_follows_a_change_of_speed() -> None:
    live = LiveEta([1000] * 100, start_step=0, total_steps=100, eval_every=50, save_every=0, eval_tokens=300,
                   warmup_steps=1)
    assert live.predict(0) is None and eta_fields(None)["eta_s"] is None
    assert live.remaining_tokens(40) == 60_000
    for _ in range(30):
        live.add_step(1000, 1.0)  # 1 ms a token
    live.add_eval(5.0)
    at_40 = live.predict(40)
    assert at_40 is not None
    assert at_40.train_seconds == pytest.approx(60.0) and at_40.eval_seconds == pytest.approx(10.0)  # 50 and 100
    for _ in range(60):
        live.add_step(1000, 2.0)  # the machine got twice as slow
    at_90 = live.predict(90)
    assert at_90 is not None and at_90.train_seconds == pytest.approx(20.0)  # the recent rate, not the mean
    assert eta_fields(at_90) == {"eta_s": 25.0, "eta_low_s": 25.0, "eta_high_s": 25.0}
    assert live.model.predict(10_000).train_seconds == pytest.approx(10_000 * (29 + 120) / 89_000)  # all timed


def test_a_slow_step_is_paid_for_not_dropped() -> None:
    eta = EtaModel(warmup_steps=0)
    for i in range(20):
        eta.add_step(1000, 5.0 if i % 10 == 0 else 1.0)  # one step in ten is five times slower
    assert eta.predict(20_000).seconds == pytest.approx(28.0)  # the sum the run pays, not 20 x the median
