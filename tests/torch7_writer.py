"""Writes Torch7 `torch.save` files (the binary format) for test fixtures.

The layout follows torch7's `File.lua` (`writeObject`) and `generic/Tensor.c`
(`write`): every object starts with its type id; tables and torch objects
then carry a reference index, torch objects a version string ("V 1") and a
class name; a tensor writes its dimensions, sizes, strides (in elements),
1-based storage offset, then its storage object (element count and raw
little-endian values). Ints are 4 bytes, longs 8 (64-bit Linux builds).

Example:

    write_float_tensor("batch1", np.zeros((20, 1, 150, 150), np.float32))
    torchfile.load("batch1").shape  # (20, 1, 150, 150)
"""

import struct

import numpy as np

TYPE_NIL, TYPE_NUMBER, TYPE_STRING, TYPE_TABLE, TYPE_TORCH, TYPE_BOOLEAN = 0, 1, 2, 3, 4, 5

_TENSOR_TYPES = {
    np.dtype("float32"): ("torch.FloatTensor", "torch.FloatStorage"),
    np.dtype("float64"): ("torch.DoubleTensor", "torch.DoubleStorage"),
    np.dtype("int64"): ("torch.LongTensor", "torch.LongStorage"),
    np.dtype("int32"): ("torch.IntTensor", "torch.IntStorage"),
    np.dtype("uint8"): ("torch.ByteTensor", "torch.ByteStorage"),
}


def write_float_tensor(path, array):
    """Writes `array` as a torch.FloatTensor with its FloatStorage, as `torch.save` does."""
    write_t7(path, np.asarray(array, dtype=np.float32))


def write_t7(path, obj):
    """Writes nil, booleans, numbers, strings, tables (dicts, lists) and numpy tensors."""
    with open(path, "wb") as f:
        _Writer(f).object(obj)


class _Writer:
    def __init__(self, f):
        self.f = f
        self.count = 0

    def _int(self, value):
        self.f.write(struct.pack("<i", value))

    def _long(self, *values):
        self.f.write(struct.pack(f"<{len(values)}q", *values))

    def _string(self, text):
        data = text.encode() if isinstance(text, str) else text
        self._int(len(data))
        self.f.write(data)

    def _torch_header(self, class_name):
        self._int(TYPE_TORCH)
        self.count += 1
        self._int(self.count)
        self._string("V 1")
        self._string(class_name)

    def object(self, obj):
        if obj is None:
            self._int(TYPE_NIL)
        elif isinstance(obj, (bool, np.bool_)):
            self._int(TYPE_BOOLEAN)
            self._int(int(obj))
        elif isinstance(obj, (int, float, np.integer, np.floating)):
            self._int(TYPE_NUMBER)
            self.f.write(struct.pack("<d", float(obj)))
        elif isinstance(obj, str):
            self._int(TYPE_STRING)
            self._string(obj)
        elif isinstance(obj, np.ndarray):
            self.tensor(obj)
        elif isinstance(obj, (dict, list, tuple)):
            items = obj.items() if isinstance(obj, dict) else enumerate(obj, start=1)
            items = list(items)
            self._int(TYPE_TABLE)
            self.count += 1
            self._int(self.count)
            self._int(len(items))
            for key, value in items:
                self.object(key)
                self.object(value)
        else:
            raise TypeError(f"cannot write {type(obj).__name__} in Torch7 format")

    def tensor(self, array):
        if array.dtype not in _TENSOR_TYPES:
            raise TypeError(f"no Torch7 tensor type for dtype {array.dtype}")
        tensor_name, storage_name = _TENSOR_TYPES[array.dtype]
        array = np.ascontiguousarray(array)
        self._torch_header(tensor_name)
        self._int(array.ndim)
        if array.ndim:
            self._long(*array.shape)
            self._long(*(s // array.itemsize for s in array.strides))
        self._long(1)
        self._torch_header(storage_name)
        self._long(array.size)
        self.f.write(array.astype(array.dtype.newbyteorder("<"), copy=False).tobytes())
