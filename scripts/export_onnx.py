"""Writes the end-to-end benchmark's models and inputs (`npm run bench` runs
it by itself when its cache is missing or stale; by hand:

    unzip -q -o /opt/pypi/files/safetensors-0.8.0-cp310-abi3-manylinux_2_17_x86_64.manylinux2014_x86_64.whl -d /tmp/st-site
    PYTHONPATH=/tmp/st-site /usr/bin/python3 scripts/export_onnx.py --out .cache/bench

). Debian's python has torch 1.13; the safetensors package is its wheel
unpacked beside it. Every engine runs the same PyTorch modules:

  - the weights as safetensors for simdformer and PyTorch (state_dict keys
    exactly as PyTorch names them);
  - an ONNX file per case for onnxruntime-node: torch.onnx.export, opset 14,
    fixed shapes, constant folding on;
  - the inputs of each case as safetensors.

Export traces PyTorch's math path, not its fast path: tracing runs with
autograd enabled and the parameters requiring grad, one of the conditions
under which PyTorch 1.13 skips `torch._transformer_encoder_layer_fwd` (see
`why_not_sparsity_fast_path` in torch/nn/modules/transformer.py); the script
checks that the exported graph holds no fast-path operator.

Layout of --out:
  manifest.json                  {format, scriptSha256, torch, opset, models, cases}
  <model>/weights.safetensors    the state_dict
  <case>.onnx                    the ONNX graph (weights inside)
  <case>.inputs.safetensors      the forward's inputs, by the names in manifest.json

A model is {module, config}; a case is {model, inputs: [{name, dtype, shape}],
output shape, and for a padded case the name of its key padding mask}.
Deterministic: seeds are fixed, two runs write the same tensors.
"""
import argparse
import hashlib
import json
import os
import sys

import torch
from safetensors.torch import save_file

FORMAT = 1
OPSET = 14

MODELS = {
    # nn.TransformerEncoder, PyTorch's defaults (relu, post-norm, no final norm)
    "enc6": {"module": "TransformerEncoder",
             "config": {"dModel": 512, "nhead": 8, "dimFeedforward": 2048, "numLayers": 6}},
    "transformer": {"module": "Transformer",
                    "config": {"dModel": 512, "nhead": 8, "dimFeedforward": 2048,
                               "numEncoderLayers": 6, "numDecoderLayers": 6}},
    "enc4-small": {"module": "TransformerEncoder",
                   "config": {"dModel": 256, "nhead": 4, "dimFeedforward": 1024, "numLayers": 4}},
}

# Valid tokens per sequence of the padded enc6 case (trailing padding, two
# sequences full), 8 x 128 tokens in all.
PADDED_LENGTHS = [128, 97, 64, 120, 33, 128, 80, 111]

CASES = {
    "enc6": {"model": "enc6", "batch": 8, "seq": 128, "padded": False},
    "enc6-pad": {"model": "enc6", "batch": 8, "seq": 128, "padded": True},
    "transformer": {"model": "transformer", "batch": 8, "src": 128, "tgt": 128},
    "enc4-small": {"model": "enc4-small", "batch": 1, "seq": 32, "padded": False},
}


def build(model_name):
    """The PyTorch module of a model, in eval mode, seeded from the model's name."""
    spec = MODELS[model_name]
    c = spec["config"]
    torch.manual_seed(int(hashlib.sha256(model_name.encode()).hexdigest()[:8], 16))
    if spec["module"] == "TransformerEncoder":
        layer = torch.nn.TransformerEncoderLayer(c["dModel"], c["nhead"], c["dimFeedforward"], batch_first=True)
        module = torch.nn.TransformerEncoder(layer, c["numLayers"])
    else:
        module = torch.nn.Transformer(d_model=c["dModel"], nhead=c["nhead"],
                                      num_encoder_layers=c["numEncoderLayers"],
                                      num_decoder_layers=c["numDecoderLayers"],
                                      dim_feedforward=c["dimFeedforward"], batch_first=True)
    randomize(module)
    return module.eval()


def randomize(module):
    """Gives every parameter its own values, as a trained model has.

    PyTorch's stacks deep-copy one layer, so a fresh TransformerEncoder holds
    the same weights in every layer; the ONNX exporter would then store them
    once, and an engine reading one layer's weights six times from cache would
    be measured on an easier problem. Matrices get PyTorch's xavier_uniform_
    (what nn.Transformer itself does), LayerNorm weights 1 + 0.1 * N(0, 1),
    biases 0.02 * N(0, 1).
    """
    with torch.no_grad():
        for name, parameter in module.named_parameters():
            if parameter.dim() > 1:
                torch.nn.init.xavier_uniform_(parameter)
            elif name.split(".")[-2].startswith("norm") and name.endswith("weight"):
                parameter.copy_(1 + 0.1 * torch.randn_like(parameter))
            else:
                parameter.copy_(0.02 * torch.randn_like(parameter))


