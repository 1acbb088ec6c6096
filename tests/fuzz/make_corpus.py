#!/usr/bin/env python3
"""Writes the seed corpora of the cvk fuzz targets into tests/fuzz/corpus/<target>/, in the byte
layout of fuzz_input.hpp: a few normal scenes (jittered clusters), degenerate scenes (zero-area,
inverted, duplicated boxes, tied scores), NaN / infinite values and far outliers, for every
operator and both element types. Deterministic; rerun after changing the layout:
    python3 tests/fuzz/make_corpus.py
"""
import os
import random
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def thr(t):  # threshold(): (tag - 8) / 224
    return bytes([max(0, min(239, round(t * 224 + 8)))])


def fine(x):  # value(): tag 160, int16 / 8
    return bytes([160]) + struct.pack('<h', max(-32768, min(32767, round(x * 8))))


NAN, INF, NINF, HUGE, MAXV = bytes([200]), bytes([204]), bytes([206]), bytes([208]), bytes([216])


def box_normal(x, y, w, h):
    return bytes([0]) + fine(x) + fine(y) + bytes([w % 64, h % 64])


def box_raw(*vals):
    return bytes([128]) + b''.join(vals)


def dup(k):
    return bytes([224, k])


def score(level):  # (tag % 16) / 16
    return bytes([level % 16])


def scene(rng, kind, n):
    """n boxes then n scores."""
    boxes, scores = [], []
    for i in range(n):
        if kind == 'clusters':
            cx, cy = [(100, 100), (300, 120), (180, 400)][i % 3]
            boxes.append(box_normal(cx + rng.uniform(-4, 4), cy + rng.uniform(-4, 4),
                                    40 + rng.randrange(8), 30 + rng.randrange(8)))
            scores.append(bytes([128]) + struct.pack('<H', rng.randrange(65536)))
        elif kind == 'degenerate':
            choice = i % 6
            boxes.append([box_normal(0, 0, 0, 0), box_raw(fine(50), fine(50), fine(10), fine(10)),
                          dup(0) if i else box_normal(5, 5, 10, 10),
                          box_normal(i % 8, i % 8, 4, 4), box_raw(fine(3), fine(3), fine(3), fine(9)),
                          box_normal(2, 2, 4, 4)][choice])
            scores.append(score(i % 3))
        else:  # 'nonfinite': NaN, infinities, far outliers among normal boxes
            choice = i % 7
            boxes.append([box_raw(NAN, fine(1), fine(5), fine(5)), box_raw(fine(0), fine(0), INF, fine(5)),
                          box_raw(HUGE, HUGE, HUGE, HUGE), bytes([0]) + bytes([212, 0]) + bytes([212, 0, 63, 63]),
                          box_raw(MAXV, fine(0), MAXV, fine(4)), box_normal(10 + i, 10, 20, 20),
                          box_normal(12 + i, 11, 20, 20)][choice])
            scores.append([bytes([192]), bytes([200]), bytes([204]), score(i % 16)][i % 4])
    return bytes([n]) + b''.join(boxes) + b''.join(scores)


def classes(n):
    return bytes([i % 4 for i in range(n)])


def rotated_scene(rng, kind, n):
    out = bytearray([n])
    for i in range(n):
        if kind == 'nonfinite' and i % 3 == 0:
            out += bytes([128]) + NAN + fine(1) + fine(5) + INF + bytes([200])
        elif kind == 'degenerate' and i % 2 == 0:
            out += bytes([0]) + fine(i % 4) + fine(0) + bytes([0, 5, i % 8])
        else:
            out += bytes([0]) + fine(100 + rng.uniform(-5, 5) + 200 * (i % 3)) + fine(100) + \
                bytes([30 + rng.randrange(10), 20 + rng.randrange(10), rng.randrange(8)])
    out += b''.join(score(i) for i in range(n))
    out += bytes([i % 3 for i in range(n)])
    return bytes(out)


