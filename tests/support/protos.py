"""Real SavedModel, ONNX and OpenVINO IR bytes for tests, without tensorflow or onnx installed.

A minimal protobuf wire-format encoder (varints and length-delimited fields are all these
messages need) and the few fields that say what a model file needs beside it:

SavedModel (tensorflow/core/protobuf/saved_model.proto, meta_graph.proto,
tensorflow/core/framework/graph.proto, node_def.proto, function.proto):
  SavedModel.meta_graphs = 2 -> MetaGraphDef.graph_def = 2 -> GraphDef.node = 1 ->
  NodeDef.name = 1, NodeDef.op = 2; GraphDef.library = 2 -> FunctionDefLibrary.function = 1
  -> FunctionDef.node_def = 3; SavedModel.saved_model_schema_version = 1.

ONNX (onnx/onnx.proto):
  ModelProto.ir_version = 1, .graph = 7 -> GraphProto.node = 1, .initializer = 5 ->
  TensorProto.name = 8, .raw_data = 9, .external_data = 13 (StringStringEntryProto key = 1,
  value = 2), .data_location = 14 (EXTERNAL = 1); NodeProto.op_type = 4, .attribute = 5 ->
  AttributeProto.t = 5, .g = 6.
"""

from __future__ import annotations


def varint(n: int) -> bytes:
    out = bytearray()
    while True:
        low, n = n & 0x7F, n >> 7
        out.append(low | (0x80 if n else 0))
        if not n:
            return bytes(out)


def field(number: int, value: int | bytes | str) -> bytes:
    """One field: an int as a varint (wire type 0), bytes or text length-delimited (2)."""
    if isinstance(value, int):
        return varint(number << 3) + varint(value)
    data = value.encode() if isinstance(value, str) else value
    return varint(number << 3 | 2) + varint(len(data)) + data


def message(*fields: bytes) -> bytes:
    return b"".join(fields)


def node_def(name: str, op: str) -> bytes:
    return message(field(1, name), field(2, op), field(4, "/device:CPU:0"))


def saved_model(*ops: str, function_ops: tuple[str, ...] = ()) -> bytes:
    """A saved_model.pb whose one graph has a node per op (and a function with function_ops)."""
    nodes = [field(1, node_def(f"n{i}", op)) for i, op in enumerate(ops)]
    if function_ops:
        body = message(*(field(3, node_def(f"f{i}", op)) for i, op in enumerate(function_ops)))
        nodes.append(field(2, field(1, body)))
    graph = message(*nodes)
    meta = message(field(1, field(1, "serve")), field(2, graph))
    return message(field(1, 1), field(2, meta))


# A TF2 Keras export: variables as resource handles, read in the graph, restored by a saver.
TF2_GRAPH = saved_model("Placeholder", "VarHandleOp", "ReadVariableOp", "RestoreV2")
# A TF1 frozen graph: weights folded into constants, no variable left to restore.
FROZEN_GRAPH = saved_model("Placeholder", "Const", "MatMul", "Softmax")


def tensor(name: str, location: str | None = None, raw: bytes = b"\0" * 16) -> bytes:
    """A TensorProto, its data inline (raw_data) or, with `location`, in an external file."""
    if location is None:
        return message(field(1, 4), field(2, 1), field(8, name), field(9, raw))
    entries = [field(13, message(field(1, "location"), field(2, location)))]
    entries.append(field(13, message(field(1, "offset"), field(2, "0"))))
    return message(field(1, 4), field(2, 1), field(8, name), *entries, field(14, 1))


def onnx_model(*initializers: bytes, constant: bytes | None = None) -> bytes:
    """A ModelProto whose graph holds `initializers` (and a Constant node's tensor attribute)."""
    parts = []
    if constant is not None:
        attr = message(field(1, "value"), field(5, constant), field(20, 4))
        parts.append(field(1, message(field(4, "Constant"), field(5, attr))))
    parts += [field(5, t) for t in initializers]
    graph = message(*parts, field(2, "g"))
    return message(field(1, 8), field(2, "test"), field(7, graph))


OPENVINO_XML = b'<?xml version="1.0"?>\n<net name="m" version="11">\n<layers/>\n</net>\n'