def make_inputs(case_name):
    """The case's forward inputs, in the module's positional order, seeded from the case's name."""
    case = CASES[case_name]
    d_model = MODELS[case["model"]]["config"]["dModel"]
    generator = torch.Generator().manual_seed(int(hashlib.sha256(case_name.encode()).hexdigest()[:8], 16))
    if case["model"] == "transformer":
        src = torch.randn(case["batch"], case["src"], d_model, generator=generator)
        tgt = torch.randn(case["batch"], case["tgt"], d_model, generator=generator)
        tgt_mask = torch.nn.Transformer.generate_square_subsequent_mask(case["tgt"])
        return {"src": src, "tgt": tgt, "tgt_mask": tgt_mask}
    src = torch.randn(case["batch"], case["seq"], d_model, generator=generator)
    if not case["padded"]:
        return {"src": src}
    positions = torch.arange(case["seq"]).unsqueeze(0)
    mask = positions >= torch.tensor(PADDED_LENGTHS).unsqueeze(1)  # [batch, seq], True = padding
    return {"src": src, "src_key_padding_mask": mask}


class Call(torch.nn.Module):
    """The module called with the case's inputs by keyword, so the ONNX inputs keep their names."""

    def __init__(self, module, names):
        super().__init__()
        self.module = module
        self.names = names

    def forward(self, *args):
        kwargs = dict(zip(self.names, args))
        if isinstance(self.module, torch.nn.Transformer):
            return self.module(kwargs["src"], kwargs["tgt"], tgt_mask=kwargs["tgt_mask"])
        return self.module(kwargs["src"], src_key_padding_mask=kwargs.get("src_key_padding_mask"))


def export_onnx(module, inputs, path):
    names = list(inputs)
    wrapper = Call(module, names).eval()
    for parameter in wrapper.parameters():
        parameter.requires_grad_(True)
    with torch.enable_grad():  # the math path: see the header
        torch.onnx.export(wrapper, tuple(inputs[name] for name in names), path, opset_version=OPSET,
                          input_names=names, output_names=["output"], do_constant_folding=True)
    with open(path, "rb") as f:
        graph = f.read()
    if b"_transformer_encoder_layer_fwd" in graph or b"_native_multi_head_attention" in graph:
        sys.exit(f"{path}: the export traced PyTorch's fast path; expected its math path")


def sha256_of(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=".cache/bench", help="cache folder (default .cache/bench)")
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    torch.set_num_threads(max(1, os.cpu_count() or 1))

    manifest = {"format": FORMAT, "scriptSha256": sha256_of(__file__), "torch": torch.__version__,
                "opset": OPSET, "models": {}, "cases": {}}
    modules = {}
    for model_name, spec in MODELS.items():
        module = build(model_name)
        modules[model_name] = module
        os.makedirs(os.path.join(args.out, model_name), exist_ok=True)
        state = {key: value.detach().contiguous() for key, value in module.state_dict().items()}
        save_file(state, os.path.join(args.out, model_name, "weights.safetensors"))
        manifest["models"][model_name] = {**spec, "weights": f"{model_name}/weights.safetensors",
                                          "parameters": sum(v.numel() for v in state.values())}
        print(f"{model_name}: {manifest['models'][model_name]['parameters']:,} parameters", flush=True)

    for case_name, case in CASES.items():
        inputs = make_inputs(case_name)
        module = modules[case["model"]]
        save_file({name: value.contiguous() for name, value in inputs.items()},
                  os.path.join(args.out, f"{case_name}.inputs.safetensors"))
        export_onnx(module, inputs, os.path.join(args.out, f"{case_name}.onnx"))
        manifest["cases"][case_name] = {
            "model": case["model"],
            "onnx": f"{case_name}.onnx",
            "inputs": f"{case_name}.inputs.safetensors",
            "inputOrder": list(inputs),
            "inputShapes": {name: list(value.shape) for name, value in inputs.items()},
            "outputShape": list(inputs["tgt" if "tgt" in inputs else "src"].shape),
            "keyPaddingMask": "src_key_padding_mask" if "src_key_padding_mask" in inputs else None,
        }
        print(f"{case_name}: exported", flush=True)

    with open(os.path.join(args.out, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=2)
        f.write("\n")


if __name__ == "__main__":
    main()
