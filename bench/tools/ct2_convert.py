"""Converts an AVA model folder (config.json, tokenizer.json, onnx/model.onnx with Hugging Face weight names: a forged
GPT-2, or a Llama-family model such as the assistant converted from its GGUF) into a CTranslate2 model, through
CTranslate2's own spec API and numpy: no torch, no transformers. The mappings are those of CTranslate2's GPT2Loader
and LlamaLoader. The weights are written in float32; CTranslate2 quantizes them at load (compute_type int8) as its
users do.

Usage: ct2_convert.py <model-folder> <output-folder>
"""
import json
import sys

import numpy as np
import onnx
from ctranslate2.converters.converter import Converter
from ctranslate2.specs import common_spec, transformer_spec
from onnx import numpy_helper


def read_weights(model_dir):
    with open(f"{model_dir}/config.json") as f:
        config = json.load(f)
    graph = onnx.load(f"{model_dir}/onnx/model.onnx").graph
    weights = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    return config, lambda name: np.ascontiguousarray(weights[name], dtype=np.float32)


def vocabulary(model_dir):
    with open(f"{model_dir}/tokenizer.json") as f:
        vocab = json.load(f)["model"]["vocab"]
    tokens = [None] * len(vocab)
    for token, index in vocab.items():
        tokens[index] = token
    return tokens


class LlamaConverter(Converter):
    """CTranslate2's LlamaLoader mapping (Hugging Face layout: rotate-half RoPE, [out, in] linear weights)."""

    def __init__(self, model_dir):
        self.model_dir = model_dir

    def _load(self):
        config, w = read_weights(self.model_dir)
        kv = config.get("num_key_value_heads", config["num_attention_heads"])
        spec = transformer_spec.TransformerDecoderModelSpec.from_config(
            config["num_hidden_layers"],
            config["num_attention_heads"],
            activation=common_spec.Activation.SWISH,
            pre_norm=True,
            ffn_glu=True,
            rms_norm=True,
            rotary_dim=0,
            rotary_interleave=False,
            rotary_base=config.get("rope_theta", 10000),
            num_heads_kv=None if kv == config["num_attention_heads"] else kv,
        )
        decoder = spec.decoder
        decoder.scale_embeddings = False
        decoder.embeddings.weight = w("model.embed_tokens.weight")
        decoder.layer_norm.gamma = w("model.norm.weight")
        for i, layer in enumerate(decoder.layer):
            p = f"model.layers.{i}"
            layer.self_attention.layer_norm.gamma = w(f"{p}.input_layernorm.weight")
            layer.ffn.layer_norm.gamma = w(f"{p}.post_attention_layernorm.weight")
            qkv = [w(f"{p}.self_attn.{n}_proj.weight") for n in ("q", "k", "v")]
            layer.self_attention.linear[0].weight = np.concatenate(qkv, axis=0)
            layer.self_attention.linear[1].weight = w(f"{p}.self_attn.o_proj.weight")
            layer.ffn.linear_0.weight = w(f"{p}.mlp.gate_proj.weight")
            layer.ffn.linear_0_noact.weight = w(f"{p}.mlp.up_proj.weight")
            layer.ffn.linear_1.weight = w(f"{p}.mlp.down_proj.weight")
        tied = config.get("tie_word_embeddings", False)
        decoder.projection.weight = w("model.embed_tokens.weight" if tied else "lm_head.weight")
        spec.register_vocabulary(vocabulary(self.model_dir))
        with open(f"{self.model_dir}/tokenizer_config.json") as f:
            tokenizer_config = json.load(f)
        spec.config.bos_token = tokenizer_config.get("bos_token") or "<|endoftext|>"
        spec.config.eos_token = tokenizer_config["eos_token"]
        spec.config.unk_token = tokenizer_config.get("unk_token") or ""
        spec.config.layer_norm_epsilon = config["rms_norm_eps"]
        return spec


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
    with open(f"{sys.argv[1]}/config.json") as f:
        model_type = json.load(f)["model_type"]
    converter = LlamaConverter if model_type == "llama" else ForgedGpt2Converter
    converter(sys.argv[1]).convert(sys.argv[2], force=True)
