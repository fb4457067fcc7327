"""What a model file's bytes say it needs beside it: real protobuf bytes, no I/O."""

from __future__ import annotations

import pytest

from gcs_model_sync.plan.companions import (
    GRAPH_READ,
    ONNX_READ,
    XML_READ,
    Needs,
    graph_ops,
    needs,
    onnx_external_files,
    read_size,
)
from tests.support.protos import (
    FROZEN_GRAPH,
    OPENVINO_XML,
    TF2_GRAPH,
    field,
    message,
    onnx_model,
    saved_model,
    tensor,
)


@pytest.mark.parametrize(
    ("graph", "variables"),
    [
        (TF2_GRAPH, True),
        (FROZEN_GRAPH, False),
        (saved_model("Placeholder", "VariableV2", "Assign"), True),  # TF1 ref variables
        (saved_model("Const", function_ops=("VarHandleOp",)), True),  # inside a function
        (saved_model("Const", "ReadVariableOp_like"), False),  # an op name, not a substring
        (b"", False),
        (b"pb:not a protobuf at all", False),  # cannot tell: never waits forever
    ],
)
def test_a_saved_model_graph_references_variables_through_its_ops(
    graph: bytes, variables: bool
) -> None:
    assert needs("saved_model.pb", graph) == Needs(variables=variables)


def test_a_graph_cut_off_by_the_bounded_read_still_shows_its_ops() -> None:
    graph = saved_model("Placeholder", "VarHandleOp", *["Const"] * 50)
    assert "VarHandleOp" in graph_ops(graph[: len(graph) // 3])
    assert graph_ops(FROZEN_GRAPH) == {"Placeholder", "Const", "MatMul", "Softmax"}


def test_a_text_saved_model_is_read_as_text() -> None:
    text = b'meta_graphs {\n graph_def {\n  node { name: "v" op: "VarHandleOp" }\n }\n}\n'
    assert needs("m.savedmodel/saved_model.pbtxt", text) == Needs(variables=True)
    assert needs("saved_model.pbtxt", text.replace(b"VarHandleOp", b"Const")) == Needs()


def test_onnx_external_data_locations_are_found_wherever_tensors_live() -> None:
    sparse = field(15, message(field(1, tensor("sv", location="sparse.bin")), field(3, 4)))
    subgraph = message(field(5, tensor("inner", location="sub/inner.bin")))
    loop = field(
        1, message(field(4, "Loop"), field(5, message(field(1, "body"), field(6, subgraph))))
    )
    model = onnx_model(
        tensor("a", location="weights.bin"),
        tensor("b", location="weights.bin"),  # many tensors, one file: named once
        tensor("inline"),
        tensor("c", location="./data/../more.bin"),
        tensor("up", location="../outside.bin"),  # out of the model's folder: left out
        tensor("abs", location="/etc/passwd"),
        constant=tensor("k", location="const.bin"),
    )
    graph_end = model + field(7, message(sparse, loop))  # a second graph field merges in
    assert onnx_external_files(graph_end) == (
        "const.bin",
        "weights.bin",
        "more.bin",
        "sparse.bin",
        "sub/inner.bin",
    )
    assert needs("v/model.onnx", onnx_model(tensor("w"))) == Needs()
    assert needs("model.onnx", b"\xff\xff garbage") == Needs()


def test_a_tensor_with_a_location_but_stored_inline_needs_no_file() -> None:
    stray = message(field(8, "t"), field(13, message(field(1, "location"), field(2, "x.bin"))))
    assert onnx_external_files(onnx_model(stray)) == ()


@pytest.mark.parametrize(
    ("head", "ir"),
    [
        (OPENVINO_XML, True),
        (b'\xef\xbb\xbf<?xml version="1.0"?><!-- exported --><net name="m">', True),
        (b"<net>", True),
        (b"<network/>", False),
        (b"<labels><net/></labels>", False),  # <net> must be the root element
        (b"", False),
    ],
)
def test_an_xml_is_an_openvino_ir_when_its_root_element_is_net(head: bytes, ir: bool) -> None:
    assert needs("ov/model.xml", head) == (Needs(files=("model.bin",)) if ir else Needs())


def test_reads_are_bounded_and_only_for_model_files() -> None:
    assert read_size("a/saved_model.pb", 10 * GRAPH_READ) == GRAPH_READ
    assert read_size("model.onnx", ONNX_READ) == ONNX_READ
    assert read_size("model.onnx", ONNX_READ + 1) is None
    assert read_size("model.xml", 10) == XML_READ
    assert read_size("model.bin", 10) is None
