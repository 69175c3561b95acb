"""Renderers: one module per output format, each from `Report` objects to text."""
