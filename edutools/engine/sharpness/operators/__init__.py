"""Operators: the flat parameter layout and the Hessian as a linear operator (no algorithms)."""
