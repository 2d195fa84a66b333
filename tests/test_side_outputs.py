"""The `windows` topic's records, built from arrays, read back as the public window shape."""

from __future__ import annotations

import numpy as np
import pandas as pd

from auth_kappa.runtime.side_outputs import Outputs, emit_final
from auth_kappa.topology.frames import read_ipc
from auth_kappa.topology.processor import rows_frame
from auth_kappa.topology.window_table import Rows


def test_final_windows_read_back_as_rows_frame_says():
    rng = np.random.default_rng(3)
    n = 9000   # three records of at most 4096 windows
    rows = Rows(rng.integers(0, 2**64, n, dtype=np.uint64),
                rng.integers(0, 2**64, n, dtype=np.uint64),
                rng.integers(0, 10**6, n) * 60, rng.random(n), rng.integers(1, 13, n),
                rng.random(n), rng.random(n), seen=None)
    sent = []
    emit_final(lambda topic, key, value, headers: sent.append((topic, key, value, headers)),
               Outputs(windows="w"), {("gas", "meter", 60): rows, ("gas", "state", 60): rows})
    assert [(t, k, h) for t, k, _, h in sent] == [("w", b"gas", [("size", b"60")])] * 3
    got = pd.concat([read_ipc(v).to_pandas() for *_, v, _ in sent], ignore_index=True)
    want = rows_frame("gas", "meter", 60, rows)
    pd.testing.assert_frame_equal(got, want, check_dtype=False)
    assert got["key"].str.fullmatch(r"[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}").all()
