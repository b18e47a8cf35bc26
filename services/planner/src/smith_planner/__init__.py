"""Smith's planner service: the pure engine's validation and planning behind gRPC."""
