"""Writes test/fixtures/modules/: PyTorch's answers for simdformer's nn
modules (Linear, LayerNorm, Embedding, PositionalEncoding,
MultiheadAttention, TransformerEncoder[Layer], TransformerDecoder[Layer],
Transformer), read by test/09-module-parity.test.ts.

Run with Debian's python, which has torch 1.13, and the safetensors wheel
unpacked beside it (the package is not installed; its wheel is on disk):

    unzip -q -o /opt/pypi/files/safetensors-0.8.0-cp310-abi3-manylinux_2_17_x86_64.manylinux2014_x86_64.whl -d /tmp/st-site
    npm run fixtures:modules
    (= PYTHONPATH=/tmp/st-site /usr/bin/python3 scripts/gen_module_fixtures.py)

Seeded per case (from the case's name, so adding a case changes no other)
and deterministic: two runs write the same bytes.

Format. One `<case>.safetensors` per case, written by
safetensors.torch.save_file, holding
  - the module's state_dict under exactly PyTorch's keys
    (`self_attn.in_proj_weight`, `layers.0.norm1.bias`, ...);
  - each forward input under `__input__.<name>` (float32 tensors, bool or
    float masks, int32 / int64 indices);
  - each output PyTorch returned under `__output__.<i>`, i its position in
    the returned tuple (0 for a module returning one tensor).
A state_dict key never starts with "__", so the test splits the file by
that prefix and loads the rest with loadStateDict(..., { strict: true }).

And one index.json:
  { "torch": <torch.__version__>, "atol": 1e-4, "cases": [case...] }
where a case is
  { "name", "file", "description",
    "module": ctor,                     -- how to build it, see below
    "stateDict": {key: shape},          -- what the file holds, in PyTorch's order
    "deterministicState"?: [key...],    -- state a fresh module must already hold
                                           (PositionalEncoding's computed 'pe')
    "inputs": {name: {"dtype", "shape"}},
    "forward": { "inputs": [name...],   -- positional tensors, a name may repeat
                                           (self-attention passes one tensor thrice)
                 "options": {camelCase: value},    -- simdformer's forward options
                 "torchKwargs": {snake_case: value} },  -- what PyTorch was called with
    "outputs": [ {"name", "key", "shape"} | {"name", "key": null} ],  -- null: PyTorch returned None
    "atol"?: number, "note"?: string,
    "fastPath": {"taken": [op...], "maxAbsDifference": number | "nan"} }
A ctor is
  { "class": simdformer's nn class name (PyTorch's, except PositionalEncoding,
             which is the word_language_model example's class, copied below),
    "torch": {"kwargs": {...}, "emulated"?: [...]},   -- PyTorch >= 2.1's keywords
    "simdformer": {"args": [...], "options": {...}} } -- camelCase
and a value in args / options / kwargs that is itself a module (an encoder
layer, a final norm) is {"module": ctor}; one that is a forward input is
{"input": name}. Numbers are JSON numbers; a non-finite one would be written
"nan" / "inf" / "-inf" as in test/fixtures/functional.json (none is today).

PyTorch 1.13 against the API simdformer follows (PyTorch 2.x):
  - No `bias` keyword on LayerNorm and the Transformer layers (2.1 added it):
    `bias: false` is emulated by zeroing those biases before the forward and
    dropping their keys from the saved state_dict, which is what 2.x's
    state_dict holds. The ctor lists it in "emulated".
  - No `is_causal` / `tgt_is_causal` / `memory_is_causal`: a causal case
    passes the causal mask itself (which 2.x requires alongside the hint
    anyway) and simdformer gets the hint too (`isCausal: true`); torchKwargs
    shows what 1.13 was given.
  - A float key_padding_mask cannot be combined with an attn_mask in 1.13
    (masked_fill wants a bool mask), so it is tested on its own.
  - Fast path: 1.13 has no switch to turn it off (no
    torch.backends.mha.set_fastpath_enabled). Every forward here runs with
    grad enabled and parameters requiring grad, which 1.13 checks before
    taking it, so the math path (F.multi_head_attention_forward, the Python
    layers) computes every fixture. Each case is then re-run under
    torch.no_grad(), with the fast-path entry points wrapped to see whether
    they were called, and the case records which were taken and the max
    difference from the math path (printed too). They agree to ~5e-7 where
    the fast path runs, except with a float key_padding_mask: 1.13's fast
    path converts it to bool (non-zero = masked, with a UserWarning), so its
    finite biases mask keys and rows become NaN; those record "nan". The
    math path adds the mask, as PyTorch 2.x does on both paths.

Every module's parameters are re-drawn after construction (PyTorch's MHA
initialises biases to 0 and LayerNorm to 1 / 0, which would hide a bias or
affine bug), and every case is also run in float64: PyTorch's float32 answer
must be within half the tolerance of it, so a case never asks simdformer to be
closer to PyTorch than PyTorch is to the exact answer.

Fully masked rows: PyTorch 1.13 gives NaN for a query that may attend to no
key; simdformer documents zero attention weights there (see README,
F.softmax). Every case but one avoids such rows (checked: no NaN in any
output); the dedicated case's expected values are rewritten by that rule.
"""

import copy
import json
import math
import os
import sys
import warnings
import zlib

import torch
import torch.nn as nn
from safetensors.torch import save_file

OUTPUT_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "test", "fixtures", "modules")

ATOL = 1e-4  # the test's max abs difference for a whole module
INF = float("inf")


# --- the word_language_model example's PositionalEncoding ---------------------
# https://github.com/pytorch/examples/blob/main/word_language_model/model.py


class PositionalEncoding(nn.Module):
    """Inject some information about the relative or absolute position of the tokens in the sequence."""

    def __init__(self, d_model, dropout=0.1, max_len=5000):
        super(PositionalEncoding, self).__init__()
        self.dropout = nn.Dropout(p=dropout)
        pe = torch.zeros(max_len, d_model)
        position = torch.arange(0, max_len, dtype=torch.float).unsqueeze(1)
        div_term = torch.exp(torch.arange(0, d_model, 2).float() * (-math.log(10000.0) / d_model))
        pe[:, 0::2] = torch.sin(position * div_term)
        pe[:, 1::2] = torch.cos(position * div_term)
        pe = pe.unsqueeze(0).transpose(0, 1)
        self.register_buffer("pe", pe)

    def forward(self, x):
        x = x + self.pe[: x.size(0), :]
        return self.dropout(x)


