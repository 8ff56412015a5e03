"""The benchmark harness behind `make bench`: does decomposing pay on this machine, and by how much."""
