"""Writes the safetensors fixtures in test/fixtures/safetensors/, read by
test/08-safetensors.test.ts:

  torch-all-dtypes.safetensors / .json
      written by safetensors.torch.save_file from a torch state_dict with F32,
      F16, BF16, F64, I64, I32, I16, I8, U8 and BOOL tensors (a 0-d tensor, an
      empty one, one named __proto__, a non-ASCII name, and F16 / BF16 / F64
      subnormals, infinities and NaN payloads), with one metadata key (the
      writer orders several keys at random); the JSON holds
      the values as PyTorch converts them (.float() for the floats, .int() /
      .long() for the integers), i.e. what simdformer must load.
  torch-native-dtypes.safetensors
      F32 / I32 / I64 / BOOL only (simdformer's own dtypes) and one metadata
      key: the test checks that serializeSafetensors writes these exact bytes.
  from-simdformer.json
      what safetensors.torch.load_file reads from from-simdformer.safetensors,
      a file written by simdformer's serializeSafetensors (the test rewrites
      it with UPDATE_SAFETENSORS_FIXTURES=1, below), and that file's SHA-256.

The safetensors package is not installed system-wide; its wheel is on disk:

  mkdir -p /tmp/st-site && cd /tmp/st-site && \\
    unzip -o /opt/pypi/files/safetensors-0.8.0-cp310-abi3-manylinux_2_17_x86_64.manylinux2014_x86_64.whl
  (or: pip install --target /tmp/st-site safetensors==0.8.0)

Then, from the package root (torch 1.13 is Debian's, under /usr/bin/python3):

  1. PYTHONPATH=/tmp/st-site /usr/bin/python3 scripts/gen_safetensors_fixtures.py
  2. UPDATE_SAFETENSORS_FIXTURES=1 npx jest test/08-safetensors.test.ts
     (only when simdformer's side changed: rewrites from-simdformer.safetensors)
  3. run step 1 again, so from-simdformer.json records PyTorch's reading of it.

Deterministic: two runs write the same bytes.

JSON format: { "torch", "safetensors", "metadata": {...}, "tensors": [tensor...] }
with tensors in file order, each
  { "name", "safetensorsDtype": "F16", "torchDtype": "torch.float16",
    "shape": [...], "dtype": "float32" | "int32" | "int64" | "bool", "values": [...] }
where "dtype" is the simdformer dtype the tensor loads as and "values" are
row-major: float32 as the uint32 of its bits (exact, NaN payloads included),
int32 as numbers, int64 as decimal strings (JSON numbers lose bits past 2^53),
bool as 0 / 1.
"""

import hashlib
import json
import os
import sys

import numpy as np
import torch

try:
    import safetensors
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file
except ImportError:
    sys.exit("safetensors is not importable: see this script's header for PYTHONPATH=/tmp/st-site")

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "test", "fixtures", "safetensors")

SAFETENSORS_DTYPES = {
    torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16", torch.float64: "F64",
    torch.int64: "I64", torch.int32: "I32", torch.int16: "I16", torch.int8: "I8",
    torch.uint8: "U8", torch.bool: "BOOL",
}


def from_bits(words, numpy_unsigned, torch_dtype, shape=None):
    """A tensor of `torch_dtype` with these exact bit patterns."""
    signed = {np.uint16: np.int16, np.uint64: np.int64}[numpy_unsigned]
    array = np.array(words, dtype=numpy_unsigned).view(signed)
    tensor = torch.from_numpy(array.copy()).view(torch_dtype)
    return tensor.reshape(shape) if shape is not None else tensor


def all_dtypes_state_dict():
    half_bits = [
        0x0001, 0x8001, 0x03FF, 0x0400,  # smallest subnormal (and negative), largest subnormal, smallest normal
        0x3C00, 0x3555, 0x7BFF, 0x8000,  # 1, ~1/3, 65504, -0
        0x7C00, 0xFC00,                  # +-inf
        0x7E00, 0x7C01, 0xFE01, 0x7DFF,  # quiet NaN, signalling NaN with payload, negative NaN, payload bits
    ]
    bfloat_bits = [
        0x0001, 0x807F, 0x0080, 0x3F80,  # smallest subnormal, negative subnormal, smallest normal, 1
        0x7F7F, 0x8000, 0x7F80, 0xFF80,  # largest finite, -0, +-inf
        0x7FC0, 0x7F81, 0xFFC1,          # quiet NaN, signalling NaN with payload, negative NaN
    ]
    double_values = torch.tensor([
        0.1, -2.5, 1e-40, -1e-45, 1e-50,  # float32 subnormals, underflow to (signed) zero
        3.4028235e38, 3.4028236e38, 1e39, -1e39,  # largest float32, rounding past it, overflow to inf
        1 + 2 ** -24, 1 + 3 * 2 ** -24, -0.0,  # ties round to even
        float("inf"), float("-inf"),
    ], dtype=torch.float64)
    double_nans = from_bits([
        0x7FF8000000000000, 0x7FF0000000000001, 0xFFF8000020000000, 0x7FF4000000000000,
    ], np.uint64, torch.float64)
    return {
        "encoder.weight": torch.tensor([[0.5, -1.25, 3.0], [-0.0, 1e-45, float("inf")]], dtype=torch.float32),
        "encoder.bias": torch.tensor([float("nan"), -3.4028235e38, 7.0], dtype=torch.float32),
        "half.special": from_bits(half_bits, np.uint16, torch.float16, [2, 7]),
        "half.values": torch.tensor([[0.1, -2.0], [1000.5, 1e-6]], dtype=torch.float32).half(),
        "bfloat.special": from_bits(bfloat_bits, np.uint16, torch.bfloat16),
        "double.values": double_values,
        "double.nans": double_nans,
        "long": torch.tensor([-(2 ** 63), 2 ** 63 - 1, 0, -1, 2 ** 53 + 1], dtype=torch.int64),
        "int": torch.tensor([-(2 ** 31), 2 ** 31 - 1, 7], dtype=torch.int32),
        "short": torch.tensor([-(2 ** 15), 2 ** 15 - 1, -2], dtype=torch.int16),
        "char": torch.tensor([-128, 127, 0], dtype=torch.int8),
        "byte": torch.tensor([0, 1, 128, 255], dtype=torch.uint8),
        "mask": torch.tensor([[True, False, True], [False, False, True]]),
        "scalar": torch.tensor(3.5, dtype=torch.float32),
        "empty": torch.zeros([0, 4], dtype=torch.float32),
        "empty.half": torch.zeros([3, 0], dtype=torch.float16),
        "__proto__": torch.tensor([1.0, 2.0], dtype=torch.float32),
        "blöck.0.wëight": torch.tensor([42], dtype=torch.int32),
    }


