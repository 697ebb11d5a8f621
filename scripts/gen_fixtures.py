"""Writes test/fixtures/functional.json: PyTorch's answers for simdformer's
functional ops (linear, matmul, softmax, layerNorm, relu, gelu), read by
test/05-functional-parity.test.ts.

Run with Debian's python, which has torch 1.13:  npm run fixtures
(= /usr/bin/python3 scripts/gen_fixtures.py). Seeded and deterministic: two
runs write the same bytes.

Format: { "torch": <torch.__version__>, "cases": [case...] }, where a case is
  { "name", "op", "inputs": {name: tensor}, "args": {...},
    "output": tensor, "atol"?: number, "note"?: string }
and a tensor is { "shape": [...], "dtype": "float32", "data": [...] } with
data in row-major order, each value the float32 written as the (exact)
Python float, or "nan" / "inf" / "-inf" since JSON has no non-finite numbers.
Inputs and args are named as in PyTorch; an arg whose value is null is passed
explicitly as null. "atol" is given only where a case needs another tolerance
than the test's default 1e-5, and "note" says why.

GEMM tiles (mr x nr) are 4x8 (ref), 6x16 (avx2) and 14x32 (avx512); K is
blocked by 256 and M by 64 (ref) / 144 (avx2) / 140 (avx512), so sizes
below are chosen to leave edge tiles and to cross those blocks.
"""

import json
import math
import os
import sys

import torch
import torch.nn.functional as F

OUTPUT_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "test", "fixtures", "functional.json")

NAN, INF = float("nan"), float("inf")


def encode_value(value):
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    if value.is_integer() and not (value == 0 and math.copysign(1.0, value) < 0):
        return int(value)  # "3" rather than "3.0"; -0.0 stays a float
    return value


def encode(t):
    assert t.dtype == torch.float32, t.dtype
    return {"shape": list(t.shape), "dtype": "float32", "data": [encode_value(v) for v in t.reshape(-1).tolist()]}


def randn(*shape):
    return torch.randn(*shape, dtype=torch.float32)


def uniform(bound, *shape):
    """U(-bound, bound): nn.Linear's own weight init, keeping outputs O(1)."""
    return (torch.rand(*shape, dtype=torch.float32) * 2 - 1) * bound


def small_integers(*shape):
    """Integers in [-8, 8] as float32.

    Short in JSON, and every partial sum of a GEMM with k <= 2**18 is exact in
    float32: the answer is the same in any summation order, so the big GEMM
    cases test blocking, packing and edge tiles, not rounding (the
    full-precision cases beside them test that)."""
    return torch.randint(-8, 9, shape).to(torch.float32)


DEFAULT_ATOL = 1e-5  # the test's tolerance for one float32 op

cases = []


def torch_error(output, exact):
    """Max |float32 answer - float64 answer| over finite elements; inf if
    the two disagree on where NaN and infinities are."""
    output = output.double()
    finite, infinite = torch.isfinite(exact), torch.isinf(exact)
    if not torch.equal(torch.isnan(output), torch.isnan(exact)) or not torch.equal(output[infinite], exact[infinite]):
        return INF
    return (output[finite] - exact[finite]).abs().max().item() if finite.any() else 0.0


def add_case(name, op, inputs, args, compute, atol=None, note=None, override=None):
    """Runs compute(**inputs) in float32 for the fixture, and in float64 to
    check that PyTorch's own rounding error leaves room for ours: a case may
    not ask simdformer to be closer to PyTorch than PyTorch is to the exact
    answer. `override(output)` rewrites the expected output where simdformer
    deviates from PyTorch on purpose."""
    assert all(c["name"] != name for c in cases), name
    output = compute(**inputs)
    error = torch_error(output, compute(**{key: value.double() for key, value in inputs.items()}))
    if error > (atol or DEFAULT_ATOL) / 2:
        sys.exit(f"{name}: PyTorch float32 is {error:.2e} from float64, more than half the tolerance")
    if override is not None:
        output = override(output.clone())
    case = {
        "name": name,
        "op": op,
        "inputs": {key: encode(value) for key, value in inputs.items()},
        "args": args,
        "output": encode(output),
    }
    if atol is not None:
        case["atol"] = atol
    if note is not None:
        case["note"] = note
    cases.append(case)