NMS_OPTIONS = {
    0: thr(0.5) + bytes(6), 1: thr(0.5) + bytes(6),
    2: thr(0.3) + bytes([0, 0]) + thr(0.5) + thr(0.001) + bytes(3),
    3: bytes(5) + thr(0.5) + bytes(2), 4: bytes(5) + thr(0.5) + bytes(2),
    5: thr(0.5) + bytes(6),
    6: thr(0.5) + bytes(4) + thr(0.9) + thr(0.2) + thr(0.01) + thr(0.6) + thr(0.8) + bytes(1),
    7: thr(0.8) + bytes([0]) + thr(1.0) + bytes(2),
    8: bytes([0]) + thr(0.01) + thr(0.01) + bytes([0]) + thr(0.5) + thr(0.5) + thr(0.001),
    9: thr(0.05) + thr(0.3) + thr(0.02) + bytes([4, 5, 6, 0]),
}


def write(target, name, data):
    folder = os.path.join(HERE, 'corpus', target)
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, name), 'wb') as f:
        f.write(data)


def main():
    rng = random.Random(1)
    kinds = ['clusters', 'degenerate', 'nonfinite']
    for op in range(12):
        for kind in kinds:
            for dtype in (0, 16):
                head = bytes([op | dtype])
                if op >= 10:
                    data = head + thr(0.5) + bytes(5) + rotated_scene(rng, kind, 24)
                elif op == 7:
                    kept = scene(rng, kind, 6)
                    data = head + NMS_OPTIONS[7] + kept + scene(rng, kind, 40)
                elif op == 8:
                    n = 40
                    data = head + NMS_OPTIONS[8] + scene(rng, kind, n) + bytes([1 + i % 5 for i in range(4 * n)])
                elif op == 9:
                    data = head + NMS_OPTIONS[9] + scene(rng, kind, 60) + bytes([100] * 60)
                else:
                    data = head + NMS_OPTIONS[op] + scene(rng, kind, 48)
                    if op in (1, 4):
                        data += classes(48)
                write('fuzz_nms', f'op{op:02d}_{kind}_{"double" if dtype else "float"}', data)
    for kind in kinds:
        for dtype in (0, 16):
            tag = f'{kind}_{"double" if dtype else "float"}'
            body = scene(rng, kind, 12)[1:]  # boxes (and scores, read as more boxes)
            # IoU family: format xyxy, eps flag off, threads; N = M = 12
            write('fuzz_iou', f'family_{tag}', bytes([0 | dtype, 0, 0, 0, 12, 12]) + body + body)
            write('fuzz_iou', f'losses_{tag}', bytes([1 | dtype, 0, 0, 0, 12, 1]) + body + body)
            write('fuzz_iou', f'rotated_{tag}', bytes([2 | dtype, 4, 0]) + rotated_scene(rng, kind, 10)[:-20] * 2)
            write('fuzz_iou', f'quad_{tag}', bytes([3 | dtype, 0, 10]) + (bytes([1]) + box_normal(3, 4, 10, 12) + bytes([1, 0])) * 20)
            # ONNX: iou 0.5, score threshold off, max 20, center_point_box 0, threads, B 2, C 2, N 24
            n = 24
            boxes = b''.join(scene(rng, kind, n)[1:][: 0] for _ in range(1))
            onnx = bytes([dtype]) + thr(0.5) + bytes([0, 20, 0, 0, 0, 2, 2, n])
            for _ in range(2):
                s = scene(rng, kind, n)
                onnx += s[1:len(s) - len(b''.join(score(0) for _ in range(0)))]
            write('fuzz_onnx_nms', f'{tag}', onnx + bytes([i % 16 for i in range(2 * 2 * n)]))
            # detection_ap: default options; G = 20 ground truths, D = 30 detections
            g = scene(rng, kind, 20)
            ap = bytes([dtype, 0]) + bytes([20]) + g[1:] + bytes([i % 3 for i in range(60)]) + \
                bytes([30]) + scene(rng, kind, 30)[1:] + bytes([i % 4 for i in range(60)]) + \
                b''.join(score(i) for i in range(30))
            write('fuzz_detection_ap', f'{tag}', ap)
            write('fuzz_detection_ap', f'perfect_{tag}', bytes([32 | dtype, 0, 20]) + g[1:] + bytes([i % 3 for i in range(60)]))


if __name__ == '__main__':
    main()
