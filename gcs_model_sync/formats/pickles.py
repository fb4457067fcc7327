"""Pure: what --refuse-pickle refuses, by a file's name and by its first bytes. No I/O.

Unpickling runs code, so a pickle from a bucket is code from whoever can write there. These
names hold pickles by convention. `.bin` is also the weights of OpenVINO IR, ONNX external
data and other raw tensors, so a `.bin` is refused by its bytes alone: a raw pickle, or
what torch.save writes (a zip whose first member is `.../data.pkl`).
"""

from __future__ import annotations

import struct

NAMED = (".pkl", ".pickle", ".pt", ".pth")  # refused by name, wherever they are
SNIFFED = (".bin",)  # refused when their bytes are a pickle
HEAD = 512  # the bytes read to judge a `.bin`: a pickle's first two, a zip's first header
_ZIP_LOCAL = b"PK\x03\x04"


def named(path: str) -> bool:
    """A name that holds a pickle by convention (`tokenizer.pkl`, `model.pt`)."""
    return path.lower().endswith(NAMED)


def sniffed(path: str) -> bool:
    """A name whose bytes say whether it is a pickle."""
    return path.lower().endswith(SNIFFED)


def pickled(head: bytes) -> bool:
    """Whether a file starting with `head` is a pickle: protocol 2 or later (PROTO, 0x80,
    then the version), or torch's zip with `data.pkl` first. Protocols 0 and 1 have no
    marker; torch has written protocol 2 since its first release."""
    if len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5:
        return True
    if head.startswith(_ZIP_LOCAL) and len(head) >= 30:
        (length,) = struct.unpack_from("<H", head, 26)
        name = head[30 : 30 + length]
        return name == b"data.pkl" or name.endswith(b"/data.pkl")
    return False


def why(path: str) -> str:
    """The end of the one-line refusal."""
    what = "holds a pickle" if sniffed(path) else "is a pickle format"
    return f"{path} {what}, refused by --refuse-pickle (unpickling runs code)"
