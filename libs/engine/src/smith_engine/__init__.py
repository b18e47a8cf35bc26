"""Smith's pure engine: everything Smith decides, with no I/O. Services are thin shells around it."""
