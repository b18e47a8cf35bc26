"""The `smith` command line."""
