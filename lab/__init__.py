"""The Mininet lab: topology files, the network builder, traffic probes and the demo matrix."""