# --- constructors, recorded for both libraries --------------------------------

TORCH_CLASSES = {
    "Linear": nn.Linear,
    "LayerNorm": nn.LayerNorm,
    "Embedding": nn.Embedding,
    "PositionalEncoding": PositionalEncoding,
    "MultiheadAttention": nn.MultiheadAttention,
    "TransformerEncoderLayer": nn.TransformerEncoderLayer,
    "TransformerEncoder": nn.TransformerEncoder,
    "TransformerDecoderLayer": nn.TransformerDecoderLayer,
    "TransformerDecoder": nn.TransformerDecoder,
    "Transformer": nn.Transformer,
}

# simdformer's positional constructor arguments; every other keyword is an option.
POSITIONAL = {
    "Linear": ["in_features", "out_features"],
    "LayerNorm": ["normalized_shape"],
    "Embedding": ["num_embeddings", "embedding_dim"],
    "PositionalEncoding": ["d_model"],
    "MultiheadAttention": ["embed_dim", "num_heads"],
    "TransformerEncoderLayer": ["d_model", "nhead"],
    "TransformerEncoder": ["encoder_layer", "num_layers"],
    "TransformerDecoderLayer": ["d_model", "nhead"],
    "TransformerDecoder": ["decoder_layer", "num_layers"],
    "Transformer": [],
}

# Keywords PyTorch 1.13 lacks, emulated here (see the header).
EMULATED = {"LayerNorm": {"bias"}, "TransformerEncoderLayer": {"bias"}, "TransformerDecoderLayer": {"bias"}, "Transformer": {"bias"}}


def camel(name):
    head, *rest = name.split("_")
    return head + "".join(word[:1].upper() + word[1:] for word in rest)


class Ctor:
    """A module to build: its class and PyTorch >= 2.1's keyword arguments."""

    def __init__(self, cls, **kwargs):
        assert cls in TORCH_CLASSES, cls
        self.cls = cls
        self.kwargs = kwargs

    def emulated(self):
        return sorted(key for key in EMULATED.get(self.cls, ()) if key in self.kwargs and self.kwargs[key] is False)

    def build(self):
        """The torch 1.13 module, emulated keywords left out (the caller emulates them)."""
        kwargs = {}
        for key, value in self.kwargs.items():
            if key in EMULATED.get(self.cls, ()):
                assert value is False, (self.cls, key, value)
                continue
            if isinstance(value, Ctor):
                assert not value.emulated(), "emulated keywords are handled for the top-level module only"
                value = value.build()
            kwargs[key] = value
        return TORCH_CLASSES[self.cls](**kwargs)

    def record(self):
        def encode(value):
            return {"module": value.record()} if isinstance(value, Ctor) else value

        torch_part = {"kwargs": {key: encode(value) for key, value in self.kwargs.items()}}
        if self.emulated():
            torch_part["emulated"] = self.emulated()
        args = [encode(self.kwargs[key]) for key in POSITIONAL[self.cls]]
        options = {camel(key): encode(value) for key, value in self.kwargs.items() if key not in POSITIONAL[self.cls]}
        return {"class": self.cls, "torch": torch_part, "simdformer": {"args": args, "options": options}}


def emulates_no_bias(ctor):
    """Whether `ctor` is a bias=False that 1.13 cannot build (see drop_biases)."""
    return ctor.cls in ("LayerNorm", "TransformerEncoderLayer", "TransformerDecoderLayer", "Transformer") and ctor.kwargs.get("bias") is False


def drop_biases(module):
    """PyTorch 2.x's bias=False for LayerNorm and the Transformer layers: zero
    every bias (the forward then computes what 2.x computes) and return their
    state_dict keys, which 2.x does not have. bias_k / bias_v (add_bias_kv)
    are not biases in this sense and stay."""
    dropped = []
    with torch.no_grad():
        for name, parameter in module.named_parameters():
            leaf = name.rsplit(".", 1)[-1]
            if leaf in ("bias", "in_proj_bias"):
                parameter.zero_()
                dropped.append(name)
    return dropped


def randomize(module):
    """Re-draws biases and LayerNorm weights (PyTorch initialises them to 0 / 1)
    and keeps PyTorch's own initialisation of the matrices, which keeps
    activations O(1)."""
    with torch.no_grad():
        for name, parameter in module.named_parameters():
            leaf = name.rsplit(".", 1)[-1]
            owner = module.get_submodule(name.rsplit(".", 1)[0]) if "." in name else module
            if isinstance(owner, nn.LayerNorm) and leaf == "weight":
                parameter.copy_(1 + 0.3 * torch.randn_like(parameter))
            elif leaf in ("bias", "in_proj_bias"):
                parameter.copy_(0.3 * torch.randn_like(parameter))


# --- inputs -------------------------------------------------------------------


def randn(*shape):
    return torch.randn(*shape, dtype=torch.float32)


def causal_float_mask(size):
    """Transformer.generate_square_subsequent_mask: -inf above the diagonal, 0 elsewhere."""
    return nn.Transformer.generate_square_subsequent_mask(size)


def causal_bool_mask(size):
    return torch.triu(torch.ones(size, size, dtype=torch.bool), diagonal=1)


def random_bool_mask(*shape):
    """True (not allowed) with probability 0.3; key 0 of every row stays allowed."""
    mask = torch.rand(*shape) < 0.3
    mask[..., 0] = False
    return mask


def random_float_mask(*shape):
    """Additive: N(0, 1) biases, and -inf with probability 0.2 (key 0 stays finite)."""
    mask = randn(*shape)
    mask[torch.rand(*shape) < 0.2] = -INF
    mask[..., 0] = 0.0
    return mask


def padding_mask(lengths, size):
    """[batch, size] bool: True at the padded keys, past each sequence's length."""
    return torch.arange(size).unsqueeze(0) >= torch.tensor(lengths).unsqueeze(1)


def float_padding_mask(lengths, size):
    """The additive form: -inf at padded keys, and finite biases elsewhere
    (PyTorch adds a float key_padding_mask to the scores)."""
    mask = 0.5 * randn(len(lengths), size)
    mask[padding_mask(lengths, size)] = -INF
    return mask


# --- running PyTorch ------------------------------------------------------------

FAST_PATH_OPS = ("_native_multi_head_attention", "_transformer_encoder_layer_fwd", "_nested_tensor_from_mask")


