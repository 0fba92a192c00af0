"""Renderers: one module per output format, all reading the same Graph and Derivation."""
