"""Deployment: the TF Serving SavedModel and its signatures, versions, TFLite/ONNX files, int8, a REST client."""