def run_watching_fast_path(module, args, kwargs):
    """module(*args, **kwargs), and the names of the fast-path ops it called."""
    taken = []
    originals = {name: getattr(torch, name) for name in FAST_PATH_OPS}

    def watch(name):
        def wrapper(*a, **k):
            taken.append(name)
            return originals[name](*a, **k)

        return wrapper

    try:
        for name in FAST_PATH_OPS:
            setattr(torch, name, watch(name))
        output = module(*args, **kwargs)
    finally:
        for name, op in originals.items():
            setattr(torch, name, op)
    return output, sorted(set(taken))


def as_tuple(output):
    return tuple(output) if isinstance(output, (tuple, list)) else (output,)


def max_abs_difference(a, b):
    """Over finite elements; NaN (a float) where the two disagree on NaN / infinities or shape."""
    if a is None or b is None:
        return 0.0 if a is b else math.nan
    a, b = a.detach().double(), b.detach().double()
    if a.shape != b.shape:
        return math.nan
    if not torch.equal(torch.isnan(a), torch.isnan(b)) or not torch.equal(torch.isinf(a), torch.isinf(b)):
        return math.nan
    finite = torch.isfinite(a)
    if not torch.equal(a[torch.isinf(a)], b[torch.isinf(b)]):
        return math.nan
    return (a[finite] - b[finite]).abs().max().item() if finite.any() else 0.0


def json_number(value):
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return float(f"{value:.3g}")


def double(value):
    return value.double() if isinstance(value, torch.Tensor) and value.is_floating_point() else value


def resolve(value, inputs):
    """A forward keyword's value: {"input": name} is that input tensor."""
    return inputs[value["input"]] if isinstance(value, dict) and "input" in value else value


# --- cases --------------------------------------------------------------------

cases = []
files = {}


def slug_ok(name):
    return all(c.isalnum() or c in "_-" for c in name)


def add_case(
    name,
    description,
    ctor,
    inputs,
    forward_inputs,
    torch_kwargs=None,
    simdformer_only=None,
    output_names=("output",),
    override=None,
    expect_nan=False,
    atol=None,
    note=None,
    deterministic_state=None,
):
    """Builds `ctor` in PyTorch with the case's seed, runs it on `inputs`
    (built by a function, after seeding), and records everything.

    torch_kwargs: forward keywords for PyTorch 1.13, values may be
      {"input": name}; they become simdformer options, camelCased.
    simdformer_only: options simdformer gets and 1.13 has no keyword for
      (the is_causal hints).
    override(outputs, module): rewrites PyTorch's outputs where simdformer
      deviates on purpose (the fully masked row).
    deterministic_state: state_dict keys a freshly built module must already
      hold with these values (computed buffers, not random draws)."""
    assert slug_ok(name) and all(c["name"] != name for c in cases), name
    torch.manual_seed(zlib.crc32(name.encode()))
    module = ctor.build()
    randomize(module)
    dropped = drop_biases(module) if emulates_no_bias(ctor) else []
    module.eval()
    for parameter in module.parameters():
        assert parameter.requires_grad  # keeps 1.13 off its fast path: see the header
    inputs = inputs()
    torch_kwargs = dict(torch_kwargs or {})
    # a repeated name (self-attention) passes the same tensor object, as PyTorch callers do
    args = [inputs[key] for key in forward_inputs]
    kwargs = {key: resolve(value, inputs) for key, value in torch_kwargs.items()}

    assert torch.is_grad_enabled()
    outputs, taken = run_watching_fast_path(module, args, kwargs)
    outputs = as_tuple(outputs)
    assert not taken, f"{name}: the fast path was taken with grad enabled: {taken}"
    assert len(outputs) == len(output_names), (name, len(outputs))

    # float64: PyTorch's own rounding error must leave room for ours
    module64 = copy.deepcopy(module).double()
    outputs64 = as_tuple(module64(*[double(a) for a in args], **{key: double(value) for key, value in kwargs.items()}))
    for i, (output, output64) in enumerate(zip(outputs, outputs64)):
        error = max_abs_difference(output, output64)
        if not error <= (atol or ATOL) / 2:
            sys.exit(f"{name}: PyTorch float32 output {i} is {error:.2e} from float64, more than half the tolerance")
        if output is not None and torch.isnan(output).any() and not expect_nan:
            sys.exit(f"{name}: output {i} has NaN (a fully masked row?)")

    # what 1.13's fast path gives, for the record (its warnings about float
    # masks and prototype nested tensors are the header's story)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fast_outputs, fast_taken = run_watching_fast_path(module, args, kwargs)
    fast_difference = max(
        (max_abs_difference(a, b) for a, b in zip(outputs, as_tuple(fast_outputs))),
        key=lambda d: INF if math.isnan(d) else d,
    )

    outputs = [None if o is None else o.detach().clone() for o in outputs]
    if override is not None:
        outputs = override(outputs, module)
    assert all(o is None or not torch.isnan(o).any() for o in outputs), name

    state_dict = {key: value.detach().clone() for key, value in module.state_dict().items() if key not in dropped}
    tensors = dict(state_dict)
    for key, value in inputs.items():
        tensors[f"__input__.{key}"] = value.contiguous()
    output_records = []
    for i, (output_name, output) in enumerate(zip(output_names, outputs)):
        if output is None:
            output_records.append({"name": output_name, "key": None})
        else:
            key = f"__output__.{i}"
            tensors[key] = output.contiguous()
            output_records.append({"name": output_name, "key": key, "shape": list(output.shape)})

    options = {camel(key): value for key, value in torch_kwargs.items()}
    options.update(simdformer_only or {})
    case = {
        "name": name,
        "file": f"{name}.safetensors",
        "description": description,
        "module": ctor.record(),
        "stateDict": {key: list(value.shape) for key, value in state_dict.items()},
        "inputs": {key: {"dtype": str(value.dtype).replace("torch.", ""), "shape": list(value.shape)} for key, value in inputs.items()},
        "forward": {"inputs": list(forward_inputs), "options": options, "torchKwargs": torch_kwargs},
        "outputs": output_records,
    }
    if deterministic_state is not None:
        assert all(key in state_dict for key in deterministic_state), deterministic_state
        case["deterministicState"] = deterministic_state
    if atol is not None:
        case["atol"] = atol
    if note is not None:
        case["note"] = note
    case["fastPath"] = {"taken": fast_taken, "maxAbsDifference": json_number(fast_difference)}
    cases.append(case)
    files[case["file"]] = tensors


