"""The demo: a simulated shop run through engage on the embedded default."""
