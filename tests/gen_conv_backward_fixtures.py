#!/usr/bin/env python3
# cvk — computer-vision kernels, header-only C++20.
# Writes tests/data/conv2d_backward_torch.txt: PyTorch 1.13 autograd gradients of
# torch.nn.functional.conv2d (input, weight, bias) over groups, stride, dilation, asymmetric
# padding (F.pad then conv2d), channel multipliers, 1×1 images and huge strides; and
# torch.nn.functional.conv_transpose2d with output_padding, groups, dilation and asymmetric
# padding (the full output cropped with a negative F.pad); float32 and float64. Needs Debian's
# python3-torch (run with /usr/bin/python3); CI never runs it. Format: tests/fixture_writer.py.
# SPDX-License-Identifier: MIT
import pathlib

import torch
import torch.nn.functional as F

from fixture_writer import write_table  # same directory: the shared table writer

SEED = 20191011
DATA_DIR = pathlib.Path(__file__).resolve().parent / "data"

# conv2d: (N, C, H, W, O, KH, KW, groups, stride, dilation, padding top/left/bottom/right)
CONV_CASES = [
    (2, 4, 7, 6, 6, 3, 2, 2, (2, 1), (1, 1), (1, 0, 1, 0)),    # groups, strided rows
    (1, 4, 6, 6, 4, 3, 3, 4, (1, 1), (1, 1), (1, 1, 1, 1)),    # depthwise
    (2, 4, 6, 6, 8, 3, 3, 4, (1, 1), (1, 1), (1, 1, 1, 1)),    # depthwise, multiplier 2
    (1, 6, 9, 8, 9, 3, 3, 3, (2, 2), (1, 1), (1, 1, 1, 1)),    # strided
    (1, 4, 11, 10, 4, 3, 3, 2, (1, 1), (2, 3), (2, 3, 2, 3)),  # dilated
    (1, 3, 7, 9, 6, 3, 3, 1, (1, 2), (1, 1), (0, 1, 2, 3)),    # asymmetric
    (2, 8, 5, 5, 8, 3, 3, 2, (1, 1), (1, 1), (1, 2, 0, 1)),    # asymmetric, grouped
    (1, 5, 1, 1, 10, 1, 1, 5, (1, 1), (1, 1), (0, 0, 0, 0)),   # 1×1 image
    (1, 2, 4, 5, 4, 4, 5, 2, (1, 1), (1, 1), (0, 0, 0, 0)),    # kernel = input
    (1, 4, 3, 3, 4, 3, 3, 1, (5, 7), (1, 1), (1, 1, 1, 1)),    # huge stride
    (1, 12, 8, 8, 12, 3, 3, 3, (1, 1), (1, 1), (1, 1, 1, 1)),  # 4 channels per group
    (1, 4, 8, 7, 6, 3, 3, 2, (3, 2), (1, 1), (1, 1, 0, 0)),    # stride leaves input rows unread
]

# conv_transpose2d: (N, C, H, W, O, KH, KW, groups, stride, dilation, padding t/l/b/r,
# output_padding, bias)
TRANSPOSE_CASES = [
    (2, 4, 5, 4, 6, 3, 3, 2, (2, 2), (1, 1), (1, 1, 1, 1), (1, 1), True),
    (1, 6, 4, 5, 3, 3, 2, 3, (2, 3), (1, 1), (0, 1, 0, 1), (1, 2), True),
    (1, 4, 3, 3, 4, 3, 3, 4, (1, 1), (2, 2), (2, 2, 2, 2), (1, 1), False),  # op >= stride
    (1, 3, 4, 4, 2, 2, 2, 1, (3, 3), (1, 1), (0, 0, 0, 0), (2, 0), True),
    (2, 2, 3, 4, 4, 4, 3, 1, (2, 1), (2, 1), (1, 2, 3, 0), (1, 0), True),  # asymmetric
    (1, 4, 1, 1, 8, 3, 3, 4, (2, 2), (1, 1), (0, 0, 0, 0), (1, 1), True),  # 1×1 input
    (1, 8, 5, 5, 8, 3, 3, 8, (2, 2), (1, 1), (1, 1, 1, 1), (1, 1), True),  # depthwise
    (1, 4, 6, 5, 4, 1, 1, 2, (1, 1), (1, 1), (0, 0, 0, 0), (0, 0), False),  # pointwise
]