def inp(name):
    return {"input": name}


# --- Linear, LayerNorm, Embedding, PositionalEncoding -------------------------


def basic_cases():
    add_case("linear_bias", "Linear(12, 20) on [3, 5, 12]", Ctor("Linear", in_features=12, out_features=20),
             lambda: {"input": randn(3, 5, 12)}, ["input"])
    add_case("linear_no_bias", "Linear(12, 20, bias=False) on [4, 12]",
             Ctor("Linear", in_features=12, out_features=20, bias=False), lambda: {"input": randn(4, 12)}, ["input"])
    add_case("linear_1d_input", "Linear(9, 17) on a 1-D [9] input", Ctor("Linear", in_features=9, out_features=17),
             lambda: {"input": randn(9)}, ["input"])

    add_case("layer_norm_default", "LayerNorm(20) on [3, 5, 20]", Ctor("LayerNorm", normalized_shape=20),
             lambda: {"input": randn(3, 5, 20)}, ["input"])
    add_case("layer_norm_eps_1e-3", "LayerNorm(16, eps=1e-3) on small-variance [2, 4, 16]",
             Ctor("LayerNorm", normalized_shape=16, eps=1e-3), lambda: {"input": 0.05 * randn(2, 4, 16)}, ["input"])
    add_case("layer_norm_no_affine", "LayerNorm(12, elementwise_affine=False): an empty state_dict",
             Ctor("LayerNorm", normalized_shape=12, elementwise_affine=False), lambda: {"input": randn(4, 12)}, ["input"])
    add_case("layer_norm_no_bias", "LayerNorm(12, bias=False): weight only (emulated in 1.13)",
             Ctor("LayerNorm", normalized_shape=12, bias=False), lambda: {"input": randn(2, 3, 12)}, ["input"])
    add_case("layer_norm_2d_shape", "LayerNorm([4, 6]) on [3, 4, 6]", Ctor("LayerNorm", normalized_shape=[4, 6]),
             lambda: {"input": randn(3, 4, 6)}, ["input"])

    add_case("embedding_int64", "Embedding(20, 8) with int64 indices [3, 5]",
             Ctor("Embedding", num_embeddings=20, embedding_dim=8),
             lambda: {"input": torch.randint(0, 20, (3, 5), dtype=torch.int64)}, ["input"])

    def padded_indices():
        indices = torch.randint(1, 20, (2, 6), dtype=torch.int32)
        indices[0, 4:] = 0
        indices[1, 5:] = 0
        indices[1, 0] = 19
        return {"input": indices}

    add_case("embedding_int32_padding_idx", "Embedding(20, 12, padding_idx=0) with int32 indices [2, 6] holding 0 and 19",
             Ctor("Embedding", num_embeddings=20, embedding_dim=12, padding_idx=0), padded_indices, ["input"])

    add_case("positional_encoding", "word_language_model PositionalEncoding(16, dropout=0.1, max_len=64) on [7, 3, 16]",
             Ctor("PositionalEncoding", d_model=16, dropout=0.1, max_len=64), lambda: {"input": randn(7, 3, 16)}, ["input"],
             deterministic_state=["pe"])


# --- MultiheadAttention -------------------------------------------------------

MHA_OUTPUTS = ("attn_output", "attn_output_weights")


def mha_case(name, description, inputs, ctor_kwargs, forward_kwargs, forward_inputs=("query", "key", "value"), **extra):
    add_case(name, description, Ctor("MultiheadAttention", **ctor_kwargs), inputs, list(forward_inputs), forward_kwargs,
             output_names=MHA_OUTPUTS, **extra)


def self_attention_inputs(*shape, **masks):
    def make():
        tensors = {"x": randn(*shape)}
        tensors.update({key: build() for key, build in masks.items()})
        return tensors

    return make


SELF = ("x", "x", "x")


