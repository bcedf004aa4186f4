"""The in-process text-generation engine: continuous batching over a causal LM's forward pass.

Import the submodules directly; this package imports nothing heavy on its own.
"""
