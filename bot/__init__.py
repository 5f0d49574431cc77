"""The runtime: configuration, composition, CLI, transports, console and web."""