# --- linear: y = x · Wᵀ + b; x [..., in], W [out, in], b [out] ----------------

def add_linear(name, input, weight, bias, pass_bias_as_null=False):
    inputs = {"input": input, "weight": weight}
    args = {}
    if bias is not None:
        inputs["bias"] = bias
    elif pass_bias_as_null:
        args["bias"] = None
    add_case(name, "linear", inputs, args, F.linear)


def linear_cases():
    add_linear("linear 2-D with bias [7, 17] x [33, 17]", randn(7, 17), uniform(17**-0.5, 33, 17), uniform(0.5, 33))
    add_linear("linear 2-D without bias [17, 33] x [7, 33]", randn(17, 33), uniform(33**-0.5, 7, 33), None)
    add_linear(
        "linear 2-D with bias passed as null [5, 9] x [16, 9]",
        randn(5, 9),
        uniform(9**-0.5, 16, 9),
        None,
        pass_bias_as_null=True,
    )
    add_linear("linear 1-D input [33] x [17, 33]", randn(33), uniform(33**-0.5, 17, 33), uniform(0.5, 17))
    add_linear("linear 1-D input without bias [7] x [1, 7]", randn(7), uniform(7**-0.5, 1, 7), None)
    add_linear("linear single row [1, 1] x [1, 1]", randn(1, 1), randn(1, 1), randn(1))
    add_linear("linear 3-D input [2, 3, 9] x [17, 9]", randn(2, 3, 9), uniform(9**-0.5, 17, 9), uniform(0.5, 17))
    add_linear("linear 4-D input [2, 3, 4, 7] x [9, 7]", randn(2, 3, 4, 7), uniform(7**-0.5, 9, 7), None)
    # K crosses one 256-deep K block, with full-precision values.
    add_linear("linear k=300 crosses a K block [2, 300] x [3, 300]", randn(2, 300), uniform(300**-0.5, 3, 300), uniform(0.5, 3))
    # Edge tiles in M and N for every ISA (33 = 2*14+5 = 5*6+3 = 8*4+1;
    # 65 = 2*32+1 = 4*16+1 = 8*8+1) and k = 257 one past a K block.
    add_linear(
        "linear tiles [33, 257] x [65, 257] + bias",
        small_integers(33, 257),
        small_integers(65, 257),
        small_integers(65),
    )
    # Two K blocks and a partial third one (600 = 2*256 + 88).
    add_linear(
        "linear k=600 crosses two K blocks [7, 600] x [17, 600] + bias",
        small_integers(7, 600),
        small_integers(17, 600),
        small_integers(17),
    )
    # M past every ISA's M block (64, 140, 144), so more than one block of A.
    add_linear("linear m=150 crosses the M block [150, 9] x [7, 9]", small_integers(150, 9), small_integers(7, 9), None)


# --- matmul: torch.matmul's rank rules and batch broadcasting ------------------

def add_matmul(name, a, b):
    add_case(name, "matmul", {"input": a, "other": b}, {}, torch.matmul)


def matmul_cases():
    add_matmul("matmul 1-D . 1-D [17] . [17] -> []", randn(17), randn(17))
    add_matmul("matmul 1-D . 1-D [1] . [1] -> []", randn(1), randn(1))
    add_matmul("matmul 1-D . 2-D [7] . [7, 33]", randn(7), randn(7, 33))
    add_matmul("matmul 2-D . 1-D [33, 17] . [17]", randn(33, 17), randn(17))
    add_matmul("matmul 2-D . 2-D [17, 33] . [33, 7]", randn(17, 33), randn(33, 7))
    add_matmul("matmul 2-D . 2-D [1, 1] . [1, 1]", randn(1, 1), randn(1, 1))
    add_matmul("matmul 2-D . 2-D tiles [33, 257] . [257, 33]", small_integers(33, 257), small_integers(257, 33))
    add_matmul("matmul 1-D . 3-D [4] . [2, 4, 5]", randn(4), randn(2, 4, 5))
    add_matmul("matmul 3-D . 1-D [2, 5, 4] . [4]", randn(2, 5, 4), randn(4))
    add_matmul("matmul 3-D . 3-D [3, 7, 17] . [3, 17, 9]", randn(3, 7, 17), randn(3, 17, 9))
    add_matmul("matmul 3-D . 2-D [2, 5, 9] . [9, 17]", randn(2, 5, 9), randn(9, 17))
    add_matmul("matmul 2-D . 3-D [3, 4] . [2, 4, 5]", randn(3, 4), randn(2, 4, 5))
    add_matmul("matmul broadcast [2, 1, 3, 4] . [5, 4, 6]", randn(2, 1, 3, 4), randn(5, 4, 6))
    add_matmul("matmul broadcast [1, 3, 7, 9] . [2, 1, 9, 5]", randn(1, 3, 7, 9), randn(2, 1, 9, 5))
    add_matmul("matmul batched tiles [2, 33, 65] . [2, 65, 33]", small_integers(2, 33, 65), small_integers(2, 65, 33))


