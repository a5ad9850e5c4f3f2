"""Physics-based and data-driven dynamical models: Neural ODE, APHYNITY, LEADS, CoDA, PDE-Net 2.0."""
