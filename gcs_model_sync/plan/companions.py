"""Pure: what a model file's own bytes say must be uploaded beside it.

The listing cannot tell a graph that restores variables from a frozen one, nor which files an
ONNX model keeps its tensors in, so completeness (completeness.py) asks these functions about the
first bytes of a few small objects, read by phases/peek.py. Each reads only the protobuf fields
that matter, by field number (the wire format needs no schema):

- SavedModel (saved_model.proto, meta_graph.proto, graph.proto, function.proto):
  SavedModel.meta_graphs = 2 -> MetaGraphDef.graph_def = 2 -> GraphDef.node = 1 ->
  NodeDef.op = 2; GraphDef.library = 2 -> FunctionDefLibrary.function = 1 ->
  FunctionDef.node_def = 3.
- ONNX (onnx.proto): ModelProto.graph = 7, ModelProto.functions = 25 (FunctionProto.node = 7);
  GraphProto.node = 1, .initializer = 5, .sparse_initializer = 15 (SparseTensorProto.values = 1,
  .indices = 2); NodeProto.attribute = 5 -> AttributeProto.t = 5, .g = 6, .tensors = 10,
  .graphs = 11, .sparse_tensor = 22, .sparse_tensors = 23; TensorProto.external_data = 13
  (StringStringEntryProto key = 1, value = 2), .data_location = 14 (EXTERNAL = 1).
- OpenVINO IR: an XML document whose root element is <net>; its weights are the .bin of the
  same name.

A read is bounded, so a message may be cut off: parsing takes what is there and stops at the
first byte that does not parse. Bytes that are no such model at all need nothing: waiting on
them would wait forever, and the server's load reports what is wrong with them.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterator
from typing import NamedTuple

MiB = 1024 * 1024
# A graph that restores variables keeps its weights in variables/, so it is small; a graph
# larger than this is a frozen one (weights as constants) past its first bytes anyway.
GRAPH_READ = 64 * MiB
ONNX_READ = 64 * MiB  # external data exists to keep the .onnx small; a larger one holds its own
XML_READ = 4096  # enough for the XML declaration, comments and the root element's start

SAVED_MODEL_FILES = ("saved_model.pb", "saved_model.pbtxt")
# Ops that hold or restore a variable: TF2 resource variables (VarHandleOp), TF1 ref variables
# (VariableV2, Variable) and the saver's restore ops. A frozen graph has none of them.
VARIABLE_OPS = frozenset(
    {"VarHandleOp", "_VarHandlesOp", "VariableV2", "Variable", "RestoreV2", "Restore"}
)
_TEXT_OP = re.compile(rb'\bop\s*:\s*"([A-Za-z0-9_]+)"')
_XML_ROOT = re.compile(
    rb"\A(?:\xef\xbb\xbf)?\s*(?:<\?.*?\?>\s*|<!--.*?-->\s*|<!DOCTYPE[^>]*>\s*)*<net[\s>/]", re.S
)
_DEPTH = 32  # nested ONNX subgraphs deeper than this are not followed


class Needs(NamedTuple):
    """What a model file needs beside it before its version may be published."""

    variables: bool = False  # a SavedModel graph whose variables are restored from variables/
    files: tuple[str, ...] = ()  # paths relative to the file's folder


def read_size(relpath: str, size: int) -> int | None:
    """How many leading bytes (at most) of this object of `size` stored bytes tell what it
    needs; None: it needs nothing."""
    name = posixpath.basename(relpath)
    if name in SAVED_MODEL_FILES:
        return GRAPH_READ
    if name.endswith(".onnx"):
        return ONNX_READ if size <= ONNX_READ else None
    if name.endswith(".xml"):
        return XML_READ
    return None


def needs(relpath: str, head: bytes) -> Needs:
    """What the object at `relpath` (in its version) needs, from its first bytes `head`."""
    name = posixpath.basename(relpath)
    if name == "saved_model.pbtxt":
        return Needs(variables=bool(VARIABLE_OPS & text_graph_ops(head)))
    if name == "saved_model.pb":
        return Needs(variables=bool(VARIABLE_OPS & graph_ops(head)))
    if name.endswith(".onnx"):
        return Needs(files=onnx_external_files(head))
    if name.endswith(".xml") and _XML_ROOT.match(head):
        return Needs(files=(name[: -len(".xml")] + ".bin",))
    return Needs()


def graph_ops(data: bytes) -> set[str]:
    """The op of every node of a binary SavedModel: its graphs' and their functions'."""
    ops: set[str] = set()
    for meta in _messages(memoryview(data), 2):
        for graph in _messages(meta, 2):
            ops.update(_node_ops(graph, 1))
            for library in _messages(graph, 2):
                for function in _messages(library, 1):
                    ops.update(_node_ops(function, 3))
    return ops


def text_graph_ops(data: bytes) -> set[str]:
    """The ops of a text-format SavedModel (saved_model.pbtxt): every `op: "Name"`."""
    return {m.group(1).decode() for m in _TEXT_OP.finditer(data)}


def onnx_external_files(data: bytes) -> tuple[str, ...]:
    """The external data files an ONNX model's tensors name, in order, each once, relative
    to the model's folder. Absolute locations and ones climbing out are left out: no upload
    can complete them, and onnxruntime refuses them."""
    model = memoryview(data)
    found: dict[str, None] = {}
    for graph in _messages(model, 7):
        _graph_files(graph, found, 0)
    for function in _messages(model, 25):
        for node in _messages(function, 7):
            _node_files(node, found, 0)
    out = []
    for location in found:
        path = posixpath.normpath(location.replace("\\", "/"))
        if path.startswith(("/", "../")) or path in ("..", "."):
            continue
        out.append(path)
    return tuple(out)


def _graph_files(graph: memoryview, found: dict[str, None], depth: int) -> None:
    if depth > _DEPTH:
        return
    for number, value in _fields(graph):
        if not isinstance(value, memoryview):
            continue
        if number == 5:
            _tensor_file(value, found)
        elif number == 15:
            _sparse_files(value, found)
        elif number == 1:
            _node_files(value, found, depth)


def _node_files(node: memoryview, found: dict[str, None], depth: int) -> None:
    for attribute in _messages(node, 5):
        for number, value in _fields(attribute):
            if not isinstance(value, memoryview):
                continue
            if number in (5, 10):
                _tensor_file(value, found)
            elif number in (22, 23):
                _sparse_files(value, found)
            elif number in (6, 11):
                _graph_files(value, found, depth + 1)


def _sparse_files(sparse: memoryview, found: dict[str, None]) -> None:
    for number, value in _fields(sparse):
        if number in (1, 2) and isinstance(value, memoryview):
            _tensor_file(value, found)


def _tensor_file(tensor: memoryview, found: dict[str, None]) -> None:
    external, location = False, None
    for number, value in _fields(tensor):
        if number == 14 and value == 1:
            external = True
        elif number == 13 and isinstance(value, memoryview):
            entry = {n: bytes(v) for n, v in _fields(value) if isinstance(v, memoryview)}
            if entry.get(1) == b"location" and 2 in entry:
                location = entry[2].decode("utf-8", "replace")
    if external and location:
        found.setdefault(location, None)


def _node_ops(message: memoryview, number: int) -> Iterator[str]:
    for node in _messages(message, number):
        for op in _messages(node, 2):
            yield bytes(op).decode("utf-8", "replace")


def _messages(message: memoryview, number: int) -> Iterator[memoryview]:
    """The length-delimited fields `number` of a message (a cut-off last one as far as it goes)."""
    for n, value in _fields(message):
        if n == number and isinstance(value, memoryview):
            yield value


def _fields(buf: memoryview) -> Iterator[tuple[int, int | memoryview]]:
    """(field number, value) of a message's fields: varints as ints, length-delimited fields
    as views; fixed-width ones are skipped. Stops at the first malformed byte or group."""
    i, end = 0, len(buf)
    while i < end:
        key, i = _varint(buf, i)
        if key is None or key >> 3 == 0:
            return
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, i = _varint(buf, i)
            if value is None:
                return
            yield number, value
        elif wire == 2:
            length, i = _varint(buf, i)
            if length is None:
                return
            yield number, buf[i : i + length]
            i += length
        elif wire == 1:
            i += 8
        elif wire == 5:
            i += 4
        else:
            return


def _varint(buf: memoryview, i: int) -> tuple[int | None, int]:
    value = shift = 0
    while i < len(buf) and shift < 64:
        byte = buf[i]
        i += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, i
        shift += 7
    return None, i