def mha_cases():
    # sequence first: [L, N, E]
    mha_case("mha_seq_first", "MHA(16, 4) self-attention [5, 2, 16], weights averaged",
             self_attention_inputs(5, 2, 16), dict(embed_dim=16, num_heads=4), {}, SELF)
    mha_case("mha_batch_first", "MHA(20, 4, batch_first) self-attention [2, 6, 20], head_dim 5",
             self_attention_inputs(2, 6, 20), dict(embed_dim=20, num_heads=4, batch_first=True), {}, SELF)
    mha_case("mha_unbatched", "MHA(16, 2) on unbatched [5, 16] with a 1-D key padding mask and a 3-D [heads, L, S] float mask",
             self_attention_inputs(5, 16, key_padding_mask=lambda: padding_mask([4], 5)[0],
                                   attn_mask=lambda: random_float_mask(2, 5, 5)),
             dict(embed_dim=16, num_heads=2), dict(key_padding_mask=inp("key_padding_mask"), attn_mask=inp("attn_mask")), SELF)
    mha_case("mha_unbatched_batch_first", "MHA(12, 3, batch_first) on unbatched [4, 12]: batch_first does not apply",
             self_attention_inputs(4, 12), dict(embed_dim=12, num_heads=3, batch_first=True), {}, SELF)

    mha_case("mha_float_attn_mask", "MHA(16, 4) with a 2-D float attn_mask (N(0,1) biases and -inf)",
             self_attention_inputs(6, 3, 16, attn_mask=lambda: random_float_mask(6, 6)),
             dict(embed_dim=16, num_heads=4), dict(attn_mask=inp("attn_mask")), SELF)
    mha_case("mha_bool_attn_mask", "MHA(16, 4, batch_first) with a 2-D bool attn_mask",
             self_attention_inputs(3, 6, 16, attn_mask=lambda: random_bool_mask(6, 6)),
             dict(embed_dim=16, num_heads=4, batch_first=True), dict(attn_mask=inp("attn_mask")), SELF)
    mha_case("mha_3d_float_attn_mask", "MHA(16, 4) with a 3-D [N*heads, L, S] float attn_mask",
             self_attention_inputs(5, 2, 16, attn_mask=lambda: random_float_mask(8, 5, 5)),
             dict(embed_dim=16, num_heads=4), dict(attn_mask=inp("attn_mask")), SELF)
    mha_case("mha_3d_bool_attn_mask", "MHA(12, 2, batch_first) with a 3-D [N*heads, L, S] bool attn_mask",
             self_attention_inputs(3, 4, 12, attn_mask=lambda: random_bool_mask(6, 4, 4)),
             dict(embed_dim=12, num_heads=2, batch_first=True), dict(attn_mask=inp("attn_mask")), SELF)
    mha_case("mha_key_padding_mask_bool", "MHA(16, 4) with a bool key_padding_mask (lengths 6, 4, 5)",
             self_attention_inputs(6, 3, 16, key_padding_mask=lambda: padding_mask([6, 4, 5], 6)),
             dict(embed_dim=16, num_heads=4), dict(key_padding_mask=inp("key_padding_mask")), SELF)
    mha_case("mha_key_padding_mask_float", "MHA(16, 4, batch_first) with a float key_padding_mask (biases and -inf)",
             self_attention_inputs(3, 6, 16, key_padding_mask=lambda: float_padding_mask([6, 3, 5], 6)),
             dict(embed_dim=16, num_heads=4, batch_first=True), dict(key_padding_mask=inp("key_padding_mask")), SELF,
             note="1.13 cannot combine a float key_padding_mask with an attn_mask, so it is tested alone")
    mha_case("mha_both_masks_float_attn", "MHA(16, 4) with a float attn_mask and a bool key_padding_mask",
             self_attention_inputs(5, 2, 16, attn_mask=lambda: random_float_mask(5, 5),
                                   key_padding_mask=lambda: padding_mask([5, 3], 5)),
             dict(embed_dim=16, num_heads=4), dict(key_padding_mask=inp("key_padding_mask"), attn_mask=inp("attn_mask")), SELF)
    mha_case("mha_both_masks_bool_attn", "MHA(20, 4, batch_first) with a causal bool attn_mask and a bool key_padding_mask",
             self_attention_inputs(2, 7, 20, attn_mask=lambda: causal_bool_mask(7),
                                   key_padding_mask=lambda: padding_mask([7, 5], 7)),
             dict(embed_dim=20, num_heads=4, batch_first=True),
             dict(key_padding_mask=inp("key_padding_mask"), attn_mask=inp("attn_mask")), SELF)
    mha_case("mha_is_causal", "MHA(16, 4, batch_first) with the causal float mask and the is_causal hint",
             self_attention_inputs(2, 6, 16, attn_mask=lambda: causal_float_mask(6)),
             dict(embed_dim=16, num_heads=4, batch_first=True), dict(attn_mask=inp("attn_mask")), SELF,
             simdformer_only={"isCausal": True})

    def cross(batch_first, q, kv, n, e, kdim=None, vdim=None, **masks):
        def make():
            shape = (lambda length, dim: (n, length, dim)) if batch_first else (lambda length, dim: (length, n, dim))
            tensors = {"query": randn(*shape(q, e)), "key": randn(*shape(kv, kdim or e)), "value": randn(*shape(kv, vdim or e))}
            tensors.update({key: build() for key, build in masks.items()})
            return tensors

        return make

    mha_case("mha_kdim_vdim", "MHA(16, 4, kdim=12, vdim=20): separate q/k/v projection weights, L=4, S=6",
             cross(False, 4, 6, 2, 16, kdim=12, vdim=20, key_padding_mask=lambda: padding_mask([6, 5], 6)),
             dict(embed_dim=16, num_heads=4, kdim=12, vdim=20), dict(key_padding_mask=inp("key_padding_mask")))
    mha_case("mha_kdim_vdim_batch_first_no_bias", "MHA(12, 3, bias=False, kdim=8, vdim=10, batch_first), L=5, S=3",
             cross(True, 5, 3, 2, 12, kdim=8, vdim=10, attn_mask=lambda: random_bool_mask(5, 3)),
             dict(embed_dim=12, num_heads=3, bias=False, kdim=8, vdim=10, batch_first=True), dict(attn_mask=inp("attn_mask")))
    mha_case("mha_add_bias_kv", "MHA(16, 4, add_bias_kv) with float attn_mask and bool key_padding_mask (both padded by a column)",
             self_attention_inputs(5, 2, 16, attn_mask=lambda: random_float_mask(5, 5),
                                   key_padding_mask=lambda: padding_mask([5, 4], 5)),
             dict(embed_dim=16, num_heads=4, add_bias_kv=True),
             dict(key_padding_mask=inp("key_padding_mask"), attn_mask=inp("attn_mask")), SELF)
    mha_case("mha_add_zero_attn", "MHA(16, 2, add_zero_attn, batch_first) with bool masks, per-head weights",
             self_attention_inputs(2, 5, 16, attn_mask=lambda: random_bool_mask(5, 5),
                                   key_padding_mask=lambda: padding_mask([3, 5], 5)),
             dict(embed_dim=16, num_heads=2, add_zero_attn=True, batch_first=True),
             dict(key_padding_mask=inp("key_padding_mask"), attn_mask=inp("attn_mask"), average_attn_weights=False), SELF)
    mha_case("mha_add_bias_kv_add_zero_attn", "MHA(12, 3, add_bias_kv, add_zero_attn) cross attention L=3, S=5, key padding",
             cross(False, 3, 5, 2, 12, key_padding_mask=lambda: padding_mask([5, 2], 5)),
             dict(embed_dim=12, num_heads=3, add_bias_kv=True, add_zero_attn=True),
             dict(key_padding_mask=inp("key_padding_mask")))
    mha_case("mha_weights_per_head", "MHA(16, 4) need_weights, average_attn_weights=False: [N, heads, L, S]",
             cross(False, 4, 6, 3, 16, attn_mask=lambda: random_float_mask(4, 6)),
             dict(embed_dim=16, num_heads=4), dict(attn_mask=inp("attn_mask"), need_weights=True, average_attn_weights=False))
    mha_case("mha_weights_per_head_unbatched", "MHA(16, 4) unbatched cross attention, average_attn_weights=False: [heads, L, S]",
             lambda: {"query": randn(3, 16), "key": randn(5, 16), "value": randn(5, 16)},
             dict(embed_dim=16, num_heads=4), dict(average_attn_weights=False))
    mha_case("mha_need_weights_false", "MHA(16, 4, batch_first) need_weights=False: weights are None",
             self_attention_inputs(2, 5, 16), dict(embed_dim=16, num_heads=4, batch_first=True), dict(need_weights=False), SELF)
    mha_case("mha_no_bias", "MHA(16, 4, bias=False): no in_proj_bias, no out_proj.bias",
             self_attention_inputs(5, 2, 16, key_padding_mask=lambda: padding_mask([5, 4], 5)),
             dict(embed_dim=16, num_heads=4, bias=False), dict(key_padding_mask=inp("key_padding_mask")), SELF)
    mha_case("mha_cross_attention", "MHA(20, 4, batch_first) cross attention: query [3, 3, 20], key/value [3, 7, 20]",
             cross(True, 3, 7, 3, 20, attn_mask=lambda: random_float_mask(3, 7),
                   key_padding_mask=lambda: padding_mask([7, 6, 4], 7)),
             dict(embed_dim=20, num_heads=4, batch_first=True),
             dict(key_padding_mask=inp("key_padding_mask"), attn_mask=inp("attn_mask")))
    mha_case("mha_cross_attention_shared_key_value", "MHA(16, 4) cross attention with key and value the same tensor",
             lambda: {"query": randn(4, 2, 16), "memory": randn(6, 2, 16)},
             dict(embed_dim=16, num_heads=4), {}, ("query", "memory", "memory"))
    mha_case("mha_d36_h3", "MHA(36, 3, batch_first): d_model 36, head_dim 12, not multiples of the SIMD width",
             self_attention_inputs(2, 7, 36, attn_mask=lambda: causal_float_mask(7),
                                   key_padding_mask=lambda: padding_mask([7, 6], 7)),
             dict(embed_dim=36, num_heads=3, batch_first=True),
             dict(key_padding_mask=inp("key_padding_mask"), attn_mask=inp("attn_mask")), SELF)

    # simdformer's documented deviation: a query row whose every key is masked
    # gets zero attention weights, where PyTorch 1.13 gives NaN. The expected
    # values for that row are written here by that rule (weights 0, so the
    # attention output before the out projection is 0 and the module's output
    # is out_proj.bias); every other row is PyTorch's.
    fully_masked_query = 2

    def fully_masked_mask():
        mask = random_bool_mask(5, 5)
        mask[fully_masked_query, :] = True
        return mask

    def fully_masked_row_is_zeros(outputs, module):
        output, weights = outputs  # [L, N, E], [N, L, S]
        assert torch.isnan(output[fully_masked_query]).all() and torch.isnan(weights[:, fully_masked_query]).all()
        others = [i for i in range(output.shape[0]) if i != fully_masked_query]
        assert not torch.isnan(output[others]).any() and not torch.isnan(weights[:, others]).any()
        output[fully_masked_query] = module.out_proj.bias.detach()
        weights[:, fully_masked_query] = 0.0
        return [output, weights]

    mha_case("mha_fully_masked_query_row", "MHA(16, 4) with a bool attn_mask whose row 2 masks every key (simdformer: zeros)",
             self_attention_inputs(5, 2, 16, attn_mask=fully_masked_mask),
             dict(embed_dim=16, num_heads=4), dict(attn_mask=inp("attn_mask")), SELF,
             override=fully_masked_row_is_zeros, expect_nan=True,
             note="query 2 may attend to no key: PyTorch gives NaN there; simdformer documents zero weights, "
                  "so the output row is out_proj.bias")


