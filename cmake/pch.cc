// Anchor for the shared precompiled header (see circuit_torch_pch).
