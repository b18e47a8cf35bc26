"""Smith's status service: Bundle status from verdicts and results, written only when it changed."""