# --- Transformer layers and models --------------------------------------------


def seq(batch_first, n, length, e):
    return randn(n, length, e) if batch_first else randn(length, n, e)


def encoder_layer(**kwargs):
    kwargs.setdefault("d_model", 16)
    kwargs.setdefault("nhead", 4)
    kwargs.setdefault("dim_feedforward", 32)
    return Ctor("TransformerEncoderLayer", **kwargs)


def decoder_layer(**kwargs):
    kwargs.setdefault("d_model", 16)
    kwargs.setdefault("nhead", 4)
    kwargs.setdefault("dim_feedforward", 32)
    return Ctor("TransformerDecoderLayer", **kwargs)


def encoder_inputs(batch_first, n, length, e, **masks):
    def make():
        tensors = {"src": seq(batch_first, n, length, e)}
        tensors.update({key: build() for key, build in masks.items()})
        return tensors

    return make


def encoder_layer_cases():
    add_case("encoder_layer_relu", "TransformerEncoderLayer(16, 4, 32) relu, post-norm, [5, 2, 16]",
             encoder_layer(), encoder_inputs(False, 2, 5, 16), ["src"])
    add_case("encoder_layer_gelu", "TransformerEncoderLayer(20, 4, 40, activation='gelu') [6, 3, 20]",
             encoder_layer(d_model=20, dim_feedforward=40, activation="gelu"), encoder_inputs(False, 3, 6, 20), ["src"])
    add_case("encoder_layer_norm_first", "TransformerEncoderLayer(16, 4, 32, norm_first) with a bool key padding mask",
             encoder_layer(norm_first=True), encoder_inputs(False, 2, 5, 16, src_key_padding_mask=lambda: padding_mask([5, 3], 5)),
             ["src"], dict(src_key_padding_mask=inp("src_key_padding_mask")))
    add_case("encoder_layer_batch_first", "TransformerEncoderLayer(16, 4, 32, batch_first) [3, 6, 16] with a key padding mask",
             encoder_layer(batch_first=True, dropout=0.0),
             encoder_inputs(True, 3, 6, 16, src_key_padding_mask=lambda: padding_mask([6, 4, 5], 6)),
             ["src"], dict(src_key_padding_mask=inp("src_key_padding_mask")))
    add_case("encoder_layer_batch_first_gelu_norm_first", "TransformerEncoderLayer(12, 2, 24, gelu, batch_first, norm_first)",
             encoder_layer(d_model=12, nhead=2, dim_feedforward=24, activation="gelu", batch_first=True, norm_first=True),
             encoder_inputs(True, 2, 4, 12), ["src"])
    add_case("encoder_layer_no_bias", "TransformerEncoderLayer(16, 4, 32, bias=False): no Linear, MHA or LayerNorm biases",
             encoder_layer(bias=False), encoder_inputs(False, 2, 5, 16, src_mask=lambda: random_float_mask(5, 5)),
             ["src"], dict(src_mask=inp("src_mask")))
    add_case("encoder_layer_eps_1e-3", "TransformerEncoderLayer(16, 4, 32, layer_norm_eps=1e-3)",
             encoder_layer(layer_norm_eps=1e-3), encoder_inputs(False, 2, 4, 16), ["src"])
    add_case("encoder_layer_unbatched", "TransformerEncoderLayer(16, 4, 32) on unbatched [5, 16], 1-D key padding mask",
             encoder_layer(), lambda: {"src": randn(5, 16), "src_key_padding_mask": padding_mask([3], 5)[0]},
             ["src"], dict(src_key_padding_mask=inp("src_key_padding_mask")))
    add_case("encoder_layer_causal_float_mask", "TransformerEncoderLayer(16, 4, 32, batch_first) causal float src_mask, is_causal",
             encoder_layer(batch_first=True), encoder_inputs(True, 2, 6, 16, src_mask=lambda: causal_float_mask(6)),
             ["src"], dict(src_mask=inp("src_mask")), simdformer_only={"isCausal": True})
    add_case("encoder_layer_bool_src_mask", "TransformerEncoderLayer(16, 4, 32) random bool src_mask",
             encoder_layer(), encoder_inputs(False, 3, 5, 16, src_mask=lambda: random_bool_mask(5, 5)),
             ["src"], dict(src_mask=inp("src_mask")))
    add_case("encoder_layer_both_masks", "TransformerEncoderLayer(16, 4, 32, gelu) causal bool src_mask and key padding mask",
             encoder_layer(activation="gelu"),
             encoder_inputs(False, 2, 6, 16, src_mask=lambda: causal_bool_mask(6),
                            src_key_padding_mask=lambda: padding_mask([6, 4], 6)),
             ["src"], dict(src_mask=inp("src_mask"), src_key_padding_mask=inp("src_key_padding_mask")))
    add_case("encoder_layer_d36_h3", "TransformerEncoderLayer(36, 3, 64, gelu, norm_first, batch_first) [2, 7, 36]",
             encoder_layer(d_model=36, nhead=3, dim_feedforward=64, activation="gelu", norm_first=True, batch_first=True),
             encoder_inputs(True, 2, 7, 36, src_key_padding_mask=lambda: padding_mask([7, 5], 7)),
             ["src"], dict(src_key_padding_mask=inp("src_key_padding_mask")))


