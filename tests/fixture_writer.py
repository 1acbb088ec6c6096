# cvk — computer-vision kernels, header-only C++20.
# The text format of the reference fixtures under tests/data, shared by every tests/gen_*.py
# script: "table <name> <rows> <cols>" then one line per row, numbers as the shortest strings
# that round-trip in their dtype (tests/support/fixtures.hpp reads it). Needs only torch/numpy.
# SPDX-License-Identifier: MIT
import math

import numpy as np
import torch


def fmt(value, dtype):
    """The shortest text that reads back as `value` in `dtype` (nan, inf, -inf spelled out)."""
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    if dtype == torch.float32:
        return repr(np.float32(value))  # shortest string that round-trips a float32
    if dtype == torch.float64:
        return repr(float(value))  # shortest string that round-trips a float64
    return str(int(value))


def write_table(out, name, tensor, dtype):
    """One table: the tensor's first axis as rows (a scalar or an empty tensor as one row)."""
    t = tensor.reshape(max(tensor.shape[0], 1), -1) if tensor.dim() > 0 else tensor.reshape(1, 1)
    out.write(f"table {name} {t.shape[0]} {t.shape[1]}\n")
    for row in t.tolist():
        out.write(" ".join(fmt(v, dtype) for v in row) + "\n")
