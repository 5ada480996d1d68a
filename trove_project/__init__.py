"""The example project: Trove's quick start and its deployment template."""
