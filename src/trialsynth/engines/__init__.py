"""Engines: exact (quadrature) and MCMC (nutpie), and the convergence checks."""
