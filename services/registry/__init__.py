"""The registry service: the catalogue of sites and entry points."""