def encoder_cases():
    add_case("encoder_2_layers_norm_masks", "TransformerEncoder(2 layers, final LayerNorm) causal float mask + key padding mask",
             Ctor("TransformerEncoder", encoder_layer=encoder_layer(), num_layers=2, norm=Ctor("LayerNorm", normalized_shape=16)),
             encoder_inputs(False, 2, 6, 16, mask=lambda: causal_float_mask(6),
                            src_key_padding_mask=lambda: padding_mask([6, 4], 6)),
             ["src"], dict(mask=inp("mask"), src_key_padding_mask=inp("src_key_padding_mask")),
             simdformer_only={"isCausal": True})
    add_case("encoder_2_layers_batch_first", "TransformerEncoder(2 gelu norm_first batch_first layers, no final norm, "
             "enable_nested_tensor=False) with key padding",
             Ctor("TransformerEncoder", encoder_layer=encoder_layer(d_model=20, nhead=4, dim_feedforward=36, activation="gelu",
                                                                   batch_first=True, norm_first=True),
                  num_layers=2, enable_nested_tensor=False),
             encoder_inputs(True, 3, 5, 20, src_key_padding_mask=lambda: padding_mask([5, 2, 4], 5)),
             ["src"], dict(src_key_padding_mask=inp("src_key_padding_mask")))
    add_case("encoder_2_layers_float_key_padding", "TransformerEncoder(2 batch_first layers, final norm) float key padding mask",
             Ctor("TransformerEncoder", encoder_layer=encoder_layer(batch_first=True), num_layers=2,
                  norm=Ctor("LayerNorm", normalized_shape=16, eps=1e-4)),
             encoder_inputs(True, 2, 5, 16, src_key_padding_mask=lambda: float_padding_mask([5, 3], 5)),
             ["src"], dict(src_key_padding_mask=inp("src_key_padding_mask")))

    # 200 rows per Linear (batch 4 x 50): on an AMX machine the matrix-unit
    # GEMM runs (>= 96 rows per task on 1 or 2 threads), with K = 48 padded to
    # 64 and N = 144 / 96 / 48 not multiples of its 32-column blocks.
    add_case("encoder_2_layers_200_rows", "TransformerEncoder(2 gelu batch_first layers of d_model 48, 4 heads, ff 96) "
             "on [4, 50, 48] with key padding: enough rows for the AMX GEMM path",
             Ctor("TransformerEncoder", encoder_layer=encoder_layer(d_model=48, nhead=4, dim_feedforward=96, activation="gelu",
                                                                   batch_first=True),
                  num_layers=2, enable_nested_tensor=False),
             encoder_inputs(True, 4, 50, 48, src_key_padding_mask=lambda: padding_mask([50, 31, 44, 7], 50)),
             ["src"], dict(src_key_padding_mask=inp("src_key_padding_mask")))


def decoder_inputs(batch_first, n, t, s, e, **masks):
    def make():
        tensors = {"tgt": seq(batch_first, n, t, e), "memory": seq(batch_first, n, s, e)}
        tensors.update({key: build() for key, build in masks.items()})
        return tensors

    return make


ALL_DECODER_MASKS = dict(tgt_mask=inp("tgt_mask"), memory_mask=inp("memory_mask"),
                         tgt_key_padding_mask=inp("tgt_key_padding_mask"), memory_key_padding_mask=inp("memory_key_padding_mask"))


