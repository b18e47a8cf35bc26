"""The gRPC edge shared by Smith's services: engine <-> proto conversions and traced servers/channels."""
