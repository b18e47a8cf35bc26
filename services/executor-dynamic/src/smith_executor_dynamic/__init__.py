"""Smith's executor for custom resources: every CRD is served (as a fallback executor); those
annotated for Smith are applied with readiness from their annotations, the others refused clearly."""
