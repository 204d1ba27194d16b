"""The engine's pure core: definitions, expressions, stepping and matching.

Nothing here does I/O, reads a clock or the environment: `now` and ids are arguments.
"""
