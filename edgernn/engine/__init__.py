"""The engine: packing a graph into plans, the native step loop, streams and batches,
compiling ahead."""