# --- softmax -----------------------------------------------------------------

def add_softmax(name, input, dim, override=None, note=None):
    add_case(name, "softmax", {"input": input}, {"dim": dim}, lambda input: torch.softmax(input, dim), override=override, note=note)


def with_neg_inf(t, fraction):
    mask = torch.rand(t.shape) < fraction
    return t.masked_fill(mask, -INF)


def softmax_cases():
    x = with_neg_inf(randn(7, 33) * 3, 0.2)
    x[:, 0] = 0.0  # every row keeps a finite entry
    add_softmax("softmax dim -1 [7, 33] with -inf", x, -1)
    add_softmax("softmax dim 1 [7, 33]", randn(7, 33), 1)
    x = with_neg_inf(randn(17, 5) * 3, 0.2)
    x[3, :] = 1.0
    add_softmax("softmax dim 0 [17, 5] with -inf", x, 0)
    x = with_neg_inf(randn(3, 17, 5) * 3, 0.2)
    x[:, 8, :] = -2.0
    add_softmax("softmax middle dim 1 [3, 17, 5] with -inf", x, 1)
    add_softmax("softmax dim -3 [3, 4, 5]", randn(3, 4, 5), -3)
    add_softmax("softmax dim 2 [2, 3, 65]", randn(2, 3, 65), 2)
    add_softmax("softmax 1-D [257]", randn(257), 0)
    add_softmax("softmax single element [4, 1]", randn(4, 1), -1)
    x = uniform(80, 5, 65)
    x[:, 0], x[:, 1] = 80.0, -80.0
    x[4, :] = 80.0  # uniform row at the top of the range
    add_softmax("softmax large magnitudes +-80 [5, 65]", x, -1)

    # simdformer's documented deviation: a slice that is -inf everywhere
    # gives zeros (attention with every key masked attends to nothing),
    # where PyTorch gives NaN. The expected zeros are written here by that
    # rule, not taken from torch; the other rows are PyTorch's.
    def fully_masked_row_is_zeros(output):
        assert torch.isnan(output[1]).all()
        output[1, :] = 0.0
        return output

    x = randn(3, 7)
    x[1, :] = -INF
    add_softmax(
        "softmax fully -inf row gives zeros (simdformer deviation) [3, 7]",
        x,
        -1,
        override=fully_masked_row_is_zeros,
        note="row 1 is all -inf: PyTorch gives NaN, simdformer documents zeros",
    )


# --- layerNorm ---------------------------------------------------------------

# With inputs 1000 + N(0, 1), float32 cannot hold the mean closer than
# ulp(1000)/2 = 3e-5, and PyTorch itself computes y = x*rstd - mean*rstd in
# float32, so its answer is ~1e-4 from the float64 one. These cases are
# checked at 8 * ulp(1000) / std = 5e-4 instead; they exist to catch the
# textbook variance E[x^2] - E[x]^2, which is off by ~3e-2 here.
OFFSET_ATOL = 5e-4


def add_layer_norm(name, input, normalized_shape, weight=None, bias=None, eps=None, atol=None, note=None):
    inputs = {"input": input}
    args = {"normalized_shape": normalized_shape}
    if weight is not None:
        inputs["weight"] = weight
    elif bias is not None:
        args["weight"] = None
    if bias is not None:
        inputs["bias"] = bias
    kwargs = {}
    if eps is not None:
        args["eps"] = kwargs["eps"] = eps

    def compute(input, weight=None, bias=None):
        return F.layer_norm(input, normalized_shape, weight, bias, **kwargs)

    add_case(name, "layer_norm", inputs, args, compute, atol=atol, note=note)


