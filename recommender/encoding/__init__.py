"""Texts to vectors: `encoder_protocol` (the Encoder interface and model names; imports nothing
of ours), `model_files` (weights on disk, vector ids), the backends (`sentence_transformer_encoder`
for torch, `onnx_export` + `onnx_encoder` for ONNX Runtime, `hashing_encoder`, the fake) and
`encoder_factory.load_encoder`, the one place that picks one."""
