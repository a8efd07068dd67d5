"""Support code for the program and the driver: what components build on, and nothing that builds components."""
