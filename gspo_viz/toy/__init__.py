"""A toy LLM-like policy (tiny causal transformer, optional MoE) trained by the core's objectives."""
