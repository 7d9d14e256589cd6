"""Schemathesis hooks for tests/test_fuzz_api.py: most generated requests use ids that exist, so fuzzing reaches past
the 404 for an unknown id into the code behind it. The ids come from KINDRED_FUZZ_IDS (JSON: parameter -> ids)."""

from __future__ import annotations

import json
import os
import random

import schemathesis

_IDS: dict[str, list[str]] = json.loads(os.environ.get("KINDRED_FUZZ_IDS", "{}"))
# Fixed seed: a failing run can be repeated exactly.
_rng = random.Random(7)


@schemathesis.hook
def map_path_parameters(ctx: object, path_parameters: dict[str, object] | None) -> dict[str, object] | None:
    if not path_parameters:
        return path_parameters
    for name in path_parameters:
        choices = _IDS.get(name)
        # One in five keeps the generated value, so unknown and malformed ids are still tried.
        if choices and _rng.random() < 0.8:
            path_parameters[name] = _rng.choice(choices)
    return path_parameters