def layer_norm_cases():
    add_layer_norm("layer_norm [7, 33] over [33]", randn(7, 33), [33])
    add_layer_norm("layer_norm 1-D [17] over [17] with weight and bias", randn(17), [17], randn(17), randn(17))
    add_layer_norm("layer_norm [4, 65] over [65] with weight only", randn(4, 65) * 3 + 1, [65], randn(65))
    add_layer_norm("layer_norm [4, 65] over [65] with bias only", randn(4, 65), [65], None, randn(65))
    add_layer_norm(
        "layer_norm [2, 5, 17] over 2-D [5, 17] with weight and bias", randn(2, 5, 17), [5, 17], randn(5, 17), randn(5, 17)
    )
    add_layer_norm("layer_norm [3, 4, 6] over 2-D [4, 6]", randn(3, 4, 6), [4, 6])
    add_layer_norm("layer_norm [3, 129] over [129] eps 1e-3", randn(3, 129), [129], randn(129), randn(129), eps=1e-3)
    add_layer_norm("layer_norm [5, 9] small variance eps 1e-3", randn(5, 9) * 0.01, [9], eps=1e-3)
    # One element: the variance is 0, so the answer is the bias. Inputs are
    # small because PyTorch's x*rstd - mean*rstd, with rstd = 1/sqrt(eps) =
    # 316, would leave it ~1e-5 off that for inputs of size 1.
    add_layer_norm("layer_norm [5, 1] over one element", randn(5, 1) * 1e-3, [1], None, randn(1))
    offset_note = "inputs 1000 + N(0, 1): float32 rounding of the mean alone moves outputs by ~6e-5"
    add_layer_norm(
        "layer_norm offset 1000 [4, 64] over [64]", 1000 + randn(4, 64), [64], atol=OFFSET_ATOL, note=offset_note
    )
    add_layer_norm(
        "layer_norm offset 1000 [2, 3, 33] over 2-D [3, 33] with weight and bias eps 1e-3",
        1000 + randn(2, 3, 33),
        [3, 33],
        randn(3, 33),
        randn(3, 33),
        eps=1e-3,
        atol=OFFSET_ATOL,
        note=offset_note,
    )


# --- relu, gelu --------------------------------------------------------------

EXTREMES = [-30.0, -10.0, -5.5, -3.0, -1.0, -1e-3, -1e-7, -1e-30, -0.0, 0.0, 1e-30, 1e-7, 1e-3, 1.0, 3.0, 5.5, 10.0, 30.0]
NON_FINITE = [INF, -INF, NAN, 1.0, -1.0, NAN, 0.0, -INF, INF]


def activation_cases():
    for op, fn in (("relu", F.relu), ("gelu", F.gelu)):
        x = torch.tensor(EXTREMES, dtype=torch.float32)
        add_case(f"{op} extremes [{len(EXTREMES)}]", op, {"input": x}, {}, fn)
        x = torch.linspace(-8, 8, 257, dtype=torch.float32)
        add_case(f"{op} linspace(-8, 8) [257]", op, {"input": x}, {}, fn)
        x = randn(3, 37) * 3
        add_case(f"{op} [3, 37]", op, {"input": x}, {}, fn)
        x = torch.tensor(NON_FINITE, dtype=torch.float32)
        add_case(f"{op} inf, -inf, nan [{len(NON_FINITE)}]", op, {"input": x}, {}, fn)


def main():
    torch.manual_seed(0)
    torch.set_num_threads(1)  # one summation order for the full-precision cases
    linear_cases()
    matmul_cases()
    softmax_cases()
    layer_norm_cases()
    activation_cases()
    os.makedirs(os.path.dirname(OUTPUT_PATH), exist_ok=True)
    with open(OUTPUT_PATH, "w") as f:
        json.dump({"torch": torch.__version__, "cases": cases}, f, separators=(",", ":"), allow_nan=False)
        f.write("\n")
    print(f"wrote {len(cases)} cases, {os.path.getsize(OUTPUT_PATH)} bytes to {os.path.relpath(OUTPUT_PATH)}")


if __name__ == "__main__":
    main()
