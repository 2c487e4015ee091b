"""Reading large ONNX files without copying their weights through protobuf.

``onnx.load`` reads the file into memory and parses it, holding two copies of every weight
at its peak, and each ``raw_data`` access copies again. Instead we memory-map the file,
walk the protobuf wire format just far enough to find each initializer's ``raw_data`` bytes,
and parse a small *skeleton* (the model with those bytes cut out) with protobuf. Weights are
then viewed in place (``np.frombuffer`` on the map) and copied once, into the variables.

Wire format used (protobuf encoding): each field is a varint key ``(number << 3) | type``;
type 0 = varint, 1 = 8 bytes, 2 = length-delimited (varint length), 5 = 4 bytes.
ModelProto.graph = 7, GraphProto.initializer = 5, TensorProto.raw_data = 9.
"""

from __future__ import annotations

import mmap
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnx import helper

_MODEL_GRAPH, _GRAPH_INITIALIZER, _TENSOR_RAW_DATA = 7, 5, 9


class WireFormatError(ValueError):
    """The bytes are not a well-formed protobuf message (e.g. a truncated file)."""


def _varint(buf, pos: int, end: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= end:
            raise WireFormatError("varint runs past the end of the data")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise WireFormatError("varint longer than 10 bytes")


def _encode_varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _fields(buf, start: int, end: int):
    """Yield (number, wire_type, field_start, value_start, value_end) for each field."""
    pos = start
    while pos < end:
        field_start = pos
        key, pos = _varint(buf, pos, end)
        number, wtype = key >> 3, key & 7
        if wtype == 0:
            _, value_end = _varint(buf, pos, end)
            value_start = pos
        elif wtype == 1:
            value_start, value_end = pos, pos + 8
        elif wtype == 2:
            length, value_start = _varint(buf, pos, end)
            value_end = value_start + length
        elif wtype == 5:
            value_start, value_end = pos, pos + 4
        else:
            raise WireFormatError(f"unsupported wire type {wtype}")
        if value_end > end:
            raise WireFormatError("a field runs past the end of its message (truncated file?)")
        yield number, wtype, field_start, value_start, value_end
        pos = value_end


def _length_delimited(number: int, payload: bytes) -> bytes:
    return _encode_varint((number << 3) | 2) + _encode_varint(len(payload)) + payload


def _strip(buf, start, end, path: tuple[int, ...], found: list[tuple[int, int]]) -> bytes:
    """Copy message buf[start:end], dropping the raw_data of initializers (recorded in found)."""
    target, rest = path[0], path[1:]
    out = bytearray()
    for number, wtype, fstart, vstart, vend in _fields(buf, start, end):
        if number == target and wtype == 2:
            if rest:
                out += _length_delimited(number, _strip(buf, vstart, vend, rest, found))
                continue
            found.append((vstart, vend - vstart))
            continue
        out += buf[fstart:vend]
    return bytes(out)


def _strip_initializers(buf, start, end, found: dict[int, tuple[int, int]]) -> bytes:
    """GraphProto: strip raw_data from each initializer (counted in order)."""
    out = bytearray()
    index = 0
    for number, wtype, fstart, vstart, vend in _fields(buf, start, end):
        if number == _GRAPH_INITIALIZER and wtype == 2:
            raw: list[tuple[int, int]] = []
            tensor = _strip(buf, vstart, vend, (_TENSOR_RAW_DATA,), raw)
            if raw:
                found[index] = raw[-1]
            out += _length_delimited(number, tensor)
            index += 1
            continue
        out += buf[fstart:vend]
    return bytes(out)


@dataclass
class RawWeights:
    """The memory-mapped file and where each initializer's raw bytes lie in it."""

    buffer: mmap.mmap
    spans: dict[int, tuple[int, int]]  # initializer index -> (offset, length)

    def array(self, index: int, tensor: onnx.TensorProto) -> np.ndarray | None:
        """A read-only view of initializer ``index``'s data, or None if it has no raw data."""
        span = self.spans.get(index)
        if span is None:
            return None
        offset, length = span
        dtype = np.dtype(helper.tensor_dtype_to_np_dtype(tensor.data_type)).newbyteorder("<")
        count = length // dtype.itemsize
        arr = np.frombuffer(self.buffer, dtype=dtype, count=count, offset=offset)
        return arr.reshape(tuple(tensor.dims))

    def release(self, index: int) -> None:
        """Tell the kernel we are done with initializer ``index``'s pages (drops them from
        this process's resident memory, so the file and the variables never both stay)."""
        span = self.spans.get(index)
        if span is None or not hasattr(mmap, "MADV_DONTNEED"):
            return
        offset, length = span
        start = offset - offset % mmap.PAGESIZE
        self.buffer.madvise(mmap.MADV_DONTNEED, start, offset + length - start)

    def close(self) -> None:
        try:
            self.buffer.close()
        except BufferError:  # a view is still alive somewhere: the map closes when it dies
            pass


def read_lean(path: Path) -> tuple[onnx.ModelProto, RawWeights]:
    """Parse ``path`` without its initializers' raw data; the data stays in the mapped file."""
    with open(path, "rb") as f:
        buffer = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    try:
        spans: dict[int, tuple[int, int]] = {}
        skeleton = bytearray()
        end = len(buffer)
        for number, wtype, fstart, vstart, vend in _fields(buffer, 0, end):
            if number == _MODEL_GRAPH and wtype == 2:
                skeleton += _length_delimited(
                    number, _strip_initializers(buffer, vstart, vend, spans)
                )
            else:
                skeleton += buffer[fstart:vend]
        model = onnx.load_from_string(bytes(skeleton))
    except Exception:
        buffer.close()
        raise
    return model, RawWeights(buffer, spans)
