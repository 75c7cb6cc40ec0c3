"""The `engage` command line: one module per command, each parsing input, calling the engine and
formatting the output."""