def decoder_cases():
    add_case("decoder_layer_all_masks", "TransformerDecoderLayer(16, 4, 32) causal float tgt_mask, bool memory_mask, "
             "both key padding masks; T=5, S=6",
             decoder_layer(),
             decoder_inputs(False, 2, 5, 6, 16, tgt_mask=lambda: causal_float_mask(5), memory_mask=lambda: random_bool_mask(5, 6),
                            tgt_key_padding_mask=lambda: padding_mask([5, 4], 5),
                            memory_key_padding_mask=lambda: padding_mask([6, 3], 6)),
             ["tgt", "memory"], ALL_DECODER_MASKS, simdformer_only={"tgtIsCausal": True})
    add_case("decoder_layer_norm_first_gelu_batch_first", "TransformerDecoderLayer(20, 4, 36, gelu, norm_first, batch_first) "
             "bool tgt_mask, float memory_mask, key padding; T=4, S=7",
             decoder_layer(d_model=20, dim_feedforward=36, activation="gelu", norm_first=True, batch_first=True),
             decoder_inputs(True, 3, 4, 7, 20, tgt_mask=lambda: causal_bool_mask(4), memory_mask=lambda: random_float_mask(4, 7),
                            tgt_key_padding_mask=lambda: padding_mask([4, 2, 3], 4),
                            memory_key_padding_mask=lambda: padding_mask([7, 7, 5], 7)),
             ["tgt", "memory"], ALL_DECODER_MASKS)
    add_case("decoder_layer_no_bias", "TransformerDecoderLayer(16, 4, 32, bias=False) no masks",
             decoder_layer(bias=False), decoder_inputs(False, 2, 4, 5, 16), ["tgt", "memory"])
    add_case("decoder_layer_unbatched", "TransformerDecoderLayer(12, 3, 24) on unbatched tgt [4, 12], memory [6, 12]",
             decoder_layer(d_model=12, nhead=3, dim_feedforward=24),
             lambda: {"tgt": randn(4, 12), "memory": randn(6, 12), "tgt_mask": causal_float_mask(4),
                      "memory_key_padding_mask": padding_mask([5], 6)[0]},
             ["tgt", "memory"], dict(tgt_mask=inp("tgt_mask"), memory_key_padding_mask=inp("memory_key_padding_mask")))
    add_case("decoder_2_layers_norm_all_masks", "TransformerDecoder(2 layers, final LayerNorm) with all four masks",
             Ctor("TransformerDecoder", decoder_layer=decoder_layer(), num_layers=2, norm=Ctor("LayerNorm", normalized_shape=16)),
             decoder_inputs(False, 2, 6, 5, 16, tgt_mask=lambda: causal_float_mask(6), memory_mask=lambda: random_float_mask(6, 5),
                            tgt_key_padding_mask=lambda: padding_mask([6, 5], 6),
                            memory_key_padding_mask=lambda: padding_mask([4, 5], 5)),
             ["tgt", "memory"], ALL_DECODER_MASKS, simdformer_only={"tgtIsCausal": True})


def transformer_inputs(batch_first, n, s, t, e, memory_mask):
    def make():
        return {
            "src": seq(batch_first, n, s, e),
            "tgt": seq(batch_first, n, t, e),
            "src_mask": random_float_mask(s, s),
            "tgt_mask": causal_float_mask(t),
            "memory_mask": memory_mask(t, s),
            "src_key_padding_mask": padding_mask([s, s - 2, s - 1][:n], s),
            "tgt_key_padding_mask": padding_mask([t - 1, t, t - 2][:n], t),
            "memory_key_padding_mask": padding_mask([s, s - 2, s - 1][:n], s),
        }

    return make


ALL_TRANSFORMER_MASKS = dict(src_mask=inp("src_mask"), tgt_mask=inp("tgt_mask"), memory_mask=inp("memory_mask"),
                             src_key_padding_mask=inp("src_key_padding_mask"), tgt_key_padding_mask=inp("tgt_key_padding_mask"),
                             memory_key_padding_mask=inp("memory_key_padding_mask"))


def transformer_cases():
    add_case("transformer_all_masks", "Transformer(16, 4, 2+2 layers, ff 32) seq-first with all six masks, tgt_is_causal; S=6, T=5",
             Ctor("Transformer", d_model=16, nhead=4, num_encoder_layers=2, num_decoder_layers=2, dim_feedforward=32),
             transformer_inputs(False, 2, 6, 5, 16, random_bool_mask), ["src", "tgt"], ALL_TRANSFORMER_MASKS,
             simdformer_only={"tgtIsCausal": True})
    add_case("transformer_batch_first_all_masks", "Transformer(20, 4, 2+2 layers, ff 40, gelu, batch_first) all six masks, "
             "no causal hint; S=5, T=7",
             Ctor("Transformer", d_model=20, nhead=4, num_encoder_layers=2, num_decoder_layers=2, dim_feedforward=40,
                  activation="gelu", batch_first=True),
             transformer_inputs(True, 3, 5, 7, 20, random_float_mask), ["src", "tgt"], ALL_TRANSFORMER_MASKS)
    add_case("transformer_norm_first", "Transformer(12, 3, 2+2 layers, ff 24, norm_first, batch_first, layer_norm_eps=1e-4) "
             "all six masks; S=4, T=6",
             Ctor("Transformer", d_model=12, nhead=3, num_encoder_layers=2, num_decoder_layers=2, dim_feedforward=24,
                  dropout=0.0, layer_norm_eps=1e-4, batch_first=True, norm_first=True),
             transformer_inputs(True, 2, 4, 6, 12, random_bool_mask), ["src", "tgt"], ALL_TRANSFORMER_MASKS,
             simdformer_only={"tgtIsCausal": True})
    add_case("transformer_no_bias", "Transformer(16, 2, 2+2 layers, ff 24, bias=False) seq-first, no masks",
             Ctor("Transformer", d_model=16, nhead=2, num_encoder_layers=2, num_decoder_layers=2, dim_feedforward=24,
                  bias=False),
             lambda: {"src": randn(5, 2, 16), "tgt": randn(4, 2, 16)}, ["src", "tgt"])


def main():
    torch.set_num_threads(1)  # one summation order
    basic_cases()
    mha_cases()
    encoder_layer_cases()
    encoder_cases()
    decoder_cases()
    transformer_cases()

    os.makedirs(OUTPUT_DIR, exist_ok=True)
    expected = {case["file"] for case in cases} | {"index.json"}
    for stale in sorted(set(os.listdir(OUTPUT_DIR)) - expected):
        os.remove(os.path.join(OUTPUT_DIR, stale))
    total = 0
    for case in cases:
        path = os.path.join(OUTPUT_DIR, case["file"])
        # One metadata entry: safetensors writes several in HashMap order, which changes from run to run.
        save_file(files[case["file"]], path, metadata={"format": "pt"})
        total += os.path.getsize(path)
    index_path = os.path.join(OUTPUT_DIR, "index.json")
    with open(index_path, "w") as f:
        json.dump({"torch": torch.__version__, "atol": ATOL, "cases": cases}, f, indent=1, allow_nan=False)
        f.write("\n")
    total += os.path.getsize(index_path)

    print(f"{'case':48} fast path (no_grad)                          max |fast - math|")
    for case in cases:
        fast = case["fastPath"]
        print(f"{case['name']:48} {', '.join(fast['taken']) or '-':44} {fast['maxAbsDifference']}")
    print(f"wrote {len(cases)} cases, {total} bytes to {os.path.relpath(OUTPUT_DIR)}")


if __name__ == "__main__":
    main()
