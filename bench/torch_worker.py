"""PyTorch as a peer of the end-to-end benchmark, in a process of its own:

    PYTHONPATH=/tmp/st-site /usr/bin/python3 bench/torch_worker.py '<WorkerArgs JSON>'

started and driven by bench/suite.ts over stdin / stdout, with the protocol
of bench/protocol.ts (replies are lines starting with "@@bench ").

PyTorch runs as a PyTorch service would: the same module classes the export
used, the weights from the same safetensors file, eval() and
torch.inference_mode(), torch.set_num_threads(threads) and one inter-op
thread. So PyTorch 1.13 takes its encoder fast path where it applies
(`torch._transformer_encoder_layer_fwd`); with a key padding mask that path
packs the sequences into a nested tensor, skips the padded tokens and
returns zeros for them, which is why the suite compares padded cases on the
real tokens only.
"""
import json
import os
import sys
import time
import warnings

REPLY_PREFIX = "@@bench "


def reply(message):
    sys.stdout.write(REPLY_PREFIX + json.dumps(message) + "\n")
    sys.stdout.flush()


def memory_kib():
    fields = {}
    with open("/proc/self/status") as f:
        for line in f:
            name, _, value = line.partition(":")
            if name in ("VmHWM", "VmRSS"):
                fields[name] = int(value.split()[0])
    return fields


def blas():
    """Which BLAS this process loaded: Debian's torch is built against the generic
    libblas.so.3, so the system's alternative decides (reference BLAS is ~70x
    slower than OpenBLAS at these GEMMs: apt-get install libopenblas0-openmp)."""
    with open("/proc/self/maps") as f:
        paths = {line.split()[-1] for line in f if "blas" in line.lower() and "/" in line}
    if any("openblas" in p for p in paths):
        return "OpenBLAS"
    if any("mkl" in p for p in paths):
        return "MKL"
    if paths:
        return "reference BLAS"
    return "BLAS unknown"


def build(torch, model):
    c = model["config"]
    if model["module"] == "TransformerEncoder":
        layer = torch.nn.TransformerEncoderLayer(c["dModel"], c["nhead"], c["dimFeedforward"], batch_first=True)
        return torch.nn.TransformerEncoder(layer, c["numLayers"])
    return torch.nn.Transformer(d_model=c["dModel"], nhead=c["nhead"], num_encoder_layers=c["numEncoderLayers"],
                                num_decoder_layers=c["numDecoderLayers"], dim_feedforward=c["dimFeedforward"],
                                batch_first=True)


def main():
    args = json.loads(sys.argv[1])
    warnings.filterwarnings("ignore")  # the nested-tensor prototype warning, on every padded forward
    import torch
    from safetensors.torch import load_file

    torch.set_num_threads(args["threads"])
    torch.set_num_interop_threads(1)
    cache = args["cacheDir"]
    with open(os.path.join(cache, "manifest.json")) as f:
        manifest = json.load(f)
    case = manifest["cases"][args["caseName"]]
    model = manifest["models"][case["model"]]
    inputs = load_file(os.path.join(cache, case["inputs"]))

    start = time.perf_counter()
    state = load_file(os.path.join(cache, model["weights"]))
    read = time.perf_counter()
    module = build(torch, model)
    constructed = time.perf_counter()
    module.load_state_dict(state)
    module.eval()
    loaded = time.perf_counter()
    load_ms = (loaded - start) * 1e3
    phases = {"load_file": (read - start) * 1e3, "construct": (constructed - read) * 1e3,
              "load_state_dict": (loaded - constructed) * 1e3}

    if model["module"] == "Transformer":
        src, tgt, tgt_mask = inputs["src"], inputs["tgt"], inputs["tgt_mask"]

        def forward():
            with torch.inference_mode():
                return module(src, tgt, tgt_mask=tgt_mask)
    else:
        src = inputs["src"]
        padding = inputs[case["keyPaddingMask"]] if case["keyPaddingMask"] else None

        def forward():
            with torch.inference_mode():
                return module(src, src_key_padding_mask=padding)

    start = time.perf_counter()
    output = forward()
    first_ms = (time.perf_counter() - start) * 1e3
    reply({"type": "ready", "engine": "pytorch", "version": f"{torch.__version__} ({blas()})", "loadMs": load_ms,
           "firstForwardMs": first_ms, "loadPhases": phases})

    for line in iter(sys.stdin.readline, ""):
        request = json.loads(line)
        if request["cmd"] == "run":
            times = []
            for _ in range(request["reps"]):
                start = time.perf_counter()
                output = forward()
                times.append((time.perf_counter() - start) * 1e3)
            reply({"type": "times", "ms": times})
        elif request["cmd"] == "output":
            with open(request["file"], "wb") as f:
                f.write(output.contiguous().numpy().astype("<f4").tobytes())
            reply({"type": "output", "file": request["file"]})
        else:
            memory = memory_kib()
            reply({"type": "bye", "vmHWMKiB": memory["VmHWM"], "vmRSSKiB": memory["VmRSS"]})
            break


if __name__ == "__main__":
    try:
        main()
    except Exception as error:  # reported to the suite, which names the engine and case
        import traceback
        reply({"type": "error", "message": "".join(traceback.format_exception(error))})
        sys.exit(1)
