"""The Open Inference Protocol (KServe V2, as Triton speaks it) on the gateway: REST under
/v2 (rest.py), inference.GRPCInferenceService (grpc.py), the type mapping (tensors.py)."""
