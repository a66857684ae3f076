"""Algorithms that use the Hessian operator: eigen-solvers, trace and density, batch sharpness,
perturbation measures."""
