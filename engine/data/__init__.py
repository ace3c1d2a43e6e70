"""The data pipeline (heavy: imports `datasets` and `transformers` where needed; the console never imports it).

    from engine.data import prepare, Prepared, Example, DataError
    prepared = prepare(data_spec, tokenizer, cache_dir=cache, subset=None, log=print)
"""

from engine.data.options import DataError, DataOptions, coerce, parse_map
from engine.data.prepare import Example, Prepared, fingerprint, prepare, tokenizer_id

__all__ = ["DataError", "DataOptions", "Example", "Prepared", "coerce", "fingerprint", "parse_map", "prepare",
           "tokenizer_id"]
