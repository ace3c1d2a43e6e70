"""The training engine (heavy: imports torch): the loop, its schedule, batching, evaluation and checkpoints."""
