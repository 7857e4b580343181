#!/usr/bin/env python3
"""Writes a LLaMA-style SentencePiece BPE ModelProto (tokenizer.model) from a list of pieces.

Usage: sp_model_from_vocab.py PIECES.txt OUT.model

PIECES.txt has one piece per line ("\n"-separated, UTF-8), in id order, as the LLaMA vocabulary
that llama-tokenizer-js ships. Types and scores follow LLaMA's tokenizer.model: <unk> UNKNOWN,
<s> and </s> CONTROL, <0xNN> BYTE (score 0); pieces made only of "▁" (2+ long) score -1e9;
every other piece scores -(id - 259), so a lower id is a higher-priority merge. The trainer and
normalizer specs are LLaMA's (BPE, byte fallback, split digits, identity normaliser, dummy
prefix, whitespace kept). tests/unit/base_tokenizer.cpp builds the same file in C++.

No protobuf library is needed: the wire format is written by hand.
"""
import struct
import sys

SPACE = "\u2581"


def varint(n):
    if n < 0:
        n += 1 << 64
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def f_varint(field, v):
    return varint(field << 3) + varint(v)


def f_bytes(field, b):
    if isinstance(b, str):
        b = b.encode("utf-8")
    return varint((field << 3) | 2) + varint(len(b)) + b


def f_float(field, v):
    return varint((field << 3) | 5) + struct.pack("<f", v)


def piece_type_score(i, piece):
    if piece == "<unk>":
        return 2, 0.0
    if piece in ("<s>", "</s>"):
        return 3, 0.0
    if len(piece) == 6 and piece.startswith("<0x") and piece.endswith(">"):
        return 6, 0.0
    if len(piece) >= 2 and set(piece) == {SPACE}:
        return 1, -1.0e9
    return 1, float(-(i - 259))


def main():
    src, dst = sys.argv[1], sys.argv[2]
    with open(src, encoding="utf-8", newline="\n") as f:
        pieces = f.read().split("\n")
    if pieces and pieces[-1] == "":
        pieces.pop()
    out = bytearray()
    for i, piece in enumerate(pieces):
        t, s = piece_type_score(i, piece)
        msg = f_bytes(1, piece) + f_float(2, s) + (f_varint(3, t) if t != 1 else b"")
        out += f_bytes(1, msg)
    trainer = (f_varint(3, 2) + f_varint(4, len(pieces)) + f_varint(25, 1) + f_varint(35, 1)
               + f_varint(40, 0) + f_varint(41, 1) + f_varint(42, 2) + f_varint(43, -1))
    normalizer = f_bytes(1, "identity") + f_varint(3, 1) + f_varint(4, 0) + f_varint(5, 1)
    out += f_bytes(2, trainer) + f_bytes(3, normalizer)
    with open(dst, "wb") as f:
        f.write(out)


if __name__ == "__main__":
    main()