def conv_case(out, k, case, gen):
    n, c, h, w, o, kh, kw, groups, stride, dilation, pad = case
    top, left, bottom, right = pad
    params = [n, c, h, w, o, kh, kw, groups, *stride, *dilation, *pad]
    out.write(f"table conv{k}/params 1 {len(params)}\n" + " ".join(map(str, params)) + "\n")
    x64 = torch.randn(n, c, h, w, generator=gen, dtype=torch.float64)
    w64 = torch.randn(o, c // groups, kh, kw, generator=gen, dtype=torch.float64)
    b64 = torch.randn(o, generator=gen, dtype=torch.float64)
    y_shape = F.conv2d(F.pad(x64, (left, right, top, bottom)), w64, b64, stride=stride,
                       dilation=dilation, groups=groups).shape
    gy64 = torch.randn(*y_shape, generator=gen, dtype=torch.float64)
    for dtype, name in ((torch.float32, "float32"), (torch.float64, "float64")):
        x = x64.to(dtype).requires_grad_()
        wt = w64.to(dtype).requires_grad_()
        b = b64.to(dtype).requires_grad_()
        gy = gy64.to(dtype)
        y = F.conv2d(F.pad(x, (left, right, top, bottom)), wt, b, stride=stride,
                     dilation=dilation, groups=groups)
        y.backward(gy)
        prefix = f"conv{k}/{name}/"
        write_table(out, prefix + "input", x.detach(), dtype)
        write_table(out, prefix + "weight", wt.detach(), dtype)
        write_table(out, prefix + "grad_output", gy, dtype)
        write_table(out, prefix + "grad_input", x.grad, dtype)
        write_table(out, prefix + "grad_weight", wt.grad, dtype)
        write_table(out, prefix + "grad_bias", b.grad.reshape(1, -1), dtype)


def transpose_case(out, k, case, gen):
    n, c, h, w, o, kh, kw, groups, stride, dilation, pad, output_padding, has_bias = case
    top, left, bottom, right = pad
    params = [n, c, h, w, o, kh, kw, groups, *stride, *dilation, *pad, *output_padding,
              int(has_bias)]
    out.write(f"table transpose{k}/params 1 {len(params)}\n" + " ".join(map(str, params)) + "\n")
    x64 = torch.randn(n, c, h, w, generator=gen, dtype=torch.float64)
    w64 = torch.randn(c, o // groups, kh, kw, generator=gen, dtype=torch.float64)
    b64 = torch.randn(o, generator=gen, dtype=torch.float64)
    for dtype, name in ((torch.float32, "float32"), (torch.float64, "float64")):
        x, wt, b = x64.to(dtype), w64.to(dtype), b64.to(dtype)
        bias = b if has_bias else None
        if top == bottom and left == right:
            y = F.conv_transpose2d(x, wt, bias, stride=stride, padding=(top, left),
                                   output_padding=output_padding, groups=groups,
                                   dilation=dilation)
        else:
            # PyTorch pads symmetrically only: crop the full output (padding 0) by the asymmetric
            # padding and extend it by output_padding (zeros), then add the bias.
            full = F.conv_transpose2d(x, wt, None, stride=stride, groups=groups,
                                      dilation=dilation)
            y = F.pad(full, (-left, output_padding[1] - right, -top, output_padding[0] - bottom))
            if has_bias:
                y = y + b.reshape(1, -1, 1, 1)
        prefix = f"transpose{k}/{name}/"
        write_table(out, prefix + "input", x, dtype)
        write_table(out, prefix + "weight", wt, dtype)
        write_table(out, prefix + "bias", b.reshape(1, -1), dtype)
        write_table(out, prefix + "output", y, dtype)
        out.write(f"table {prefix}output_shape 1 4\n" + " ".join(str(s) for s in y.shape) + "\n")


def main():
    gen = torch.Generator().manual_seed(SEED)
    path = DATA_DIR / "conv2d_backward_torch.txt"
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as out:
        out.write("# cvk golden fixtures: autograd gradients of torch.nn.functional.conv2d and\n")
        out.write("# torch.nn.functional.conv_transpose2d outputs; NCHW, OIHW (conv) and\n")
        out.write("# I×O/groups×KH×KW (transposed) weights.\n")
        out.write("# Generated by tests/gen_conv_backward_fixtures.py; do not edit (rerun it).\n")
        out.write("# conv<k>/params: N C H W O KH KW groups sh sw dh dw pt pl pb pr\n")
        out.write("# transpose<k>/params: N C H W O KH KW groups sh sw dh dw pt pl pb pr oph opw"
                  " has_bias\n")
        out.write(f"meta torch {torch.__version__}\n")
        out.write(f"meta seed {SEED}\n")
        out.write(f"meta conv_cases {len(CONV_CASES)}\n")
        out.write(f"meta transpose_cases {len(TRANSPOSE_CASES)}\n")
        for k, case in enumerate(CONV_CASES):
            conv_case(out, k, case, gen)
        for k, case in enumerate(TRANSPOSE_CASES):
            transpose_case(out, k, case, gen)
    print(f"wrote {path} ({len(CONV_CASES)} conv + {len(TRANSPOSE_CASES)} transposed cases)")


if __name__ == "__main__":
    main()
