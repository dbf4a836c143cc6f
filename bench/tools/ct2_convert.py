"""Converts a GPT-2 model folder (config.json, tokenizer.json, onnx/model.onnx with Hugging Face weight names, as AVA
forges them) into a CTranslate2 model, through CTranslate2's own spec API and numpy: no torch, no transformers.
The weights are written in float32; CTranslate2 quantizes them at load (compute_type int8) as its users do.

Usage: ct2_convert.py <model-folder> <output-folder>
"""
import json
import sys

import numpy as np
import onnx
from ctranslate2.converters.converter import Converter
from ctranslate2.specs import common_spec, transformer_spec
from onnx import numpy_helper


class ForgedGpt2Converter(Converter):
    """The same mapping as CTranslate2's GPT2Loader, read from the ONNX file's initializers instead of torch modules."""

    def __init__(self, model_dir):
        self.model_dir = model_dir

    def _load(self):
        with open(f"{self.model_dir}/config.json") as f:
            config = json.load(f)
        graph = onnx.load(f"{self.model_dir}/onnx/model.onnx").graph
        weights = {t.name: numpy_helper.to_array(t) for t in graph.initializer}

        def w(name):
            return np.ascontiguousarray(weights[name], dtype=np.float32)

        def linear(spec, prefix):
            # Hugging Face's Conv1D keeps [in, out]; CTranslate2's linear layers take [out, in].
            spec.weight = np.ascontiguousarray(w(f"{prefix}.weight").T)
            spec.bias = w(f"{prefix}.bias")

        def layer_norm(spec, prefix):
            spec.gamma = w(f"{prefix}.weight")
            spec.beta = w(f"{prefix}.bias")

        spec = transformer_spec.TransformerDecoderModelSpec.from_config(
            config["n_layer"], config["n_head"], pre_norm=True, activation=common_spec.Activation.GELUTanh
        )
        decoder = spec.decoder
        decoder.scale_embeddings = False
        decoder.embeddings.weight = w("transformer.wte.weight")
        decoder.position_encodings.encodings = w("transformer.wpe.weight")
        layer_norm(decoder.layer_norm, "transformer.ln_f")
        for i, layer in enumerate(decoder.layer):
            p = f"transformer.h.{i}"
            layer_norm(layer.self_attention.layer_norm, f"{p}.ln_1")
            linear(layer.self_attention.linear[0], f"{p}.attn.c_attn")
            linear(layer.self_attention.linear[1], f"{p}.attn.c_proj")
            layer_norm(layer.ffn.layer_norm, f"{p}.ln_2")
            linear(layer.ffn.linear_0, f"{p}.mlp.c_fc")
            linear(layer.ffn.linear_1, f"{p}.mlp.c_proj")
        # The LM head is the token embedding (tied), as in GPT-2.
        decoder.projection.weight = w("transformer.wte.weight")

        with open(f"{self.model_dir}/tokenizer.json") as f:
            vocab = json.load(f)["model"]["vocab"]
        tokens = [None] * len(vocab)
        for token, index in vocab.items():
            tokens[index] = token
        spec.register_vocabulary(tokens)
        spec.config.bos_token = spec.config.eos_token = spec.config.unk_token = "<|endoftext|>"
        return spec


if __name__ == "__main__":
    ForgedGpt2Converter(sys.argv[1]).convert(sys.argv[2], force=True)