def native_dtypes_state_dict():
    """simdformer's own dtypes, with an odd-length bool tensor so alignment matters."""
    return {
        "layers.0.linear.weight": torch.tensor([[0.25, -0.5], [1.5, float("nan")]], dtype=torch.float32),
        "layers.0.linear.bias": torch.tensor([1.0, -1.0], dtype=torch.float32),
        "layers.0.mask": torch.tensor([True, False, True]),
        "layers.0.step": torch.tensor(7, dtype=torch.int64),
        "layers.0.ids": torch.tensor([3, 1, 4], dtype=torch.int32),
        "position_ids": torch.tensor([[0, 1, 2]], dtype=torch.int64),
        "zzz.empty": torch.zeros([0], dtype=torch.float32),
    }


def simdformer_dtype(tensor):
    if tensor.dtype in (torch.float32, torch.float16, torch.bfloat16, torch.float64):
        return "float32"
    if tensor.dtype == torch.bool:
        return "bool"
    if tensor.dtype == torch.int64:
        return "int64"
    return "int32"


def describe(name, tensor):
    """A tensor as simdformer should load it, converted the way PyTorch converts."""
    dtype = simdformer_dtype(tensor)
    flat = tensor.reshape(-1)
    if dtype == "float32":
        values = flat.float().view(torch.int32).numpy().view(np.uint32).tolist()
    elif dtype == "int64":
        values = [str(v) for v in flat.long().tolist()]
    elif dtype == "bool":
        values = [int(v) for v in flat.tolist()]
    else:
        values = flat.int().tolist()
    return {
        "name": name,
        "safetensorsDtype": SAFETENSORS_DTYPES[tensor.dtype],
        "torchDtype": str(tensor.dtype),
        "shape": list(tensor.shape),
        "dtype": dtype,
        "values": values,
    }


def read_back(path):
    """What safetensors.torch reads from `path`, in file order, with its metadata."""
    tensors = load_file(path)
    with safe_open(path, framework="pt") as handle:
        metadata = dict(sorted((handle.metadata() or {}).items()))  # the reader's map has no fixed order
        names = list(handle.keys())
    offsets = header_offsets(path)
    names.sort(key=lambda name: offsets[name])
    return metadata, [describe(name, tensors[name]) for name in names]


def header_offsets(path):
    with open(path, "rb") as f:
        length = int.from_bytes(f.read(8), "little")
        header = json.loads(f.read(length))
    return {name: tuple(entry["data_offsets"]) for name, entry in header.items() if name != "__metadata__"}


def save(state_dict, path, metadata):
    save_file(state_dict, path, metadata=metadata)
    os.chmod(path, 0o644)  # save_file creates files readable by their owner only


def write_json(path, value):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(value, f, indent=1, ensure_ascii=False)
        f.write("\n")


def main():
    os.makedirs(FIXTURES, exist_ok=True)
    versions = {"torch": torch.__version__, "safetensors": safetensors.__version__}

    path = os.path.join(FIXTURES, "torch-all-dtypes.safetensors")
    # one metadata key: the writer orders several keys at random, and the bytes should not change between runs
    save(all_dtypes_state_dict(), path, {"written_by": "gen_safetensors_fixtures.py"})
    metadata, tensors = read_back(path)
    write_json(os.path.join(FIXTURES, "torch-all-dtypes.json"), {**versions, "metadata": metadata, "tensors": tensors})

    save(native_dtypes_state_dict(), os.path.join(FIXTURES, "torch-native-dtypes.safetensors"), {"format": "pt"})

    path = os.path.join(FIXTURES, "from-simdformer.safetensors")
    if not os.path.exists(path):
        sys.exit(f"{path} is missing: run UPDATE_SAFETENSORS_FIXTURES=1 npx jest test/08-safetensors.test.ts, then this again")
    with open(path, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    metadata, tensors = read_back(path)
    write_json(os.path.join(FIXTURES, "from-simdformer.json"),
               {**versions, "sha256": digest, "metadata": metadata, "tensors": tensors})


if __name__ == "__main__":
    main()
